package mountcheck

import (
	"context"
	"strings"
	"testing"
	"time"
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
	start := time.Now()
	f := c.Run(context.Background(), time.Hour, trig)
	if f == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("trigger did not check at once: %v", f)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if f := New([]string{dir}, time.Second).Run(ctx, time.Hour, nil); f != nil {
		t.Fatal(f)
	}
}
