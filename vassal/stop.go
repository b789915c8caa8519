package vassal

import (
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// killWait bounds the wait for a process after SIGKILL. SIGKILL cannot be
// caught or ignored, but a process in uninterruptible sleep (a read from a
// hung FUSE mount) dies only when that sleep ends. The caller goes on; the
// reaper collects the process whenever it does die.
const killWait = 5 * time.Second

// stopAndWait is the vassal's one kill-and-wait: SIGTERM through signal,
// SIGKILL if gone has not closed after mercy (at once when mercy is 0),
// then a wait for gone of at most killWait. It reports whether SIGKILL was
// needed and whether the process ended.
func stopAndWait(signal func(syscall.Signal), gone <-chan struct{}, mercy time.Duration) (killed, ended bool) {
	if mercy > 0 {
		signal(syscall.SIGTERM)
		t := time.NewTimer(mercy)
		select {
		case <-gone:
			t.Stop()
			return false, true
		case <-t.C:
		}
	}
	signal(syscall.SIGKILL)
	t := time.NewTimer(killWait)
	defer t.Stop()
	select {
	case <-gone:
		return true, true
	case <-t.C:
		return true, false
	}
}

// groupSignal signals the process group of a child started by startShell
// (its pid is its pgid): a daemon runs as /bin/sh -c, so the shell alone
// is not enough.
func groupSignal(pgid int) func(syscall.Signal) {
	return func(sig syscall.Signal) { killProcessGroup(pgid, sig) }
}

// reaped turns a child's exit channel into an event; *ws holds its status
// once the event has fired.
func reaped(exit <-chan unix.WaitStatus, ws *unix.WaitStatus) <-chan struct{} {
	gone := make(chan struct{})
	go func() {
		*ws = <-exit
		close(gone)
	}()
	return gone
}

// vanished is an event for a process that is not our child (a smart
// daemon reparented to PID 1, reaped by the reaper): pidAlive is polled
// until it fails or quit closes.
func vanished(pid int, quit <-chan struct{}) <-chan struct{} {
	gone := make(chan struct{})
	go func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for pidAlive(pid) {
			select {
			case <-quit:
				return
			case <-t.C:
			}
		}
		close(gone)
	}()
	return gone
}
