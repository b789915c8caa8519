package vassal

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// fake is a component that records what the lifecycle asks of it.
type fake struct {
	name     string
	calls    *[]string
	release  bool   // implements releaser (through releasingFake)
	failOn   string // the content on whose Apply or Start it fails
	applied  string // the content it runs
	released bool
}

func (f *fake) Start(c *config) error {
	*f.calls = append(*f.calls, fmt.Sprintf("start %s %s", f.name, tag(c)))
	if f.failOn == tag(c) {
		return errors.New("refused " + tag(c))
	}
	f.applied = tag(c)
	return nil
}

func (f *fake) Apply(old, new *config) error {
	*f.calls = append(*f.calls, fmt.Sprintf("apply %s %s->%s", f.name, tag(old), tag(new)))
	if f.failOn == tag(new) {
		return errors.New("refused " + tag(new))
	}
	f.applied, f.released = tag(new), false
	return nil
}

func (f *fake) Stop() { *f.calls = append(*f.calls, "stop "+f.name) }

type releasingFake struct{ *fake }

func (f releasingFake) Release(old, new *config) {
	*f.calls = append(*f.calls, fmt.Sprintf("release %s %s->%s", f.name, tag(old), tag(new)))
	f.released = true
}

// tag is the first comment of a config's content: "; A" -> "A".
func tag(c *config) string {
	first, _, _ := strings.Cut(string(c.content), "\n")
	return strings.TrimPrefix(first, "; ")
}

func content(tag string) []byte { return []byte("; " + tag + "\n[uwsgi]\nenv = T=" + tag + "\n") }

func testLifecycle(t *testing.T, comps ...*fake) (*lifecycle, *[]string) {
	t.Helper()
	calls := &[]string{}
	v := &vassal{name: "t", path: "/vassals/t.ini", log: slog.New(slog.DiscardHandler)}
	l := &lifecycle{v: v}
	for _, f := range comps {
		f.calls = calls
		var c component = f
		if f.release {
			c = releasingFake{f}
		}
		l.comps = append(l.comps, namedComponent{f.name, c})
	}
	return l, calls
}

func expectCalls(t *testing.T, calls *[]string, want ...string) {
	t.Helper()
	if !slices.Equal(*calls, want) {
		t.Fatalf("calls:\n  %s\nwant:\n  %s", strings.Join(*calls, "\n  "), strings.Join(want, "\n  "))
	}
	*calls = nil
}

// Start in order, reload: release in reverse then apply in order, stop in
// reverse.
func TestLifecycleOrder(t *testing.T) {
	l, calls := testLifecycle(t, &fake{name: "a"}, &fake{name: "b", release: true}, &fake{name: "c"}, &fake{name: "d", release: true})
	if err := l.start(content("A")); err != nil {
		t.Fatal(err)
	}
	expectCalls(t, calls, "start a A", "start b A", "start c A", "start d A")
	if err := l.reload(content("B")); err != nil {
		t.Fatal(err)
	}
	expectCalls(t, calls, "release d A->B", "release b A->B", "apply a A->B", "apply b A->B", "apply c A->B", "apply d A->B")
	if tag(l.good) != "B" {
		t.Fatalf("good is %s", tag(l.good))
	}
	l.stop()
	expectCalls(t, calls, "stop d", "stop c", "stop b", "stop a")
}

// A component that refuses a reload: the ones applied before it go back to
// the old config as a reload would, and the released ones after it come
// back up; the last good file, content included, stays.
func TestLifecycleRollback(t *testing.T) {
	a, b, c, d := &fake{name: "a", release: true}, &fake{name: "b"}, &fake{name: "c", failOn: "B"}, &fake{name: "d", release: true}
	l, calls := testLifecycle(t, a, b, c, d)
	if err := l.start(content("A")); err != nil {
		t.Fatal(err)
	}
	*calls = nil
	err := l.reload(content("B"))
	var re *ReloadError
	if !errors.As(err, &re) || re.Restart || !strings.Contains(re.Reason, "c: refused B") {
		t.Fatalf("got %v", err)
	}
	expectCalls(t, calls,
		"release d A->B", "release a A->B",
		"apply a A->B", "apply b A->B", "apply c A->B",
		// roll back: a and b were applied, c refused, d was released
		"release a B->A",
		"apply a B->A", "apply b B->A", "apply d A->A")
	if tag(l.good) != "A" || string(l.good.content) != string(content("A")) {
		t.Fatalf("good is %q", l.good.content)
	}
	for _, f := range []*fake{a, b, c, d} {
		if f.applied != "A" {
			t.Errorf("%s runs %s", f.name, f.applied)
		}
	}
	// The next reload compares against A.
	if err := l.reload(content("C")); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(*calls, "apply c A->C") {
		t.Fatalf("calls %v", *calls)
	}
}

