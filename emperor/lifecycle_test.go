package emperor

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emperor-dev/emperor/control"
	"github.com/emperor-dev/emperor/reexec"
	"github.com/emperor-dev/emperor/vassal"
)

// The test binary is also the vassal init: the emperor re-executes
// os.Executable(), which here is this binary.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == reexec.InitCommand {
		os.Exit(vassal.Main(os.Args[2:]))
	}
	os.Exit(m.Run())
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type testEmperor struct {
	*Emperor
	dir  string
	ctl  string
	log  *syncBuf
	stop func()
	errc chan error
}

// startTest runs an emperor without namespaces (no root needed) on a fresh
// directory. The root integration tests cover the namespaced path.
func startTest(t *testing.T, mutate ...func(*Config)) *testEmperor {
	t.Helper()
	base := t.TempDir()
	dir := filepath.Join(base, "vassals")
	os.Mkdir(dir, 0o755)
	lb := &syncBuf{}
	cfg := DefaultConfig()
	cfg.VassalsDir, cfg.ControlPath, cfg.Namespaces = dir, filepath.Join(base, "run", "control.sock"), 0
	cfg.Throttle, cfg.MaxThrottle, cfg.Mercy, cfg.Rescan = 50*time.Millisecond, 200*time.Millisecond, 2*time.Second, 200*time.Millisecond
	cfg.Logger = slog.New(slog.NewTextHandler(lb, nil))
	for _, f := range mutate {
		f(&cfg)
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	te := &testEmperor{Emperor: e, dir: dir, ctl: cfg.ControlPath, log: lb, errc: make(chan error, 1)}
	go func() { te.errc <- e.Run(ctx) }()
	stopped := false
	te.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-te.errc:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(time.Minute):
			t.Error("Run did not return after cancel")
		}
	}
	t.Cleanup(func() {
		te.stop()
		if t.Failed() {
			t.Logf("log:\n%s", lb.String())
		}
	})
	// The socket file exists from bind(2), before listen(2): wait for an
	// answered call.
	waitUntil(t, time.Minute, "the control socket to answer", func() bool {
		_, err := control.Call(cfg.ControlPath, control.Request{Cmd: "status"}, time.Minute)
		return err == nil
	})
	return te
}

// waitUntil polls cond until it holds. d only stops a hang, never checks a
// speed: a shorter one is raised to a minute (a slow, busy machine takes
// what it takes).
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	d = max(d, time.Minute)
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (te *testEmperor) install(name, body string) string {
	tmp := filepath.Join(te.dir, "."+name+".tmp")
	os.WriteFile(tmp, []byte(body), 0o644)
	p := filepath.Join(te.dir, name+".ini")
	os.Rename(tmp, p)
	return p
}

func (te *testEmperor) get(name string) (control.VassalStatus, bool) {
	for _, v := range te.Status() {
		if v.Name == name {
			return v, true
		}
	}
	return control.VassalStatus{}, false
}

