package nosignal

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// blocked reads the calling thread's signal mask from the kernel.
func blocked(t *testing.T) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/thread-self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "SigBlk:"); ok {
			m, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			return m
		}
	}
	t.Fatal("no SigBlk in /proc/thread-self/status")
	return 0
}

func bit(s unix.Signal) uint64 { return 1 << (uint(s) - 1) }

// Inside Do the kernel sees PID 1's signals blocked on the thread, the
// synchronous ones not; after it the thread's mask is what it was.
func TestDoBlocksOnTheThread(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	before := blocked(t)
	var inside uint64
	Do(func() { inside = blocked(t) })
	for _, s := range []unix.Signal{unix.SIGTERM, unix.SIGINT, unix.SIGQUIT, unix.SIGHUP, unix.SIGUSR1, unix.SIGCHLD, unix.SIGURG, unix.SIGPROF} {
		if inside&bit(s) == 0 {
			t.Errorf("%v not blocked inside Do (SigBlk %016x)", s, inside)
		}
	}
	for _, s := range synchronous {
		if inside&bit(s) != 0 {
			t.Errorf("synchronous %v blocked inside Do (SigBlk %016x)", s, inside)
		}
	}
	if after := blocked(t); after != before {
		t.Errorf("mask after Do %016x, before %016x", after, before)
	}
}

// A signal sent to the thread while Do runs waits until Do returns: it is
// blocked, not lost.
func TestSignalDuringDoIsDeliveredAfter(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tid := unix.Gettid()
	var pending bool
	Do(func() {
		if err := unix.Tgkill(unix.Getpid(), tid, unix.SIGURG); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile("/proc/thread-self/status")
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "SigPnd:"); ok {
				m, _ := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
				pending = m&bit(unix.SIGURG) != 0
			}
		}
	})
	if !pending {
		t.Fatal("SIGURG sent to the thread inside Do was not held pending")
	}
}
