package vassal

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emperor-dev/emperor/procstat"
	"github.com/emperor-dev/emperor/reexec"
	"golang.org/x/sys/unix"
)

// One reaper per process, as in a vassal: two wait4(-1) loops would steal
// each other's statuses.
var (
	reaperOnce sync.Once
	testReaper *Reaper
)

func sharedReaper() *Reaper {
	reaperOnce.Do(func() { testReaper = NewReaper() })
	return testReaper
}

func devnullAttr(t *testing.T) *syscall.ProcAttr {
	t.Helper()
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return &syscall.ProcAttr{Env: os.Environ(), Files: []uintptr{f.Fd(), f.Fd(), f.Fd()}}
}

// Each child's status reaches the one who started it, even when the reaper
// also reaps orphans with wait4(-1) (as a child subreaper here, as PID 1 in a
// vassal).
func TestReaperDeliversStatusesAndReapsOrphans(t *testing.T) {
	if err := becomeSubreaper(); err != nil {
		t.Fatal(err)
	}
	r := sharedReaper()
	reaped := r.Subscribe()
	attr := devnullAttr(t)
	type started struct {
		code int
		ch   <-chan unix.WaitStatus
	}
	var all []started
	for code := 0; code < 20; code++ {
		// each child leaves an orphan behind that exits later
		_, ch, err := r.Start("/bin/sh", []string{"/bin/sh", "-c", "(sleep 0.05 &); exit " + strconv.Itoa(code)}, attr)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, started{code, ch})
	}
	for _, s := range all {
		select {
		case ws := <-s.ch:
			if !ws.Exited() || ws.ExitStatus() != s.code {
				t.Fatalf("child %d: %s", s.code, reexec.DescribeStatus(ws))
			}
		case <-time.After(time.Minute):
			t.Fatalf("child %d: no status", s.code)
		}
	}
	select {
	case <-reaped:
	case <-time.After(time.Minute):
		t.Fatal("subscribers hear of no exit")
	}
	// The orphans reparented to us and were reaped: no child, no zombie.
	deadline := time.Now().Add(time.Minute)
	for len(childrenOf(os.Getpid())) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d children left, %d zombies", len(childrenOf(os.Getpid())), zombieChildren(os.Getpid()))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestReaperSignalDeath(t *testing.T) {
	r := sharedReaper()
	pid, ch, err := r.Start("/bin/sleep", []string{"/bin/sleep", "100"}, devnullAttr(t))
	if err != nil {
		t.Fatal(err)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	ws := <-ch
	if !ws.Signaled() || reexec.DescribeStatus(ws) != "killed by killed" {
		t.Fatalf("%s", reexec.DescribeStatus(ws))
	}
	_, _, err = r.Start("/nonexistent/binary", []string{"/nonexistent/binary"}, devnullAttr(t))
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/binary") {
		t.Fatalf("%v", err)
	}
}

func zombieChildren(pid int) int {
	n := 0
	for _, c := range childrenOf(pid) {
		if s, err := procstat.Read(c); err == nil && s.Zombie() {
			n++
		}
	}
	return n
}

// After Close (PID 1 is exiting) Start forks nothing and says why; the
// reaper is not started here, so no wait4 races the shared one.
func TestReaperCloseRefusesStart(t *testing.T) {
	r := &Reaper{waiting: map[int]chan unix.WaitStatus{}}
	r.Close()
	pid, ch, err := r.Start("/bin/true", []string{"true"}, devnullAttr(t))
	if !errors.Is(err, ErrExiting) || pid != 0 || ch != nil {
		t.Fatalf("Start after Close: pid %d, %v, want ErrExiting", pid, err)
	}
	if !strings.Contains(err.Error(), `"true"`) {
		t.Fatalf("the error does not name the command: %v", err)
	}
	if len(r.waiting) != 0 {
		t.Fatalf("a refused start left a waiter: %v", r.waiting)
	}
}
