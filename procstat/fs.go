package procstat

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// FS is a procfs opened once and read through its descriptor. A vassal's
// PID 1 opens its own PID namespace's /proc before pivot_root: the tenant's
// new root may have no /proc, or one the tenant mounted, and PID 1 must still
// read the state of the processes it supervises.
type FS struct{ f *os.File }

// OpenFS opens the procfs mounted at path.
func OpenFS(path string) (*FS, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &Error{Path: path, Err: err}
	}
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, &Error{Path: path, Err: &os.SyscallError{Syscall: "fstatfs", Err: err}}
	}
	if st.Type != unix.PROC_SUPER_MAGIC {
		f.Close()
		return nil, &Error{Path: path, Err: fmt.Errorf("not a procfs (f_type %#x)", st.Type)}
	}
	return &FS{f: f}, nil
}

// Close releases the descriptor.
func (p *FS) Close() error { return p.f.Close() }

// rel opens name (relative to the procfs) with openat(2) on its descriptor.
func (p *FS) rel(name string, flags int) (*os.File, error) {
	fd, err := unix.Openat(int(p.f.Fd()), name, flags|unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, &Error{Path: "/proc/" + name, Err: err}
	}
	return os.NewFile(uintptr(fd), "/proc/"+name), nil
}

// ReadFile reads /proc/PID/name.
func (p *FS) ReadFile(pid int, name string) ([]byte, error) {
	path := strconv.Itoa(pid) + "/" + name
	f, err := p.rel(path, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return nil, &Error{Path: "/proc/" + path, Err: err}
	}
	return b, nil
}

// Stat reads /proc/PID/stat.
func (p *FS) Stat(pid int) (Stat, error) {
	b, err := p.ReadFile(pid, "stat")
	if err != nil {
		return Stat{}, err
	}
	s, err := Parse(b)
	if err != nil {
		return Stat{}, &Error{Path: "/proc/" + strconv.Itoa(pid) + "/stat", Err: err}
	}
	return s, nil
}

// Pids lists the processes of the procfs's PID namespace.
func (p *FS) Pids() ([]int, error) {
	d, err := p.rel(".", unix.O_DIRECTORY)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, &Error{Path: "/proc", Err: err}
	}
	var out []int
	for _, n := range names {
		if pid, err := strconv.Atoi(n); err == nil {
			out = append(out, pid)
		}
	}
	return out, nil
}

// Group lists the members of process group pgid. Processes that exit
// during the scan are skipped.
func (p *FS) Group(pgid int) ([]Stat, error) {
	pids, err := p.Pids()
	if err != nil {
		return nil, err
	}
	var out []Stat
	for _, pid := range pids {
		if s, err := p.Stat(pid); err == nil && s.PGRP == pgid && !s.Zombie() {
			out = append(out, s)
		}
	}
	return out, nil
}

// Syscall is where a process that is not running is, from
// /proc/PID/syscall: the number and arguments of the system call it is
// blocked in (or stopped at), or InUser when it was stopped in its own code.
type Syscall struct {
	Nr   int64 // InUser: not in a system call
	Args [6]uint64
}

// InUser is Syscall.Nr of a process stopped outside any system call.
const InUser = -1

// ErrRunning is /proc/PID/syscall of a process that is running: the
// kernel reports no syscall for it.
var ErrRunning = errors.New("running")

// ReadSyscall reads /proc/PID/syscall: "NR ARG1..ARG6 SP PC", "-1 SP PC"
// outside a system call, or "running".
func (p *FS) ReadSyscall(pid int) (Syscall, error) {
	b, err := p.ReadFile(pid, "syscall")
	if err != nil {
		return Syscall{}, err
	}
	return ParseSyscall(b)
}

// ParseSyscall parses one /proc/PID/syscall line.
func ParseSyscall(b []byte) (Syscall, error) {
	f := strings.Fields(string(b))
	if len(f) == 1 && f[0] == "running" {
		return Syscall{}, ErrRunning
	}
	if len(f) == 0 {
		return Syscall{}, fmt.Errorf("empty syscall line")
	}
	nr, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return Syscall{}, fmt.Errorf("syscall number in %q: %w", cut(b), err)
	}
	s := Syscall{Nr: nr}
	if nr == InUser {
		return s, nil
	}
	if len(f) < 7 {
		return Syscall{}, fmt.Errorf("syscall %d without its six arguments in %q", nr, cut(b))
	}
	for i := range s.Args {
		a, err := strconv.ParseUint(strings.TrimPrefix(f[1+i], "0x"), 16, 64)
		if err != nil {
			return Syscall{}, fmt.Errorf("syscall argument %d in %q: %w", i+1, cut(b), err)
		}
		s.Args[i] = a
	}
	return s, nil
}

// SignalPending says whether sig is pending for the process, directed at
// it (ShdPnd) or at its main thread (SigPnd), from /proc/PID/status.
func (p *FS) SignalPending(pid int, sig unix.Signal) (bool, error) {
	b, err := p.ReadFile(pid, "status")
	if err != nil {
		return false, err
	}
	return maskHas(b, sig, "SigPnd", "ShdPnd")
}

// SignalCaught says whether the process has a handler for sig (SigCgt in
// /proc/PID/status).
func (p *FS) SignalCaught(pid int, sig unix.Signal) (bool, error) {
	caught, _, err := p.SignalDisposition(pid, sig)
	return caught, err
}

// SignalDisposition says whether the process has a handler for sig
// (SigCgt) or ignores it (SigIgn); neither is the default action.
func (p *FS) SignalDisposition(pid int, sig unix.Signal) (caught, ignored bool, err error) {
	b, err := p.ReadFile(pid, "status")
	if err != nil {
		return false, false, err
	}
	if caught, err = maskHas(b, sig, "SigCgt"); err != nil {
		return false, false, err
	}
	if ignored, err = maskHas(b, sig, "SigIgn"); err != nil {
		return false, false, err
	}
	return caught, ignored, nil
}

// maskHas says whether sig is set in any of the named signal masks of a
// /proc/PID/status text.
func maskHas(status []byte, sig unix.Signal, keys ...string) (bool, error) {
	found := 0
	for _, line := range strings.Split(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || !slices.Contains(keys, k) {
			continue
		}
		mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err != nil {
			return false, fmt.Errorf("%s in status: %w", k, err)
		}
		found++
		if mask&(1<<(uint(sig)-1)) != 0 {
			return true, nil
		}
	}
	if found == 0 {
		return false, fmt.Errorf("no %s in status", strings.Join(keys, "/"))
	}
	return false, nil
}

// SocketInodes lists the inodes of the sockets the process has open, read
// from the links in /proc/PID/fd ("socket:[INODE]").
func (p *FS) SocketInodes(pid int) ([]uint64, error) {
	dir := strconv.Itoa(pid) + "/fd"
	d, err := p.rel(dir, unix.O_DIRECTORY)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, &Error{Path: "/proc/" + dir, Err: err}
	}
	var out []uint64
	buf := make([]byte, 64)
	for _, n := range names {
		k, err := unix.Readlinkat(int(d.Fd()), n, buf)
		if err != nil {
			continue // closed meanwhile
		}
		l := string(buf[:k])
		if rest, ok := strings.CutPrefix(l, "socket:["); ok {
			if ino, err := strconv.ParseUint(strings.TrimSuffix(rest, "]"), 10, 64); err == nil {
				out = append(out, ino)
			}
		}
	}
	return out, nil
}
