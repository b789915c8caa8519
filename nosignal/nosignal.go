// Package nosignal runs a call that can block in the kernel for good (a
// statfs(2) or a path lookup into a FUSE mount whose daemon hangs) on an OS
// thread that takes no asynchronous signal while the call runs.
//
// The kernel delivers a process-directed signal (kill(2) of PID 1 by the
// emperor or an operator) to one thread of the process that does not block
// it, preferring the main thread (kernel/signal.c, complete_signal and
// wants_signal). A thread asleep in a FUSE request is such a thread: the
// signal interrupts the request, fuse_request_wait_answer then waits for the
// daemon's answer in a killable sleep (fs/fuse/dev.c), and a hung daemon
// never answers. The signal stays pending on that thread, the thread never
// returns to user space to run the Go runtime's handler, and no other
// thread is woken for it: the signal is lost for as long as the mount
// hangs. A thread that blocks the signal is never chosen, so the kernel
// picks another one, whose handler hands the signal to os/signal.
package nosignal

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// synchronous are the signals the kernel raises on the thread that faulted:
// blocking them would turn a fault into a kill, and they are never sent to
// the process as a whole.
var synchronous = []unix.Signal{unix.SIGSEGV, unix.SIGBUS, unix.SIGFPE, unix.SIGILL, unix.SIGTRAP, unix.SIGSYS}

// Set is every signal Do blocks: all of them but the synchronous ones
// (SIGKILL and SIGSTOP cannot be blocked, and the kernel ignores them in a
// mask).
func Set() unix.Sigset_t {
	var s unix.Sigset_t
	for i := range s.Val {
		s.Val[i] = ^uint64(0)
	}
	for _, sig := range synchronous {
		n := uint(sig) - 1
		s.Val[n/64] &^= 1 << (n % 64)
	}
	return s
}

// Do runs fn on the calling goroutine's OS thread, locked to it, with Set
// blocked on that thread; the thread's mask is restored and the thread
// unlocked when fn returns. A fn that never returns keeps its thread, which
// takes no signal meanwhile.
//
// fn should be the one call that may block, not code that waits on
// channels: a goroutine parked while locked keeps its thread out of use.
func Do(fn func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	old, err := block()
	if err != nil {
		// pthread_sigmask fails only for a bad "how" or a bad address:
		// not here. Run the call anyway; it is no worse than before.
		fn()
		return
	}
	defer restore(old)
	fn()
}

// block adds Set to the thread's signal mask (rt_sigprocmask(SIG_BLOCK)),
// on the calling thread only: the kernel keeps one mask per
// thread, and a process-directed signal goes to a thread that does not
// block it.
func block() (unix.Sigset_t, error) {
	set, old := Set(), unix.Sigset_t{}
	err := unix.PthreadSigmask(unix.SIG_BLOCK, &set, &old)
	return old, err
}

// restore puts back the mask block saved (rt_sigprocmask(SIG_SETMASK)): a
// signal that arrived meanwhile for this thread is delivered now.
func restore(old unix.Sigset_t) {
	_ = unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)
}
