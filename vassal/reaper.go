package vassal

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/emperor-dev/emperor/cloexec"
	"golang.org/x/sys/unix"
)

// Reaper is the only caller of wait4 in the vassal. As PID 1 (or a child
// subreaper) the vassal inherits every orphan in its namespace, so it must
// reap with wait4(-1); a second waiter (exec.Cmd.Wait, os.Process.Wait)
// would race it and lose its child's status. Every child is therefore
// started through Start, which registers the pid under the same lock that
// the reaper takes before dispatching, so no exit is lost even when the
// child dies before Start returns.
type Reaper struct {
	mu      sync.Mutex
	waiting map[int]chan unix.WaitStatus
	subs    []chan int
	sig     chan os.Signal
	closed  bool // PID 1 is exiting: Start refuses (Close)
}

// ErrExiting is the error of a Start after Close.
var ErrExiting = errors.New("PID 1 is exiting: no new process is started")

// Close makes every later Start fail with ErrExiting; the reaper still
// reaps. PID 1 calls it when it is about to exit and kills what is left
// under it (killEverything): a supervisor that sees its process die of that
// kill would start it again at once (the restart burst), and the new
// process (an app server loading its app, a daemon) would race the kill
// and could outlive PID 1. Start and Close take the same lock, so a fork
// is either before Close (and its child is seen by the kill) or refused.
func (r *Reaper) Close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
}

// NewReaper subscribes to SIGCHLD and starts reaping.
func NewReaper() *Reaper {
	r := &Reaper{waiting: map[int]chan unix.WaitStatus{}, sig: make(chan os.Signal, 1)}
	signal.Notify(r.sig, syscall.SIGCHLD)
	go r.loop()
	return r
}

func (r *Reaper) loop() {
	for range r.sig {
		r.reapAll()
	}
}

// reapAll collects every exited child: SIGCHLD is not queued, so one signal
// may stand for many exits.
func (r *Reaper) reapAll() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
		r.mu.Lock()
		ch := r.waiting[pid]
		delete(r.waiting, pid)
		subs := r.subs
		r.mu.Unlock()
		if ch != nil {
			ch <- ws
		}
		for _, s := range subs {
			select {
			case s <- pid:
			default:
			}
		}
	}
}

// Subscribe returns a channel that receives the pid of every reaped child,
// including orphans that reparented to us (a daemonized FUSE server, a
// smart daemon). Slow readers miss pids rather than block the reaper.
func (r *Reaper) Subscribe() <-chan int {
	ch := make(chan int, 16)
	r.mu.Lock()
	r.subs = append(r.subs, ch)
	r.mu.Unlock()
	return ch
}

// Start forks and execs path with argv and returns its pid and a channel
// that gets its wait status exactly once. The child gets attr.Files and
// nothing else: descriptors that C code in PID 1 opened without
// O_CLOEXEC (libgfapi's sockets and log stream) are marked close-on-exec
// first. C threads may still open one between that and the fork; the
// window is the length of one fork.
func (r *Reaper) Start(path string, argv []string, attr *syscall.ProcAttr) (int, <-chan unix.WaitStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return 0, nil, &ExecError{Argv: argv, Err: ErrExiting}
	}
	if err := cloexec.AboveStderr(); err != nil {
		return 0, nil, &ExecError{Argv: argv, Err: err}
	}
	pid, err := syscall.ForkExec(path, argv, attr)
	if err != nil {
		return 0, nil, &ExecError{Argv: argv, Err: err}
	}
	ch := make(chan unix.WaitStatus, 1)
	r.waiting[pid] = ch
	return pid, ch, nil
}

// ExecError is a failed fork/exec.
type ExecError struct {
	Argv []string
	Err  error
}

func (e *ExecError) Error() string { return fmt.Sprintf("exec %q: %v", e.Argv, e.Err) }
func (e *ExecError) Unwrap() error { return e.Err }
