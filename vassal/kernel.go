package vassal

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/emperor-dev/emperor/mount"
	"github.com/emperor-dev/emperor/procstat"
	"github.com/emperor-dev/emperor/userdb"
	"golang.org/x/sys/unix"
)

// makeRootSlave makes every mount of our new mount namespace a slave of the
// host's. CLONE_NEWNS copies the mount table together with its propagation
// types, and on a systemd host "/" is MS_SHARED: without this, a FUSE mount
// made inside the vassal would propagate into the host's namespace and
// outlive the vassal. A slave still receives the host's new mounts, but
// nothing propagates back.
func makeRootSlave() error { return mount.MakeRSlave("/") }

// mountProc mounts a procfs for the vassal's own PID namespace over /proc.
// The inherited /proc belongs to the host's PID namespace: in it
// /proc/<getpid()> names a host process (PID 1 is the host's init), which
// crashes libraries that read their own /proc/<pid> entries (libgfapi's
// glfs_new does), and a tenant's ps would list the host's processes. The
// mount stays in the vassal's mount namespace, a slave of the host's.
func mountProc() error {
	return mount.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
}

// becomeSubreaper is for a vassal that is not PID 1 of its own namespace:
// orphans of its daemons reparent to it instead of to the host's init, so it
// can still reap them and kill them on stop.
func becomeSubreaper() error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_CHILD_SUBREAPER): %w", err)
	}
	return nil
}

// CredsError is a privilege drop that failed, with the ids it asked for.
type CredsError struct {
	Op  string
	Arg string
	Err error
}

func (e *CredsError) Error() string { return fmt.Sprintf("%s %s: %v", e.Op, e.Arg, e.Err) }
func (e *CredsError) Unwrap() error { return e.Err }

// dropPrivileges switches to c for good. setgid comes first and setuid last:
// once the uid is no longer 0 the process loses CAP_SETGID and could not
// change its groups any more, and a process that kept root's supplementary
// groups would keep their file access. Go's syscall package applies each
// call to every thread of the process.
func dropPrivileges(c userdb.Creds) error {
	if !c.Set {
		return nil
	}
	if err := syscall.Setgid(c.GID); err != nil {
		return &CredsError{Op: "setgid", Arg: strconv.Itoa(c.GID), Err: err}
	}
	if err := syscall.Setgroups(c.Groups); err != nil {
		return &CredsError{Op: "setgroups", Arg: fmt.Sprint(c.Groups), Err: err}
	}
	if err := syscall.Setuid(c.UID); err != nil {
		return &CredsError{Op: "setuid", Arg: strconv.Itoa(c.UID), Err: err}
	}
	return nil
}

// bindShared opens a listening TCP socket as root, before the privilege
// drop, so that ports below 1024 work for an unprivileged vassal. The
// returned file is what daemons inherit; PID 1 keeps it open across daemon
// restarts so connections wait in the backlog instead of being refused.
func bindShared(addr string) (*os.File, error) {
	if strings.HasPrefix(addr, "localhost:") {
		addr = "127.0.0.1:" + strings.TrimPrefix(addr, "localhost:")
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("shared-socket %s: %w", addr, err)
	}
	f, err := l.(*net.TCPListener).File()
	l.Close()
	if err != nil {
		return nil, fmt.Errorf("shared-socket %s: %w", addr, err)
	}
	return f, nil
}

// killProcessGroup signals a daemon together with everything it forked into
// its process group (a daemon runs as /bin/sh -c, so the shell alone is not
// enough).
func killProcessGroup(pgid int, sig syscall.Signal) {
	_ = syscall.Kill(-pgid, sig)
}

// childrenOf lists the pids whose parent is pid, read from /proc. Used only
// by a vassal without its own PID namespace, to find orphans left to it as
// subreaper. An unreadable /proc lists none.
func childrenOf(pid int) []int {
	out, _ := procstat.Children(pid)
	return out
}
