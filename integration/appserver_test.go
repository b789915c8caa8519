package integration

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// requireAppServer needs Debian's uWSGI and the plugins given.
func requireAppServer(t *testing.T, plugins ...string) {
	t.Helper()
	requireBinary(t, "uwsgi")
	for _, p := range plugins {
		if _, err := os.Stat("/usr/lib/uwsgi/plugins/" + p + "_plugin.so"); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("uWSGI plugin %s is missing (make deps installs it), and CI=true forbids skipping", p)
			}
			t.Skipf("uWSGI plugin %s is missing (make deps installs it)", p)
		}
	}
}

// fixedUser makes sure the user name exists for the test: created (with its
// group) when missing and removed afterwards; an existing one is left as
// it is.
func fixedUser(t *testing.T, name string) (uid, gid int) {
	t.Helper()
	if _, err := user.Lookup(name); err != nil {
		if out, err := exec.Command("useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", name).CombinedOutput(); err != nil {
			t.Fatalf("useradd %s: %v %s", name, err, out)
		}
		t.Cleanup(func() {
			if out, err := exec.Command("userdel", name).CombinedOutput(); err != nil {
				t.Errorf("userdel %s: %v %s", name, err, out)
			}
		})
	}
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Sscan(u.Uid, &uid)
	fmt.Sscan(u.Gid, &gid)
	return uid, gid
}

// fixedDir makes sure dir exists, removing it afterwards if the test made it.
func fixedDir(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(dir); err == nil {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(dir) })
}

// fixedFile writes path for the test and restores what was there before.
func fixedFile(t *testing.T, path string, write func(string)) {
	t.Helper()
	old, err := os.ReadFile(path)
	had := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	write(path)
	t.Cleanup(func() {
		if had {
			os.WriteFile(path, old, 0o644)
		} else {
			os.Remove(path)
		}
	})
}

// requirePortFree fails when a fixed port of a verbatim vassal is taken.
func requirePortFree(t *testing.T, port int) {
	t.Helper()
	l, err := net.Listen("tcp4", fmt.Sprintf(":%d", port))
	if err != nil {
		t.Fatalf("port %d, which the verbatim vassal file uses, is not free: %v", port, err)
	}
	l.Close()
}

// appProcs lists the app server's processes (uwsgi master and workers) in
// the pid namespace ns.
func appProcs(ns string) []int { return pidsInNSNamed(ns, "uwsgi") }

// waitGone waits until nothing runs in the pid namespace ns.
func waitGone(t *testing.T, ns string) {
	t.Helper()
	waitFor(t, time.Minute, "no process left in the vassal's namespace", func() bool {
		for _, pid := range procsInNamespace(ns) {
			if p, ok := readProc(pid); ok && !strings.HasPrefix(p.state, "Z") {
				return false
			}
		}
		return true
	})
}

const seedPSGI = `my $app = sub {
    my $env = shift;
    return [200, ['Content-Type' => 'text/plain', 'X-Pid' => $$], ["Hello World from the zip\n"]];
};
`

