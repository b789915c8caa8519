package vassal

import (
	"log/slog"
	"slices"
	"syscall"
	"time"

	"github.com/emperor-dev/emperor/procstat"
	"golang.org/x/sys/unix"
)

// A graceful reload of uWSGI that cuts no connection.
//
// uWSGI's graceful reload is a SIGHUP to every worker: its master sends
// them in grace_them_all, and without a master PID 1 does. The worker's
// handler (gracefully_kill, core/uwsgi.c) lets a request in flight finish,
// but a worker that is not in a request exits at once, and a worker counts
// as in a request only from the first line of wsgi_req_recv on
// (core/utils.c), after accept(2) returned in wsgi_req_accept. A SIGHUP
// between the two exits with a connection accepted and unread, and the
// kernel answers its client with a reset. Under load that window is hit.
//
// quietReload closes it from outside. It stops each worker (SIGSTOP, see
// workers for which processes those are) and
// reads where it stopped (/proc/PID/syscall). A worker waiting in epoll has
// accepted nothing, and one blocked in the I/O of a request is in it: such a
// worker is held, stopped, if it has its SIGHUP handler (a worker still
// starting has none yet and would miss the reload). One stopped anywhere
// else (its own code, accept4, the fcntl and setsockopt after it) is
// continued and tried again a moment later. Once every worker is held the SIGHUPs are sent, to the master, which
// forwards them, or to each worker, and only then are the workers continued:
// a stopped process runs its pending handler before any more of its own
// code, so the handler finds the worker where PID 1 saw it. A worker held
// while idle exits without accepting; the connections wait in the backlog of
// the listening socket, which PID 1 keeps, for the reloaded workers.
type quietReload struct {
	fs     *procstat.FS
	pgid   int // the app server's process group: its first process
	master int // its master, 0 without one
	budget time.Duration
	// startup is how long a process that ignores SIGHUP may still be a
	// starting worker (workerStartup; see workers).
	startup time.Duration
	log     *slog.Logger
	// retried, when set, is called each time a worker stopped at a bad
	// place was continued (tests wait for it).
	retried func()
}

const (
	// quietBudget bounds the search for a moment when every worker is held.
	// Past it the SIGHUP goes out as uWSGI would send it.
	quietBudget = 3 * time.Second
	// quietRetry is how long a worker that stopped at a bad place runs
	// before it is stopped again.
	quietRetry = time.Millisecond
	// stopWait bounds the wait for a SIGSTOP to take effect (a process in
	// uninterruptible sleep stops only when it leaves it).
	stopWait = time.Second
	// hupWait bounds the wait for a master to forward the SIGHUP.
	hupWait = time.Second
	// procPoll is how often /proc is read while waiting for a state.
	procPoll = 100 * time.Microsecond
)

// hup sends the reload. It returns false when it could not hold every
// worker within the budget and sent the SIGHUP unguarded.
func (q *quietReload) hup() bool {
	held := map[int]bool{}
	defer func() {
		for pid := range held {
			continueProcess(pid)
		}
	}()
	deadline := time.Now().Add(q.budget)
	for {
		all := true
		for _, pid := range q.workers() {
			if held[pid] {
				continue
			}
			switch q.hold(pid) {
			case holdHeld:
				held[pid] = true
			case holdRetry:
				all = false
				if q.retried != nil {
					q.retried()
				}
			}
		}
		if all {
			break
		}
		if time.Now().After(deadline) {
			q.log.Warn("app server reload: no moment found with every worker idle or in a request; SIGHUP sent unguarded, a connection accepted at that instant may be reset", "waited", q.budget)
			for pid := range held {
				continueProcess(pid)
				delete(held, pid)
			}
			q.send(nil)
			return false
		}
		time.Sleep(quietRetry)
	}
	q.send(held)
	return true
}

// send delivers the reload's SIGHUP: to the master, which forwards it to
// its workers (then it waits until every held worker has it pending), or
// to every worker.
func (q *quietReload) send(held map[int]bool) {
	if q.master == 0 {
		if held == nil {
			killProcessGroup(q.pgid, syscall.SIGHUP)
			return
		}
		for pid := range held {
			_ = syscall.Kill(pid, syscall.SIGHUP)
		}
		return
	}
	_ = syscall.Kill(q.master, syscall.SIGHUP)
	deadline := time.Now().Add(hupWait)
	for pid := range held {
		for {
			pending, err := q.fs.SignalPending(pid, unix.SIGHUP)
			if pending || err != nil || q.gone(pid) {
				break
			}
			if time.Now().After(deadline) {
				// Not one of the master's workers (a process of the group
				// that holds the socket), or a master that ignores the
				// SIGHUP while it reloads already.
				q.log.Debug("app server reload: a held process got no SIGHUP from the master", "pid", pid)
				break
			}
			time.Sleep(procPoll)
		}
	}
}

