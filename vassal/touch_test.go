package vassal

import (
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emperor-dev/emperor/control"
	"github.com/emperor-dev/emperor/vassalfile"
)

// touchHarness runs a touch watcher whose vassal talks to the test over a
// pipe: every reload it asks for arrives on asks.
type touchHarness struct {
	t    *testing.T
	w    *touchWatcher
	asks chan string
}

func newTouchHarness(t *testing.T, touches ...vassalfile.Touch) *touchHarness {
	t.Helper()
	ours, theirs := net.Pipe()
	v := &vassal{name: "t", log: slog.New(slog.DiscardHandler), conn: control.NewConn(theirs), reaper: &Reaper{}}
	h := &touchHarness{t: t, w: newTouchWatcher(v), asks: make(chan string, 16)}
	go func() {
		c := control.NewConn(ours)
		for {
			var m control.Message
			if err := c.Recv(&m); err != nil {
				return
			}
			if m.Type == control.MsgAskReload {
				h.asks <- m.Reason
			}
		}
	}()
	c := &config{spec: &vassalfile.Spec{Chdir: "/", Touches: touches}}
	if err := h.w.Start(c); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.w.Stop(); ours.Close(); theirs.Close() })
	// Changes count from the baseline, taken with the watches set.
	waitUntil(t, func() bool { return h.w.baselines.Load() > 0 })
	return h
}

// expect waits for the next reload request, which must name what.
func (h *touchHarness) expect(what string) {
	h.t.Helper()
	select {
	case r := <-h.asks:
		if !strings.Contains(r, what) {
			h.t.Fatalf("reload asked for %q, want one naming %q", r, what)
		}
	case <-time.After(time.Minute):
		h.t.Fatalf("no reload asked for after %s", what)
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// touch-reload reacts to the file appearing under directories that did
// not exist when the watch started, to a touch, to a rename over it, to a
// symlink on its path swapped to another target, and to its removal.
func TestTouchReloadFollowsTheFile(t *testing.T) {
	d := t.TempDir()
	path := filepath.Join(d, "app", "current", "tmp", "restart.txt")
	h := newTouchHarness(t, vassalfile.Touch{Action: "touch-reload", Path: path})

	rel1 := filepath.Join(d, "releases", "1", "tmp")
	if err := os.MkdirAll(rel1, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(d, "app"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rel1, "restart.txt"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(d, "releases", "1"), filepath.Join(d, "app", "current")); err != nil {
		t.Fatal(err)
	}
	h.expect("touch-reload " + path)

	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	h.expect("restart.txt")

	tmp := filepath.Join(rel1, ".restart.tmp")
	if err := os.WriteFile(tmp, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(rel1, "restart.txt")); err != nil {
		t.Fatal(err)
	}
	h.expect("restart.txt")

	// A deploy: releases/2 with an older restart.txt, current swapped to
	// it by rename (ln -sfn's way).
	rel2 := filepath.Join(d, "releases", "2", "tmp")
	if err := os.MkdirAll(rel2, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rel2, "restart.txt"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(filepath.Join(rel2, "restart.txt"), old, old); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(d, "releases", "2"), filepath.Join(d, "app", ".current.new")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(d, "app", ".current.new"), filepath.Join(d, "app", "current")); err != nil {
		t.Fatal(err)
	}
	h.expect("restart.txt")

	// The watches follow the new target: a touch there is seen.
	if err := os.Chtimes(filepath.Join(rel2, "restart.txt"), later, later); err != nil {
		t.Fatal(err)
	}
	h.expect("restart.txt")

	if err := os.Remove(filepath.Join(rel2, "restart.txt")); err != nil {
		t.Fatal(err)
	}
	h.expect("restart.txt")
}

// Several touch-reload files changed at once ask for one reload that names
// them; a relative path is under chdir.
func TestTouchReloadManyFiles(t *testing.T) {
	d := t.TempDir()
	a, b := filepath.Join(d, "a"), filepath.Join(d, "b")
	h := newTouchHarness(t, vassalfile.Touch{Action: "touch-reload", Path: a}, vassalfile.Touch{Action: "touch-chain-reload", Path: b})
	if err := os.WriteFile(b, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	h.expect("touch-chain-reload " + b)
	if err := os.WriteFile(a, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	h.expect("touch-reload " + a)

	entries := touchEntries(&vassalfile.Spec{Chdir: "/srv/app", Touches: []vassalfile.Touch{{Path: "tmp/reload"}}}, slog.New(slog.DiscardHandler))
	if entries[0].abs != "/srv/app/tmp/reload" {
		t.Errorf("relative path resolved to %s", entries[0].abs)
	}
	// touch-reload = %p: the emperor watches the vassal file already,
	// unless a jail makes the path another file.
	self := []vassalfile.Touch{{Action: "touch-reload", Path: "/v/a.ini"}, {Action: "touch-exec", Path: "/v/a.ini", Arg: "true"}}
	if e := touchEntries(&vassalfile.Spec{Path: "/v/a.ini", Touches: self}, slog.New(slog.DiscardHandler)); len(e) != 1 || e[0].t.Action != "touch-exec" {
		t.Errorf("without a jail: %d entries, want only touch-exec", len(e))
	}
	if e := touchEntries(&vassalfile.Spec{Path: "/v/a.ini", Chroot: "/jail", Touches: self}, slog.New(slog.DiscardHandler)); len(e) != 2 {
		t.Errorf("in a jail: %d entries, want both", len(e))
	}
}
