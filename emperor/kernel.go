package emperor

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"syscall"

	"github.com/emperor-dev/emperor/reexec"
	"golang.org/x/sys/unix"
)

// SpawnError is a failed fork/exec of a vassal, with the namespaces it asked
// for decoded.
type SpawnError struct {
	Path       string
	Namespaces string
	Err        error
}

func (e *SpawnError) Error() string {
	return fmt.Sprintf("spawn %s in namespaces %s: %v", e.Path, e.Namespaces, e.Err)
}
func (e *SpawnError) Unwrap() error { return e.Err }

// controlPair makes the emperor <-> vassal channel. SOCK_CLOEXEC matters:
// vassals are forked concurrently, and without it one vassal could inherit
// another's end and keep that channel open after its owner died (the
// emperor would never see EOF). The child's end is dup2'd to fd 3 by
// ForkExec, which clears close-on-exec on that copy only. Our end is made
// non-blocking so that reads and writes park in the netpoller instead of
// pinning an OS thread per vassal.
func controlPair() (ours *os.File, theirs *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair(AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC): %w", err)
	}
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return nil, nil, fmt.Errorf("control socket O_NONBLOCK: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "vassal-control"), os.NewFile(uintptr(fds[1]), "vassal-control-child"), nil
}

// forker forks vassals from OS threads that never exit.
//
// Pdeathsig is tied to the thread that forked the child, not to the
// process: if the Go runtime retired that thread, every vassal forked from
// it would be SIGKILLed while the emperor lives on. A goroutine that locks
// its thread and never returns keeps that thread for the life of the
// process, so for vassals forked here the death signal means exactly "the
// emperor died". Several threads let the exec waits of concurrent spawns
// overlap (fork itself is serialized by syscall.ForkLock).
type forker struct {
	reqs chan forkReq
}

type forkReq struct {
	argv  []string
	attr  *syscall.ProcAttr
	reply chan forkResult
}

type forkResult struct {
	pid int
	err error
}

const forkThreads = 4

var (
	forkerOnce   sync.Once
	sharedForker *forker
)

// theForker returns the process-wide forker; its threads live as long as
// the process, so there is one set for every Emperor in it.
func theForker() *forker {
	forkerOnce.Do(func() {
		sharedForker = &forker{reqs: make(chan forkReq)}
		for i := 0; i < forkThreads; i++ {
			go sharedForker.thread()
		}
	})
	return sharedForker
}

func (f *forker) thread() {
	runtime.LockOSThread()
	// Never UnlockOSThread and never return: see forker.
	for r := range f.reqs {
		pid, err := syscall.ForkExec(r.argv[0], r.argv, r.attr)
		r.reply <- forkResult{pid, err}
	}
}

func (f *forker) forkExec(argv []string, attr *syscall.ProcAttr) (int, error) {
	reply := make(chan forkResult, 1)
	f.reqs <- forkReq{argv: argv, attr: attr, reply: reply}
	r := <-reply
	return r.pid, r.err
}

// vassalAttr is how a vassal's PID 1 is created.
//
// CLONE_NEWPID must be in Cloneflags (clone(2) at fork), not an unshare in
// the child: unshare(CLONE_NEWPID) only moves the caller's future children
// into the new namespace, so the vassal would not be its PID 1 and its
// orphans would escape to the host's init. Cloneflags CLONE_NEWNS does not
// make "/" private: the vassal makes it rslave itself, first thing.
// Setpgid keeps a terminal's ^C (sent to the foreground process group) from
// reaching vassals directly: the emperor stops them in order, with mercy.
// PidFD gives us a handle that cannot be confused with a recycled PID, for
// signals and for the exit wait.
func vassalAttr(ns reexec.Namespaces, control *os.File, pidfd *int) (*syscall.ProcAttr, error) {
	null, err := devNull()
	if err != nil {
		return nil, err
	}
	return &syscall.ProcAttr{
		Env: os.Environ(),
		// stdin is /dev/null; stdout and stderr are the emperor's log, so
		// a vassal's lines (each with vassal=NAME) interleave with ours.
		Files: []uintptr{null.Fd(), 1, 2, control.Fd()},
		Sys: &syscall.SysProcAttr{
			Cloneflags: ns.CloneFlags(),
			Pdeathsig:  syscall.SIGKILL,
			Setpgid:    true,
			PidFD:      pidfd,
		},
	}, nil
}

var (
	devNullOnce sync.Once
	devNullFile *os.File
	devNullErr  error
)

// devNull is one read-only /dev/null shared by every spawn (fd 0 of each
// vassal), opened close-on-exec.
func devNull() (*os.File, error) {
	devNullOnce.Do(func() {
		devNullFile, devNullErr = os.Open(os.DevNull)
	})
	return devNullFile, devNullErr
}

// pidfdFile wraps a pidfd so that its exit wait parks in the netpoller: a
// pidfd polls readable when its process exits, so hundreds of vassals wait
// on no thread at all (a blocking wait4 or waitid would pin one each).
func pidfdFile(fd int) (*os.File, error) {
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("pidfd O_NONBLOCK: %w", err)
	}
	return os.NewFile(uintptr(fd), "pidfd"), nil
}

// waitPidfd blocks the calling goroutine (not a thread) until pid exits,
// then reaps it with wait4. Reaping by PID is safe here: until we reap it,
// the zombie holds its PID, so it cannot have been recycled. This is the
// only waiter for vassals: the emperor has no wait4(-1) loop to steal it.
func waitPidfd(pidfd *os.File, pid int) (unix.WaitStatus, error) {
	rc, err := pidfd.SyscallConn()
	if err != nil {
		return 0, err
	}
	var ws unix.WaitStatus
	var werr error
	err = rc.Read(func(uintptr) bool {
		for {
			got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
			switch {
			case err == unix.EINTR:
				continue
			case err != nil:
				werr = fmt.Errorf("wait4(%d): %w", pid, err)
				return true
			case got == 0:
				return false // still running: wait for the pidfd to poll readable
			}
			return true
		}
	})
	if err != nil {
		return 0, err
	}
	return ws, werr
}

// signalPidfd sends sig through the pidfd: unlike kill(2) it can never hit
// another process that reused the PID. A process already gone (ESRCH) is
// not an error.
func signalPidfd(pidfd *os.File, sig syscall.Signal) error {
	rc, err := pidfd.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.PidfdSendSignal(int(fd), sig, nil, 0)
	}); err != nil {
		return err
	}
	if errors.Is(serr, unix.ESRCH) {
		return nil
	}
	if serr != nil {
		return fmt.Errorf("pidfd_send_signal(%v): %w", sig, serr)
	}
	return nil
}
