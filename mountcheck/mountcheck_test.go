package mountcheck

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestHealthyAndMissing(t *testing.T) {
	dir := t.TempDir()
	c := New([]string{dir}, time.Second)
	if f := c.Check(); f != nil {
		t.Fatal(f)
	}
	c = New([]string{dir + "/missing"}, time.Second)
	f := c.Check()
	if f == nil || !strings.Contains(f.Error(), "ENOENT") || f.Path != dir+"/missing" {
		t.Fatalf("%v", f)
	}
}

// A path that was a mount point at start and is not one now fails. "/" is
// always a mount point, so fake the memory of one.
func TestUnmountedDetected(t *testing.T) {
	dir := t.TempDir()
	c := New([]string{dir}, time.Second)
	c.wasMount[dir] = true
	f := c.Check()
	if f == nil || !strings.Contains(f.Reason, "no longer a mount point") {
		t.Fatalf("%v", f)
	}
	c2 := New([]string{dir}, time.Second)
	c2.Carry(c)
	if !c2.wasMount[dir] {
		t.Fatal("Carry lost the mount state")
	}
}

func TestRunTrigger(t *testing.T) {
	dir := t.TempDir()
	c := New([]string{dir}, time.Second)
	c.wasMount[dir] = true
	trig := make(chan struct{}, 1)
	trig <- struct{}{}
	// With an hour's interval, only the trigger can make Run check.
	if f := c.Run(context.Background(), time.Hour, trig); f == nil {
		t.Fatal("Run returned no failure")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if f := New([]string{dir}, time.Second).Run(ctx, time.Hour, nil); f != nil {
		t.Fatal(f)
	}
}

// blockingStatfs makes c's statfs block until release is closed, and says
// on entered when a call has started.
func blockingStatfs(c *Checker) (entered chan string, release chan struct{}) {
	entered, release = make(chan string, 16), make(chan struct{})
	c.sysStatfs = func(p string, st *unix.Statfs_t) error {
		entered <- p
		<-release
		return unix.Statfs(p, st)
	}
	return entered, release
}

// Stop waits for a statfs in flight (it holds the mount busy: the tenant's
// fusermount -u would fail with EBUSY), and no statfs starts after it.
func TestStopWaitsForStatfsInFlight(t *testing.T) {
	dir := t.TempDir()
	c := New([]string{dir}, time.Hour)
	entered, release := blockingStatfs(c)
	checked := make(chan *Failure, 1)
	go func() { checked <- c.Check() }()
	<-entered
	stopped := make(chan error, 1)
	go func() { stopped <- c.Stop() }()
	<-c.quit
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned (%v) while a statfs was in flight", err)
	case <-checked:
		t.Fatal("Check returned while its statfs was blocked")
	default:
	}
	close(release)
	if err := <-stopped; err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if f := <-checked; f != nil {
		t.Fatalf("the check in flight: %v", f)
	}
	c.mu.Lock()
	n := len(c.inflight)
	c.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d statfs calls in flight after Stop", n)
	}
	f := c.Check()
	if f == nil || !errors.Is(f, ErrStopped) {
		t.Fatalf("a check after Stop: %v, want ErrStopped", f)
	}
	select {
	case p := <-entered:
		t.Fatalf("statfs of %s started after Stop", p)
	default:
	}
	if err := c.Stop(); err != nil {
		t.Fatalf("a second Stop: %v", err)
	}
}

// A statfs that never returns (a hung FUSE daemon) bounds Stop by the check
// timeout, and Stop names the path.
func TestStopGivesUpOnHungStatfs(t *testing.T) {
	dir := t.TempDir()
	c := New([]string{dir}, 50*time.Millisecond)
	entered, release := blockingStatfs(c)
	defer close(release)
	go c.Check()
	<-entered
	err := c.Stop()
	var sb *StillBlockedError
	if !errors.As(err, &sb) || len(sb.Paths) != 1 || sb.Paths[0] != dir {
		t.Fatalf("Stop: %v, want StillBlockedError for %s", err, dir)
	}
}

// Run ends at Stop, and a failure it sees after Stop (the tenant's own
// unmount) is not reported.
func TestRunEndsAtStop(t *testing.T) {
	dir := t.TempDir()
	c := New([]string{dir}, time.Hour)
	c.wasMount[dir] = true // Check fails: "no longer a mount point"
	entered, release := blockingStatfs(c)
	trig := make(chan struct{}, 1)
	trig <- struct{}{}
	ran := make(chan *Failure, 1)
	go func() { ran <- c.Run(context.Background(), time.Hour, trig) }()
	<-entered
	stopped := make(chan error, 1)
	go func() { stopped <- c.Stop() }()
	<-c.quit // Stop has begun: the unmount may happen from now on
	close(release)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if f := <-ran; f != nil {
		t.Fatalf("Run reported %v after Stop", f)
	}
}

// The statfs runs on a thread that blocks PID 1's signals: on a hung FUSE
// mount a thread asleep in it would swallow a SIGTERM (package nosignal).
func TestStatfsTakesNoSignal(t *testing.T) {
	dir := t.TempDir()
	c := New([]string{dir}, time.Minute)
	var mask string
	c.sysStatfs = func(p string, st *unix.Statfs_t) error {
		b, err := os.ReadFile("/proc/thread-self/status")
		if err != nil {
			return err
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "SigBlk:"); ok {
				mask = strings.TrimSpace(v)
			}
		}
		return unix.Statfs(p, st)
	}
	if f := c.Check(); f != nil {
		t.Fatal(f)
	}
	m, err := strconv.ParseUint(mask, 16, 64)
	if err != nil {
		t.Fatalf("SigBlk %q: %v", mask, err)
	}
	for _, s := range []unix.Signal{unix.SIGTERM, unix.SIGINT, unix.SIGQUIT, unix.SIGHUP, unix.SIGUSR1, unix.SIGCHLD} {
		if m&(1<<(uint(s)-1)) == 0 {
			t.Errorf("statfs ran with %v unblocked (SigBlk %s)", s, mask)
		}
	}
}
