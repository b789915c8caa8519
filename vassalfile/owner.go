package vassalfile

import (
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/emperor-dev/emperor/userdb"
)

// FileOwner is whom the files a vassal file names (ini, include, inherit,
// @(file), for-readline) are read as: the owner of the vassal file. The
// emperor reads vassal files as root, and a tenant may write one: without
// this, `ini = /etc/shadow:x` or `env = K=@(/root/.ssh/id_rsa)` would hand a
// tenant any file of the host (in an error message, or in the vassal's
// environment).
type FileOwner struct {
	UID, GID int
}

// OwnerOf is the owner of a file, from its (f)stat.
func OwnerOf(fi fs.FileInfo) *FileOwner {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return &FileOwner{UID: int(st.Uid), GID: int(st.Gid)}
	}
	return nil
}

// ReadError is a file a vassal file names that was not read.
type ReadError struct {
	Path  string
	Owner *FileOwner // set when the file was read with the owner's credentials
	Err   error
}

func (e *ReadError) Error() string {
	if e.Owner != nil {
		return fmt.Sprintf("%s: %v (read as uid %d, the owner of the vassal file)", e.Path, e.Err, e.Owner.UID)
	}
	return fmt.Sprintf("%s: %v", e.Path, e.Err)
}

func (e *ReadError) Unwrap() error { return e.Err }

// ReadAs reads path (a regular file, at most MaxFileSize bytes, see
// ReadFileStat) with the filesystem credentials of the owner: its uid, its
// primary group and its supplementary groups, so the kernel's permission
// checks of every directory on the way and of the file itself are the
// owner's, and a symlink leads nowhere the owner could not go. The owner
// root reads as the emperor does, and so does an emperor (or emperor check)
// that does not run as root: it cannot read more than its own user may.
func ReadAs(o *FileOwner, path string) ([]byte, error) {
	if o == nil || o.UID == 0 || os.Geteuid() != 0 {
		b, err := ReadFile(path)
		if err != nil {
			return nil, &ReadError{Path: path, Err: unwrapPath(err)}
		}
		return b, nil
	}
	gid, groups := o.credentials()
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	// The credentials are changed on one OS thread only, which is never
	// given back to the runtime: the goroutine ends locked, and Go then
	// ends its thread, so no other goroutine ever runs with the tenant's
	// credentials and nothing needs restoring.
	go func() {
		runtime.LockOSThread()
		if err := becomeFS(o.UID, gid, groups); err != nil {
			done <- result{err: err}
			return
		}
		b, err := ReadFile(path)
		done <- result{b: b, err: err}
	}()
	r := <-done
	if r.err != nil {
		return nil, &ReadError{Path: path, Owner: o, Err: unwrapPath(r.err)}
	}
	return r.b, nil
}

// unwrapPath drops the *fs.PathError around an errno: ReadError names
// the path already.
func unwrapPath(err error) error {
	if pe, ok := err.(*fs.PathError); ok {
		return pe.Err
	}
	if nr, ok := err.(*NotRegularError); ok {
		return fmt.Errorf("a %s, not a regular file: refusing to read it", kindOf(nr.Mode))
	}
	return err
}

// becomeFS gives the calling thread (locked, and discarded after) the
// filesystem identity of uid: setgroups first, while the thread still has
// CAP_SETGID, then setfsgid, then setfsuid, which clears the thread's
// filesystem capabilities (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH...) as the
// kernel does when the fsuid leaves 0. Raw syscalls: the libc and Go
// wrappers of setgroups apply to every thread of the process.
func becomeFS(uid, gid int, groups []int) error {
	gs := make([]uint32, len(groups))
	for i, g := range groups {
		gs[i] = uint32(g)
	}
	var p *uint32
	if len(gs) > 0 {
		p = &gs[0]
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(gs)), uintptr(unsafe.Pointer(p)), 0); e != 0 {
		return fmt.Errorf("setgroups for uid %d: %w", uid, e)
	}
	// setfsgid and setfsuid return the previous id and report no error:
	// the new one is read back.
	unix.RawSyscall(unix.SYS_SETFSGID, uintptr(gid), 0, 0)
	if cur, _, _ := unix.RawSyscall(unix.SYS_SETFSGID, ^uintptr(0), 0, 0); int(uint32(cur)) != gid {
		return fmt.Errorf("setfsgid(%d) did not take (fsgid is %d)", gid, uint32(cur))
	}
	unix.RawSyscall(unix.SYS_SETFSUID, uintptr(uid), 0, 0)
	if cur, _, _ := unix.RawSyscall(unix.SYS_SETFSUID, ^uintptr(0), 0, 0); int(uint32(cur)) != uid {
		return fmt.Errorf("setfsuid(%d) did not take (fsuid is %d)", uid, uint32(cur))
	}
	return nil
}

// ownerThread runs functions on one OS thread with the filesystem
// credentials of an owner, for the path lookups of one parse (if-exists,
// if-file, if-dir, for-glob): one thread per parse rather than one per
// lookup. The thread is never given back to the runtime (see ReadAs).
type ownerThread struct {
	reqs chan func()
}

// startOwnerThread starts the thread of owner o; nil (and no error) when
// there is nothing to change: no owner, the owner root, or a reader that
// is not root.
func startOwnerThread(o *FileOwner) (*ownerThread, error) {
	if o == nil || o.UID == 0 || os.Geteuid() != 0 {
		return nil, nil
	}
	gid, groups := o.credentials()
	t := &ownerThread{reqs: make(chan func())}
	ready := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := becomeFS(o.UID, gid, groups); err != nil {
			ready <- err
			return
		}
		ready <- nil
		for f := range t.reqs {
			f()
		}
	}()
	if err := <-ready; err != nil {
		return nil, err
	}
	return t, nil
}

// do runs f on the thread and waits for it.
func (t *ownerThread) do(f func()) {
	done := make(chan struct{})
	t.reqs <- func() { f(); close(done) }
	<-done
}

// stop ends the thread (with its goroutine, still locked).
func (t *ownerThread) stop() { close(t.reqs) }

// credentials are the owner's primary group and supplementary groups
// from the user database; the file's group and none for a uid it lacks.
func (o *FileOwner) credentials() (gid int, groups []int) {
	gid = o.GID
	if u, err := userdb.LookupUser(strconv.Itoa(o.UID)); err == nil && u.Name != "" {
		if u.GID >= 0 {
			gid = u.GID
		}
		groups, _ = u.Groups()
	}
	return gid, groups
}
