package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// touchReload touches the vassal file at path and waits until the emperor
// has logged one more "vassal reloaded".
func touchReload(t *testing.T, e *emperorProc, path, what string) {
	t.Helper()
	reloads := strings.Count(e.log.String(), `msg="vassal reloaded"`)
	now := time.Now()
	if err := os.Chtimes(path, now, now); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, what, func() bool {
		return strings.Count(e.log.String(), `msg="vassal reloaded"`) > reloads
	})
}

// reloadUnderLoad touches the vassal file at path while a load GETs url,
// waits for the reload to be done, and fails on any failed request.
func reloadUnderLoad(t *testing.T, e *emperorProc, path, url string) int64 {
	t.Helper()
	l := startLoad(url)
	l.waitAnswers(t, 20)
	touchReload(t, e, path, "the reload")
	l.waitAnswers(t, 20)
	l.end(t)
	return l.ok.Load()
}

// lazyPSGI is a vassal "lazy" running a PSGI app with master, 4 workers and
// lazy-apps (each worker loads the app itself, after the fork), serving
// "VERSION pid=PID".
type lazyPSGI struct {
	e           *emperorProc
	path, url   string
	pid, master int            // PID 1 and the uWSGI master
	write       func(v string) // writes the app's version v
}

// startLazyPSGI starts it at v1; prelude is Perl run when a worker loads
// the app.
func startLazyPSGI(t *testing.T, prelude string) *lazyPSGI {
	t.Helper()
	requireRoot(t)
	requireAppServer(t, "psgi")
	name, _, _ := testUser(t, "emplazy")
	dir := publicDir(t)
	a := &lazyPSGI{}
	a.write = func(version string) {
		src := fmt.Sprintf(`%smy $app = sub {
    my $env = shift;
    return [200, ['Content-Type' => 'text/plain'], ["%s pid=$$\n"]];
};
`, prelude, version)
		if err := os.WriteFile(filepath.Join(dir, "app.pl"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	a.write("v1")
	port := freePort(t)
	a.e = startEmperor(t)
	a.path = a.e.install("lazy", fmt.Sprintf(`[uwsgi]
uid = %[1]s
gid = %[1]s
chdir = %[2]s
psgi = app.pl
master = true
processes = 4
lazy-apps = true
http-socket = 127.0.0.1:%[3]d
`, name, dir, port))
	a.url = fmt.Sprintf("http://127.0.0.1:%d/", port)
	if body := waitHTTP(t, a.url, time.Minute); !strings.HasPrefix(body, "v1 ") {
		t.Fatalf("GET: %q", body)
	}
	a.pid = a.e.waitState("lazy", "running", time.Minute).PID
	a.master = appMaster(t, a.pid)
	return a
}

// same fails unless PID 1 and the uWSGI master are the ones it started with.
func (a *lazyPSGI) same(t *testing.T) {
	t.Helper()
	if nv := a.e.waitState("lazy", "running", time.Minute); nv.PID != a.pid {
		t.Fatalf("PID 1 changed from %d to %d", a.pid, nv.PID)
	}
	if m := appMaster(t, a.pid); m != a.master {
		t.Fatalf("uWSGI master %d -> %d", a.master, m)
	}
}

// The lazy-apps app, reloaded twice under load: same PID 1 and master, the
// new code, no failed request.
func TestAppServerPSGILazyAppsReloadUnderLoad(t *testing.T) {
	a := startLazyPSGI(t, "")
	for i, version := range []string{"v2", "v3"} {
		waitWorkersAccepting(t, a.master, 4)
		a.write(version)
		n := reloadUnderLoad(t, a.e, a.path, a.url)
		if body, _ := mustGet(t, a.url); !strings.HasPrefix(body, version+" ") {
			t.Fatalf("after reload %d: %q, want %s", i+1, body, version)
		}
		a.same(t)
		t.Logf("reload %d: %d requests, none failed", i+1, n)
	}
}

// A PHP app with master, up to 4 workers and cheaper (uWSGI's adaptive
// process spawning: 1 worker at the start, more under load), reloaded
// twice under load, each time while cheaper spawns workers: same PID 1 and
// master, the new code, no failed request.
func TestAppServerPHPCheaperReloadUnderLoad(t *testing.T) {
	requireRoot(t)
	requireAppServer(t, "php")
	name, _, _ := testUser(t, "empcheap")
	dir := publicDir(t)
	writeApp := func(version string) {
		if err := os.WriteFile(filepath.Join(dir, "index.php"), []byte("<?php usleep(10000); echo '"+version+" pid=', getmypid(); ?>"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeApp("v1")
	port := freePort(t)
	e := startEmperor(t)
	path := e.install("cheap", fmt.Sprintf(`[uwsgi]
uid = %[1]s
gid = %[1]s
plugins = php
http-socket = 127.0.0.1:%[3]d
http-socket-modifier1 = 14
php-docroot = %[2]s
php-index = index.php
php-allowed-ext = .php
master = true
processes = 4
cheaper = 1
cheaper-initial = 1
cheaper-step = 1
`, name, dir, port))
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	if body := waitHTTP(t, url, time.Minute); !strings.HasPrefix(body, "v1 ") {
		t.Fatalf("GET: %q", body)
	}
	v := e.waitState("cheap", "running", time.Minute)
	master := appMaster(t, v.PID)
	workers := func() int {
		n := 0
		for _, p := range allProcs() {
			if p.ppid == master && !strings.HasPrefix(p.state, "Z") {
				n++
			}
		}
		return n
	}
	if n := workers(); n != 1 {
		t.Fatalf("%d workers at the start, want cheaper's 1", n)
	}
	for i, version := range []string{"v2", "v3"} {
		writeApp(version)
		l := startLoad(url)
		// The load (4 clients, 10 ms a request) keeps the workers busy,
		// so cheaper spawns more: the reload comes while it does, as it
		// would on a busy site.
		waitFor(t, time.Minute, "cheaper to spawn a worker under load", func() bool { return workers() >= 2 })
		touchReload(t, e, path, "the reload")
		l.waitAnswers(t, 20)
		l.end(t)
		if body, _ := mustGet(t, url); !strings.HasPrefix(body, version+" ") {
			t.Fatalf("after reload %d: %q, want %s", i+1, body, version)
		}
		if nv := e.waitState("cheap", "running", time.Minute); nv.PID != v.PID {
			t.Fatalf("PID 1 changed from %d to %d", v.PID, nv.PID)
		}
		if m := appMaster(t, v.PID); m != master {
			t.Fatalf("uWSGI master %d -> %d", master, m)
		}
		t.Logf("reload %d: %d requests, none failed", i+1, l.ok.Load())
	}
}

// Back-to-back reloads of a lazy-apps app under load: each worker loads the
// app itself after the fork, slowly (0.3 s), and each touch comes as soon
// as the previous reload is done (worker 1 accepting), while the other
// workers may still be loading the app, before uWSGI gives them their
// SIGHUP handler. No request fails, and afterwards every worker serves the
// last code.
func TestAppServerPSGILazyAppsBackToBackReloads(t *testing.T) {
	a := startLazyPSGI(t, "select(undef, undef, undef, 0.3);\n")
	e, url, master := a.e, a.url, a.master
	l := startLoad(url)
	l.waitAnswers(t, 20)
	last := ""
	for _, version := range []string{"v2", "v3", "v4"} {
		a.write(version)
		touchReload(t, e, a.path, "reload to "+version)
		last = version
	}
	l.waitAnswers(t, 20)
	l.end(t)
	a.same(t)
	waitWorkersAccepting(t, master, 4)
	for i := 0; i < 40; i++ {
		if body, _ := mustGet(t, url); !strings.HasPrefix(body, last+" ") {
			t.Fatalf("after the reloads: %q, want %s from every worker", body, last)
		}
	}
	t.Logf("%d requests during 3 back-to-back reloads, none failed", l.ok.Load())
}
