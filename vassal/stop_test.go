package vassal

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fakeProc ends on the first signal in dies.
type fakeProc struct {
	mu   sync.Mutex
	got  []syscall.Signal
	dies []syscall.Signal
	gone chan struct{}
}

func (f *fakeProc) signal(sig syscall.Signal) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, sig)
	if slices.Contains(f.dies, sig) && !slices.Contains(f.got[:len(f.got)-1], sig) {
		close(f.gone)
	}
}

func TestStopAndWait(t *testing.T) {
	for _, c := range []struct {
		name   string
		dies   []syscall.Signal
		mercy  time.Duration
		want   []syscall.Signal
		killed bool
	}{
		{"ends at SIGTERM", []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL}, time.Minute, []syscall.Signal{syscall.SIGTERM}, false},
		{"ignores SIGTERM", []syscall.Signal{syscall.SIGKILL}, 10 * time.Millisecond, []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL}, true},
		{"no mercy", []syscall.Signal{syscall.SIGKILL}, 0, []syscall.Signal{syscall.SIGKILL}, true},
	} {
		f := &fakeProc{dies: c.dies, gone: make(chan struct{})}
		killed, ended := stopAndWait(f.signal, f.gone, c.mercy)
		if !ended || killed != c.killed || !slices.Equal(f.got, c.want) {
			t.Errorf("%s: killed %v ended %v signals %v, want killed %v signals %v", c.name, killed, ended, f.got, c.killed, c.want)
		}
	}
}

// A real daemon that ignores SIGTERM, and a child it left in its process
// group, are both killed, and the stop is logged with the status.
func TestTerminateIgnoringSIGTERM(t *testing.T) {
	r := sharedReaper()
	attr := devnullAttr(t)
	attr.Sys = &syscall.SysProcAttr{Setpgid: true}
	pid, exit, err := r.Start("/bin/sh", []string{"/bin/sh", "-c", `trap "" TERM; sleep 600 & wait`}, attr)
	if err != nil {
		t.Fatal(err)
	}
	// Wait until the shell has forked its sleep into the group.
	deadline := time.Now().Add(time.Minute)
	for len(childrenOf(pid)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the shell never started its child")
		}
		time.Sleep(10 * time.Millisecond)
	}
	kid := childrenOf(pid)[0]
	var buf bytes.Buffer
	terminate(pid, exit, 50*time.Millisecond, slog.New(slog.NewTextHandler(&buf, nil)))
	if !strings.Contains(buf.String(), "daemon ignored SIGTERM, killed") || !strings.Contains(buf.String(), "killed by killed") {
		t.Fatalf("log: %s", buf.String())
	}
	// The group's SIGKILL reached the orphaned sleep too: it dies (and,
	// reparented to init or to our subreaper, is reaped).
	for pidAlive(kid) {
		if time.Now().After(deadline) {
			t.Fatalf("child %d of the daemon survived its stop", kid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