func (te *testEmperor) waitState(t *testing.T, name, state string) control.VassalStatus {
	t.Helper()
	var v control.VassalStatus
	waitUntil(t, time.Minute, name+" "+state, func() bool {
		var ok bool
		v, ok = te.get(name)
		return ok && v.State == state
	})
	return v
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

func TestLifecycle(t *testing.T) {
	te := startTest(t)
	p := te.install("app", "[uwsgi]\nattach-daemon = exec sleep 1000\n")
	v := te.waitState(t, "app", StateRunning)
	if v.PID == 0 || v.Namespaces != "none" || v.File != p || v.StartedAt.IsZero() || v.ReadyAt.IsZero() {
		t.Fatalf("%+v", v)
	}

	// A touch reloads in place: same PID 1, no restart counted.
	now := time.Now().Add(time.Second)
	os.Chtimes(p, now, now)
	waitUntil(t, time.Minute, "the reload", func() bool { return strings.Contains(te.log.String(), `msg="reload applied" vassal=app`) })
	if v2 := te.waitState(t, "app", StateRunning); v2.PID != v.PID || v2.Restarts != 0 {
		t.Fatalf("reload: %+v -> %+v", v, v2)
	}

	// A kill is a death: restarted at once (the first death is free).
	syscall.Kill(v.PID, syscall.SIGKILL)
	waitUntil(t, time.Minute, "a new PID 1", func() bool {
		n, _ := te.get("app")
		return n.State == StateRunning && n.PID != v.PID && n.PID != 0
	})
	n, _ := te.get("app")
	if n.Restarts != 1 || n.LastExit != "killed by killed" {
		t.Fatalf("%+v", n)
	}

	// A broken file leaves the running vassal alone and says why.
	te.install("app", "[uwsgi]\nattach-deamon = x\n")
	waitUntil(t, time.Minute, "the config error", func() bool { n, _ := te.get("app"); return n.ConfigError != "" })
	if b, _ := te.get("app"); b.PID != n.PID || b.State != StateRunning || !strings.Contains(b.ConfigError, p+":2: unknown option") {
		t.Fatalf("%+v", b)
	}

	// Deleting the file stops it and removes it from the table.
	os.Remove(p)
	waitUntil(t, time.Minute, "an empty table", func() bool { return len(te.Status()) == 0 })
	if alive(n.PID) {
		t.Fatal("PID 1 survived its file")
	}
}

func TestFailedConfigThenFixed(t *testing.T) {
	te := startTest(t)
	te.install("bad", "[uwsgi]\nif-not-reload =\nattach-daemon = sleep 1\n")
	v := te.waitState(t, "bad", StateFailedConfig)
	if !strings.Contains(v.ConfigError, ":2: if-not-reload opened here is never closed") || v.PID != 0 {
		t.Fatalf("%+v", v)
	}
	te.install("bad", "[uwsgi]\nattach-daemon = exec sleep 1000\n")
	v = te.waitState(t, "bad", StateRunning)
	if v.ConfigError != "" {
		t.Fatalf("%+v", v)
	}
}

func TestBackoffAndLastExit(t *testing.T) {
	te := startTest(t)
	dir := t.TempDir()
	te.install("crash", fmt.Sprintf("[uwsgi]\nchdir = %s/missing\n", dir))
	waitUntil(t, time.Minute, "3 restarts", func() bool { v, _ := te.get("crash"); return v.Restarts >= 3 })
	v, _ := te.get("crash")
	if !strings.Contains(v.LastExit, "chdir") {
		t.Fatalf("last exit %q", v.LastExit)
	}
	waitUntil(t, time.Minute, "backoff with a next attempt", func() bool {
		v, _ := te.get("crash")
		return v.State == StateBackoff && !v.NextAttempt.IsZero()
	})
	// Fixing what it needs and asking for a reload retries at once.
	os.Mkdir(filepath.Join(dir, "missing"), 0o755)
	if n, err := te.Reload("crash"); err != nil || n != 1 {
		t.Fatal(n, err)
	}
	te.waitState(t, "crash", StateRunning)
	if _, err := te.Reload("nosuch"); err == nil {
		t.Fatal("reload of an unknown vassal")
	}
}

func TestControlSocket(t *testing.T) {
	te := startTest(t)
	te.install("a", "[uwsgi]\nattach-daemon = exec sleep 1000\n")
	te.install("b", "[uwsgi]\nattach-daemon = exec sleep 1000\n")
	te.waitState(t, "a", StateRunning)
	te.waitState(t, "b", StateRunning)
	resp, err := control.Call(te.ctl, control.Request{Cmd: "status"}, time.Minute)
	if err != nil || len(resp.Vassals) != 2 || resp.Vassals[0].Name != "a" || resp.PID != os.Getpid() || resp.Since.IsZero() {
		t.Fatalf("%+v %v", resp, err)
	}
	if fi, _ := os.Stat(te.ctl); fi.Mode().Perm() != 0o660 {
		t.Fatalf("control socket mode %v", fi.Mode())
	}
	resp, err = control.Call(te.ctl, control.Request{Cmd: "reload"}, time.Minute)
	if err != nil || resp.Reloaded != 2 {
		t.Fatalf("%+v %v", resp, err)
	}
	if _, err := control.Call(te.ctl, control.Request{Cmd: "frobnicate"}, time.Minute); err == nil || !strings.Contains(err.Error(), `unknown command "frobnicate"`) {
		t.Fatal(err)
	}
	if _, err := control.Call(te.ctl, control.Request{Cmd: "reload", Name: "zz"}, time.Minute); err == nil || !strings.Contains(err.Error(), `no vassal named "zz"`) {
		t.Fatal(err)
	}
	// Garbage gets an answer, not a hang or a crash.
	c, err := net.Dial("unix", te.ctl)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("{not json\n"))
	c.SetReadDeadline(time.Now().Add(time.Minute))
	buf := make([]byte, 512)
	n, _ := c.Read(buf)
	c.Close()
	if !strings.Contains(string(buf[:n]), "bad request") {
		t.Fatalf("answer to garbage: %q", buf[:n])
	}
	// A second emperor on the same socket is refused, and the first goes on.
	cfg := DefaultConfig()
	cfg.VassalsDir, cfg.ControlPath, cfg.Logger = t.TempDir(), te.ctl, slog.New(slog.NewTextHandler(&syncBuf{}, nil))
	e2, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := e2.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "another emperor") {
		t.Fatal(err)
	}
	if _, err := control.Call(te.ctl, control.Request{Cmd: "status"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	// After a stop the socket is gone and every vassal with it.
	st := te.Status()
	te.stop()
	if _, err := os.Stat(te.ctl); err == nil {
		t.Fatal("control socket left behind")
	}
	for _, v := range st {
		if alive(v.PID) {
			t.Fatalf("%s (%d) survived the emperor's stop", v.Name, v.PID)
		}
	}
}

func TestStaleControlSocketIsReplaced(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.sock")
	ln, _ := net.Listen("unix", path)
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	l2, err := listenControl(path)
	if err != nil {
		t.Fatal(err)
	}
	l2.Close()
	plain := filepath.Join(dir, "plain")
	os.WriteFile(plain, nil, 0o644)
	if _, err := listenControl(plain); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatal(err)
	}
}

