package procstat

import (
	"net"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestParseSyscall(t *testing.T) {
	s, err := ParseSyscall([]byte("232 0x5 0x7ffd 0x1 0xffffffffffffffff 0x0 0x0 0x7ffc 0x7f00\n"))
	if err != nil || s.Nr != 232 || s.Args[0] != 5 || s.Args[3] != ^uint64(0) {
		t.Fatalf("got %+v, %v", s, err)
	}
	if s, err := ParseSyscall([]byte("-1 0x7ffc 0x7f00\n")); err != nil || s.Nr != InUser {
		t.Fatalf("user: %+v, %v", s, err)
	}
	if _, err := ParseSyscall([]byte("running\n")); err != ErrRunning {
		t.Fatalf("running: %v", err)
	}
	for _, bad := range []string{"", "x 0x1", "232 0x1 0x2", "232 0x1 0x2 0x3 0x4 0x5 zz 0x0 0x0"} {
		if s, err := ParseSyscall([]byte(bad)); err == nil {
			t.Errorf("ParseSyscall(%q) = %+v, want an error", bad, s)
		}
	}
}

func TestMaskHas(t *testing.T) {
	st := []byte("Name:\tx\nSigPnd:\t0000000000000000\nShdPnd:\t0000000000000001\nSigCgt:\t0000000000002002\n")
	if ok, err := maskHas(st, unix.SIGHUP, "SigPnd", "ShdPnd"); !ok || err != nil {
		t.Fatalf("SIGHUP in ShdPnd: %v %v", ok, err)
	}
	if ok, err := maskHas(st, unix.SIGINT, "SigPnd", "ShdPnd"); ok || err != nil {
		t.Fatalf("SIGINT: %v %v", ok, err)
	}
	if ok, err := maskHas(st, unix.SIGINT, "SigCgt"); !ok || err != nil {
		t.Fatalf("SIGINT caught: %v %v", ok, err)
	}
	if ok, err := maskHas(st, unix.SIGTERM, "SigCgt"); ok || err != nil {
		t.Fatalf("SIGTERM caught: %v %v", ok, err)
	}
	if _, err := maskHas([]byte("Name:\tx\n"), unix.SIGHUP, "SigPnd"); err == nil {
		t.Fatal("no mask lines: want an error")
	}
}

// TestFSStoppedProcess stops a sleeping child and reads, through an FS,
// what a graceful reload reads: its group, where it stopped, and a signal
// sent while it is stopped that waits for SIGCONT.
func TestFSStoppedProcess(t *testing.T) {
	p, err := OpenFS("/proc")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := OpenFS(t.TempDir()); err == nil {
		t.Fatal("OpenFS of a plain directory: want an error")
	}
	// SIGHUP at its default action in the child, whatever this process
	// inherited (nohup ignores it, and exec keeps an ignored signal
	// ignored, which would discard the SIGHUP below): exec resets a caught
	// one.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Reset(syscall.SIGHUP)
	cmd := exec.Command("sleep", "600")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	deadline := time.Now().Add(time.Minute)
	for { // asleep in sleep(1), not still in Go's fork or the exec
		s, err := p.Stat(pid)
		if err != nil {
			t.Fatal(err)
		}
		if s.Comm == "sleep" && s.State == 'S' {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sleep not asleep: %+v", s)
		}
		time.Sleep(time.Millisecond)
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	for {
		s, err := p.Stat(pid)
		if err != nil {
			t.Fatal(err)
		}
		if s.State == 'T' {
			if s.PGRP != pid || s.PPID != os.Getpid() {
				t.Fatalf("stat %+v: want pgrp %d ppid %d", s, pid, os.Getpid())
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not stopped: %+v", s)
		}
		time.Sleep(time.Millisecond)
	}
	sc, err := p.ReadSyscall(pid)
	if err != nil {
		t.Fatal(err)
	}
	if sc.Nr != unix.SYS_CLOCK_NANOSLEEP && sc.Nr != unix.SYS_NANOSLEEP {
		t.Fatalf("sleep stopped in syscall %d, want clock_nanosleep", sc.Nr)
	}
	if ok, err := p.SignalPending(pid, unix.SIGHUP); ok || err != nil {
		t.Fatalf("SIGHUP pending before it was sent: %v %v", ok, err)
	}
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if ok, err := p.SignalPending(pid, unix.SIGHUP); !ok || err != nil {
		t.Fatalf("SIGHUP to a stopped process not pending: %v %v", ok, err)
	}
	g, err := p.Group(pid)
	if err != nil || len(g) != 1 || g[0].PID != pid {
		t.Fatalf("group %d: %+v %v", pid, g, err)
	}
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGHUP {
		t.Fatalf("after SIGCONT: %v, want death by the pending SIGHUP", err)
	}
}

func TestFSSocketInodes(t *testing.T) {
	p, err := OpenFS("/proc")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	f, err := l.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	inos, err := p.SocketInodes(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(inos, st.Ino) {
		t.Fatalf("socket inode %d not among %v", st.Ino, inos)
	}
}