// Seed 003's zip vassal, verbatim: the PSGI app is inside the zip that
// fuse-zip mounts as the tenant, and uWSGI's app server runs it under our
// PID 1 after the privilege drop.
func TestAppServerSeedZipPSGI(t *testing.T) {
	fuseForUsers(t)
	requireAppServer(t, "psgi")
	requirePortFree(t, 9090)
	uid, gid := fixedUser(t, "user001")
	fixedDir(t, "/var/www")
	fixedFile(t, "/var/www/app001.zip", func(p string) { writeZip(t, p, map[string]string{"myapp.pl": seedPSGI}) })
	fixedDir(t, "/app")
	os.Chown("/app", uid, gid)
	e := startEmperor(t)
	path := e.install("app001", `[uwsgi]
uid = user001
gid = user001

; mount FUSE filesystem under /app (but only if it is not a reload)
if-not-reload =
  exec-as-user = fuse-zip -r /var/www/app001.zip /app
endif =

http-socket = :9090
psgi = /app/myapp.pl

; check for the mountpoint
mountpoint-check = /app
`)
	const url = "http://127.0.0.1:9090/"
	const hello = "Hello World from the zip\n"
	if body := waitHTTP(t, url, time.Minute); body != hello {
		t.Fatalf("GET %s: %q", url, body)
	}
	v := e.waitState("app001", "running", time.Minute)
	ns := pidNamespace(v.PID)
	for _, pid := range appProcs(ns) {
		if p, _ := readProc(pid); p.uid != uid {
			t.Fatalf("uwsgi pid %d runs as uid %d, want %d", pid, p.uid, uid)
		}
	}
	if len(appProcs(ns)) == 0 {
		t.Fatal("no uwsgi process in the vassal")
	}

	t.Run("killing fuse-zip restarts the vassal clean", func(t *testing.T) {
		v := e.waitState("app001", "running", time.Minute)
		ns := pidNamespace(v.PID)
		var fz []int
		waitFor(t, time.Minute, "fuse-zip in the vassal", func() bool {
			fz = pidsInNSNamed(ns, "fuse-zip")
			return len(fz) == 1
		})
		if err := syscall.Kill(fz[0], syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitFor(t, time.Minute, "fuse-zip dead", func() bool {
			p, ok := readProc(fz[0])
			return !ok || strings.HasPrefix(p.state, "Z")
		})
		waitFor(t, time.Minute, "a new PID 1 serving again", func() bool {
			nv, ok := e.vassal("app001")
			if !ok || nv.State != "running" || nv.PID == v.PID {
				return false
			}
			code, body, err := get(url)
			return err == nil && code == 200 && body == hello
		})
		waitGone(t, ns)
		if nv, _ := e.vassal("app001"); !strings.Contains(nv.LastExit, "/app") {
			t.Fatalf("last exit %q does not name the mount", nv.LastExit)
		}
	})

	// uWSGI's own graceful reload resets a connection that its worker
	// accepted just before the SIGHUP (gracefully_kill exits when the
	// worker is not yet in the request): about one reload in tens cut one
	// under this load before PID 1 held the workers (vassal/quiesce.go).
	t.Run("touches reload gracefully under load", func(t *testing.T) {
		v := e.waitState("app001", "running", time.Minute)
		l := startLoad(url)
		l.waitAnswers(t, 20)
		for i := 0; i < 25; i++ {
			reloads := strings.Count(e.log.String(), `msg="vassal reloaded"`)
			now := time.Now().Add(time.Duration(i+1) * time.Second)
			if err := os.Chtimes(path, now, now); err != nil {
				t.Fatal(err)
			}
			waitFor(t, time.Minute, "the reload", func() bool {
				return strings.Count(e.log.String(), `msg="vassal reloaded"`) > reloads
			})
			l.waitAnswers(t, 5)
		}
		l.end(t)
		if nv := e.waitState("app001", "running", time.Minute); nv.PID != v.PID {
			t.Fatalf("PID 1 changed from %d to %d: a touch reloads in place", v.PID, nv.PID)
		}
		if body, _ := mustGet(t, url); body != hello {
			t.Fatalf("after the reloads: %q", body)
		}
	})

	t.Run("a deleted file stops it and leaves no process", func(t *testing.T) {
		v := e.waitState("app001", "running", time.Minute)
		ns := pidNamespace(v.PID)
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		waitFor(t, time.Minute, "the vassal gone", func() bool {
			_, ok := e.vassal("app001")
			return !ok
		})
		waitGone(t, ns)
		if pids := pidsNamed("uwsgi"); len(pids) > 0 {
			for _, pid := range pids {
				if pidNamespace(pid) == ns {
					t.Fatalf("uwsgi pid %d left", pid)
				}
			}
		}
		if len(mountSeenAnywhere("/app")) > 0 {
			t.Fatal("/app still mounted somewhere")
		}
	})
}

// A WSGI app as a typical Django/Flask project's vassal file runs it: chdir,
// module, master with 2 workers, http-socket, vacuum, die-on-term. A touch
// reloads it gracefully in place (same PID 1, same uWSGI master) under
// load, serving the new code; a deleted file stops every process.
func TestAppServerWSGIProject(t *testing.T) {
	requireRoot(t)
	requireAppServer(t, "python3")
	name, uid, _ := testUser(t, "empwsgi")
	dir := publicDir(t)
	writeApp := func(version string) {
		src := fmt.Sprintf(`import os

def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [('%s pid=%%d uid=%%d' %% (os.getpid(), os.getuid())).encode()]
`, version)
		if err := os.WriteFile(filepath.Join(dir, "app.py"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeApp("v1")
	port := freePort(t)
	e := startEmperor(t)
	path := e.install("project", fmt.Sprintf(`[uwsgi]
uid = %s
gid = %s

chdir = %s
module = app:application

master = true
processes = 2
http-socket = 127.0.0.1:%d
vacuum = true
die-on-term = true
`, name, name, dir, port))
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	body := waitHTTP(t, url, time.Minute)
	if !strings.HasPrefix(body, "v1 ") || !strings.Contains(body, fmt.Sprintf("uid=%d", uid)) {
		t.Fatalf("GET: %q", body)
	}
	v := e.waitState("project", "running", time.Minute)
	ns := pidNamespace(v.PID)
	if n := len(appProcs(ns)); n != 3 {
		t.Fatalf("%d uwsgi processes, want a master and 2 workers", n)
	}
	master := func() int {
		for _, pid := range appProcs(ns) {
			if p, _ := readProc(pid); p.ppid == v.PID {
				return pid
			}
		}
		return 0
	}
	m1 := master()

	writeApp("v2")
	reloads := strings.Count(e.log.String(), `msg="vassal reloaded"`)
	l := startLoad(url)
	l.waitAnswers(t, 20)
	now := time.Now()
	os.Chtimes(path, now, now)
	waitFor(t, time.Minute, "the reload", func() bool {
		return strings.Count(e.log.String(), `msg="vassal reloaded"`) > reloads
	})
	l.waitAnswers(t, 20)
	l.end(t)
	if body, _ := mustGet(t, url); !strings.HasPrefix(body, "v2 ") {
		t.Fatalf("after the reload: %q, want the new code", body)
	}
	if nv := e.waitState("project", "running", time.Minute); nv.PID != v.PID {
		t.Fatalf("PID 1 changed from %d to %d", v.PID, nv.PID)
	}
	if m2 := master(); m2 != m1 {
		t.Fatalf("uWSGI master %d -> %d: a graceful reload re-execs the master in place", m1, m2)
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "the vassal gone", func() bool {
		_, ok := e.vassal("project")
		return !ok
	})
	waitGone(t, ns)
	if strings.Contains(e.log.String(), "ignored SIGINT") {
		t.Log("the app server needed SIGKILL after reload-mercy")
	}
}

// A PHP app as a typical PHP project's vassal runs it (uWSGI's "Running PHP
// scripts in uWSGI"): the php plugin on http-socket with modifier1 14,
// php-docroot, php-index, php-allowed-ext, static files served by uWSGI.
func TestAppServerPHPProject(t *testing.T) {
	requireRoot(t)
	requireAppServer(t, "php")
	name, _, _ := testUser(t, "empphp")
	dir := publicDir(t)
	os.WriteFile(filepath.Join(dir, "index.php"), []byte("<?php echo 'hello from php ', 6 * 7; ?>"), 0o644)
	os.WriteFile(filepath.Join(dir, "style.css"), []byte("body{}\n"), 0o644)
	port := freePort(t)
	e := startEmperor(t)
	e.install("site", fmt.Sprintf(`[uwsgi]
uid = %s
gid = %s
plugins = php
http-socket = 127.0.0.1:%d
http-socket-modifier1 = 14
master = true
processes = 2
php-docroot = %s
php-index = index.php
php-allowed-ext = .php
static-skip-ext = .php
check-static = %s
`, name, name, port, dir, dir))
	body := waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/", port), time.Minute)
	if body != "hello from php 42" {
		t.Fatalf("GET /: %q", body)
	}
	if css, _ := mustGet(t, fmt.Sprintf("http://127.0.0.1:%d/style.css", port)); css != "body{}\n" {
		t.Fatalf("GET /style.css: %q", css)
	}
}