// Events lost by inotify are caught by the rescan: a file changed behind a
// symlink produces no event in the vassal directory.
func TestRescanFollowsSymlinks(t *testing.T) {
	te := startTest(t)
	real := writeFile(t, t.TempDir(), "real.ini", "[uwsgi]\nattach-daemon = exec sleep 1000\n")
	os.Symlink(real, filepath.Join(te.dir, "linked.ini"))
	v := te.waitState(t, "linked", StateRunning)
	later := time.Now().Add(time.Minute)
	os.Chtimes(real, later, later)
	waitUntil(t, time.Minute, "the reload", func() bool { return strings.Contains(te.log.String(), `msg="reload applied" vassal=linked`) })
	if n := te.waitState(t, "linked", StateRunning); n.PID != v.PID {
		t.Fatal("PID 1 changed")
	}
	os.Remove(real) // the link now dangles: the vassal goes
	waitUntil(t, time.Minute, "an empty table", func() bool { return len(te.Status()) == 0 })
}

func TestRunOne(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.Namespaces, cfg.Mercy = 0, 2*time.Second
	lb := &syncBuf{}
	cfg.Logger = slog.New(slog.NewTextHandler(lb, nil))
	p := writeFile(t, dir, "one.ini", "[uwsgi]\nattach-daemon = exec sleep 1000\n")
	ctx, cancel := context.WithCancel(context.Background())
	reload := make(chan struct{}, 1)
	errc := make(chan error, 1)
	go func() { errc <- RunOne(ctx, cfg, p, reload) }()
	waitUntil(t, time.Minute, "ready", func() bool { return strings.Contains(lb.String(), `msg="vassal ready" vassal=one pid=`) })
	reload <- struct{}{}
	waitUntil(t, time.Minute, "the reload", func() bool { return strings.Contains(lb.String(), `msg="reload applied" vassal=one`) })
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	// A vassal that dies ends RunOne with the reason.
	bad := writeFile(t, dir, "bad.ini", fmt.Sprintf("[uwsgi]\nchdir = %s/missing\n", dir))
	err := RunOne(context.Background(), cfg, bad, nil)
	if err == nil || !strings.Contains(err.Error(), "vassal bad exited: chdir") {
		t.Fatal(err)
	}
	if err := RunOne(context.Background(), cfg, filepath.Join(dir, "nope.ini"), nil); err == nil {
		t.Fatal("no error for a missing file")
	}
}