// A rollback that fails too is not a refusal: the vassal must be destroyed.
func TestLifecycleFailedRollback(t *testing.T) {
	l, _ := testLifecycle(t, &fake{name: "a", release: true, failOn: "A"}, &fake{name: "b", failOn: "B"})
	l.comps[0].c.(releasingFake).failOn = "" // starts on A
	if err := l.start(content("A")); err != nil {
		t.Fatal(err)
	}
	l.comps[0].c.(releasingFake).failOn = "A" // but cannot go back to it
	err := l.reload(content("B"))
	var re *ReloadError
	if err == nil || errors.As(err, &re) || !strings.Contains(err.Error(), "rolling back a") {
		t.Fatalf("got %v", err)
	}
}

// A failed start stops what started, in reverse, and not the failed one.
func TestLifecycleFailedStart(t *testing.T) {
	l, calls := testLifecycle(t, &fake{name: "a"}, &fake{name: "b"}, &fake{name: "c", failOn: "A"}, &fake{name: "d"})
	err := l.start(content("A"))
	var ce *ComponentError
	if !errors.As(err, &ce) || ce.Component != "c" || ce.Op != "start" {
		t.Fatalf("got %v", err)
	}
	expectCalls(t, calls, "start a A", "start b A", "start c A", "stop b", "stop a")
	l.stop()
	expectCalls(t, calls)
}

// A file that does not parse, or that changes what cannot change in place,
// touches no component.
func TestLifecycleRefusesBeforeApplying(t *testing.T) {
	l, calls := testLifecycle(t, &fake{name: "a", release: true})
	if err := l.start(content("A")); err != nil {
		t.Fatal(err)
	}
	*calls = nil
	var re *ReloadError
	if err := l.reload([]byte("[uwsgi]\nno-such-option = 1\n")); !errors.As(err, &re) || re.Restart {
		t.Fatalf("got %v", err)
	}
	if err := l.reload([]byte("; R\n[uwsgi]\nunshare = ipc\n")); !errors.As(err, &re) || !re.Restart {
		t.Fatalf("got %v", err)
	}
	expectCalls(t, calls)
	if tag(l.good) != "A" {
		t.Fatalf("good is %s", tag(l.good))
	}
}

// The components stop in reverse order of the list: mountpoint-check stops
// before the daemons, the file server and the chdir, and all of them before
// the as-user-atexit hooks run (a fusermount -u there must not find the
// mount busy); the sockets outlive the file server that serves them.
func TestComponentOrder(t *testing.T) {
	v := &vassal{log: slog.New(slog.DiscardHandler)}
	var names []string
	for _, nc := range v.components() {
		names = append(names, nc.name)
	}
	at := func(n string) int {
		i := slices.Index(names, n)
		if i < 0 {
			t.Fatalf("no component %q in %v", n, names)
		}
		return i
	}
	if !(at("hooks as-user") < at("chdir") && at("chdir") < at("http") && at("http") < at("daemons") && at("daemons") < at("mountpoint-check")) {
		t.Fatalf("order %v", names)
	}
	if !(at("jail") < at("sockets") && at("sockets") < at("credentials") && at("credentials") < at("hooks as-user")) {
		t.Fatalf("order %v", names)
	}
	if at("mountpoint-check") != len(names)-1 {
		t.Fatalf("mountpoint-check is not the first to stop: %v", names)
	}
}

// A request on a connection that outlived the file server's stop gets a
// 503, not a spin on the retired handler.
func TestServeAfterStopIs503(t *testing.T) {
	hs := &httpService{}
	retired := false
	g := newGeneration(nil, func() { retired = true })
	hs.gen.Store(g)
	g.release()
	if !retired {
		t.Fatal("the generation was not retired")
	}
	rec := httptest.NewRecorder()
	hs.serveHTTP(rec, httptest.NewRequest("GET", "/x", nil))
	if rec.Code != 503 {
		t.Fatalf("got %d", rec.Code)
	}
}