// workers lists the processes of the app server that take the reload's
// SIGHUP as workers: the members of its process group, but its master,
// that catch SIGHUP, or that ignore it and started less than q.startup
// ago. uWSGI ignores SIGHUP before it forks a worker, and
// the worker installs its handler when it enters its loop (core/uwsgi.c);
// one still starting is waited for (hold). A process that ignores SIGHUP
// for longer is a gateway, the http router (core/gateway.c; the master
// SIGKILLs those on a reload), and one at the default action is not
// uWSGI's (a cron command, a tenant's child): neither is held. The
// workers' sockets do not tell them apart: behind the http router they
// listen on a socket uWSGI binds itself.
func (q *quietReload) workers() []int {
	members, err := q.fs.Group(q.pgid)
	if err != nil {
		return nil
	}
	var now unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &now); err != nil {
		return nil
	}
	var out []int
	for _, s := range members {
		if s.PID == q.master {
			continue
		}
		caught, ignored, err := q.fs.SignalDisposition(s.PID, unix.SIGHUP)
		if err != nil {
			continue
		}
		age := time.Duration(now.Nano()) - time.Duration(s.StartTicks)*time.Second/procstat.UserHZ
		if caught || (ignored && age < q.startup) {
			out = append(out, s.PID)
		}
	}
	return out
}

// workerStartup bounds how long a starting uWSGI worker goes without its
// SIGHUP handler (about 100 ms here, more for an app loaded after fork).
const workerStartup = 2 * time.Second

type holdResult int

const (
	holdHeld  holdResult = iota // stopped at a quiet place
	holdRetry                   // continued: try again
	holdGone                    // exited
)

// hold stops pid and keeps it stopped if it stopped at a quiet place.
func (q *quietReload) hold(pid int) holdResult {
	if err := stopProcess(pid); err != nil {
		return holdGone
	}
	switch q.waitStopped(pid) {
	case holdGone:
		return holdGone
	case holdRetry:
		continueProcess(pid)
		return holdRetry
	}
	sc, err := q.fs.ReadSyscall(pid)
	if err == nil && quietSyscall(sc) {
		// A worker that has no handler yet (uWSGI installs it when the
		// worker enters its accept loop) would lose the SIGHUP, ignored,
		// and serve the old app on.
		if caught, err := q.fs.SignalCaught(pid, unix.SIGHUP); err == nil && caught {
			return holdHeld
		}
	}
	continueProcess(pid)
	if q.gone(pid) {
		return holdGone
	}
	return holdRetry
}

// waitStopped waits until pid is in the stopped state.
func (q *quietReload) waitStopped(pid int) holdResult {
	deadline := time.Now().Add(stopWait)
	for {
		s, err := q.fs.Stat(pid)
		if err != nil || s.Zombie() {
			return holdGone
		}
		if s.State == 'T' {
			return holdHeld
		}
		if time.Now().After(deadline) {
			return holdRetry
		}
		time.Sleep(procPoll)
	}
}

func (q *quietReload) gone(pid int) bool {
	s, err := q.fs.Stat(pid)
	return err != nil || s.Zombie()
}

// stopProcess stops pid with SIGSTOP, which it cannot catch or ignore: it
// stops at its next return to user space, or at once when it sleeps
// interruptibly, and the kernel keeps its registers, so /proc/PID/syscall
// then shows where it stopped.
func stopProcess(pid int) error { return syscall.Kill(pid, syscall.SIGSTOP) }

// continueProcess resumes a stopped pid. Signals sent to it while it was
// stopped are delivered first: their handlers run before its own code.
func continueProcess(pid int) { _ = syscall.Kill(pid, syscall.SIGCONT) }

// quietSyscall says whether a uWSGI worker stopped in sc can take the
// reload's SIGHUP without dropping a connection: waiting for a connection
// (epoll: it has accepted none), or blocked in the I/O of a request (it is
// in the request, which the handler lets finish). Neither accept4 nor the
// fcntl, setsockopt and futex wake that follow it in wsgi_req_accept, nor
// the worker's own code, are: there it may hold a connection it has not
// started to read.
func quietSyscall(sc procstat.Syscall) bool {
	if sc.Nr == unix.SYS_FUTEX {
		// A wait on a lock (the thunder lock before epoll, or a lock in a
		// request); a wake is the unlock after accept.
		return slices.Contains(futexWaits, sc.Args[1]&futexCmdMask)
	}
	return slices.Contains(quietSyscalls, sc.Nr) || slices.Contains(quietSyscallsArch, sc.Nr)
}

// The futex(2) operations that wait (linux/futex.h): FUTEX_WAIT,
// FUTEX_LOCK_PI, FUTEX_WAIT_BITSET, FUTEX_WAIT_REQUEUE_PI, FUTEX_LOCK_PI2.
// futexCmdMask clears FUTEX_PRIVATE_FLAG and FUTEX_CLOCK_REALTIME.
var futexWaits = []uint64{0, 6, 9, 11, 13}

const futexCmdMask = 127

var quietSyscalls = []int64{
	unix.SYS_EPOLL_PWAIT, unix.SYS_EPOLL_PWAIT2,
	unix.SYS_READ, unix.SYS_READV, unix.SYS_PREAD64, unix.SYS_RECVFROM, unix.SYS_RECVMSG,
	unix.SYS_WRITE, unix.SYS_WRITEV, unix.SYS_PWRITE64, unix.SYS_SENDTO, unix.SYS_SENDMSG, unix.SYS_SENDFILE,
	unix.SYS_PPOLL, unix.SYS_PSELECT6, unix.SYS_CLOSE,
	unix.SYS_NANOSLEEP, unix.SYS_CLOCK_NANOSLEEP, unix.SYS_WAIT4,
}