// A vassal directory that goes away (an unmounted share) is not "every file
// deleted": the vassals keep running. A directory created again at the path
// is watched again, and its files are taken as they are: nothing restarts.
func TestMissingDirectoryKeepsVassals(t *testing.T) {
	te := startTest(t)
	p := te.install("keep", "[uwsgi]\nattach-daemon = exec sleep 1000\n")
	v := te.waitState(t, "keep", StateRunning)
	aside := t.TempDir()
	if err := os.Rename(te.dir, filepath.Join(aside, "old")); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, time.Minute, "a rescan that cannot read the directory", func() bool {
		return strings.Contains(te.log.String(), "cannot read the vassal directory")
	})
	if n, ok := te.get("keep"); !ok || n.PID != v.PID || n.State != StateRunning {
		t.Fatalf("the vassal was touched: %+v", n)
	}
	// A new directory at the path, with the same file moved into it.
	os.Mkdir(te.dir, 0o755)
	os.Rename(filepath.Join(aside, "old", "keep.ini"), p)
	waitUntil(t, time.Minute, "inotify armed again", func() bool {
		return strings.Count(te.log.String(), `msg="watching the vassal directory"`) == 2
	})
	te.install("more", "[uwsgi]\nattach-daemon = exec sleep 1000\n")
	te.waitState(t, "more", StateRunning)
	if n, _ := te.get("keep"); n.PID != v.PID || strings.Contains(te.log.String(), `msg="reloading vassal in place" vassal=keep`) {
		t.Fatalf("the vassal was restarted or reloaded: %+v", n)
	}
}

// A reload asked for while the vassal is still starting (its hooks run) is
// applied once it is ready, with the same PID 1.
func TestReloadWhileStarting(t *testing.T) {
	te := startTest(t)
	p := te.install("slow", "[uwsgi]\nexec-asap = sleep 0.5\nattach-daemon = exec sleep 1000\n")
	var v control.VassalStatus
	waitUntil(t, time.Minute, "PID 1 spawned", func() bool {
		v, _ = te.get("slow")
		return v.State == StateStarting && v.PID != 0
	})
	later := time.Now().Add(time.Minute)
	os.Chtimes(p, later, later)
	waitUntil(t, time.Minute, "the reload after ready", func() bool {
		return strings.Contains(te.log.String(), `msg="reload applied" vassal=slow`)
	})
	log := te.log.String()
	if strings.Index(log, `msg="vassal ready" vassal=slow`) > strings.Index(log, `msg="reloading vassal in place" vassal=slow`) {
		t.Fatal("the reload was sent before the vassal was ready")
	}
	if n := te.waitState(t, "slow", StateRunning); n.PID != v.PID || n.Restarts != 0 {
		t.Fatalf("%+v -> %+v", v, n)
	}
}

// A vassal in backoff whose file breaks is not failed-config: it restarts on
// its last good file, and status says the file is broken.
func TestBackoffRestartsOnLastGoodFile(t *testing.T) {
	te := startTest(t)
	dir := t.TempDir()
	te.install("b", fmt.Sprintf("[uwsgi]\nchdir = %s/missing\nattach-daemon = exec sleep 1000\n", dir))
	waitUntil(t, time.Minute, "a restart", func() bool { v, _ := te.get("b"); return v.Restarts >= 1 })
	te.install("b", "[uwsgi]\nattach-deamon = typo\n")
	waitUntil(t, time.Minute, "the config error", func() bool { v, _ := te.get("b"); return v.ConfigError != "" })
	if v, _ := te.get("b"); v.State == StateFailedConfig {
		t.Fatalf("%+v", v)
	}
	os.Mkdir(filepath.Join(dir, "missing"), 0o755)
	v := te.waitState(t, "b", StateRunning)
	if !strings.Contains(v.ConfigError, ":2: unknown option") {
		t.Fatalf("%+v", v)
	}
}

// A storm of changes to a file coalesces: one reload in flight, one queued
// (with the newest file), at least reloadSpacing apart; the last file is
// the one applied.
func TestReloadStormCoalesces(t *testing.T) {
	te := startTest(t)
	out := filepath.Join(t.TempDir(), "gen")
	file := func(gen int) string {
		return fmt.Sprintf("[uwsgi]\nenv = GEN=%d\nattach-daemon = echo $GEN > %s; exec sleep 1000\n", gen, out)
	}
	te.install("storm", file(0))
	te.waitState(t, "storm", StateRunning)
	const writes = 40
	tick := time.NewTicker(20 * time.Millisecond)
	for gen := 1; gen <= writes; gen++ {
		<-tick.C
		te.install("storm", file(gen))
	}
	tick.Stop()
	waitUntil(t, time.Minute, "the daemon of the last file", func() bool {
		b, _ := os.ReadFile(out)
		return strings.TrimSpace(string(b)) == fmt.Sprint(writes)
	})
	v := te.waitState(t, "storm", StateRunning)
	reloads := strings.Count(te.log.String(), `msg="reloading vassal in place" vassal=storm`)
	t.Logf("%d writes, %d reloads", writes, reloads)
	if reloads > writes/3 || v.Restarts != 0 {
		t.Fatalf("%d writes gave %d reloads and %d restarts", writes, reloads, v.Restarts)
	}
}
