package integration

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// writeWSGIApp writes app.py in dir: a WSGI app that answers its version,
// its pid and its uid.
func writeWSGIApp(t *testing.T, dir, version string) {
	t.Helper()
	src := fmt.Sprintf(`import os

def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [('%s path=%%s pid=%%d uid=%%d' %% (environ['PATH_INFO'], os.getpid(), os.getuid())).encode()]
`, version)
	if err := os.WriteFile(filepath.Join(dir, "app.py"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A uwsgi-protocol socket (`socket = 127.0.0.1:PORT`, the way a vassal
// behind nginx's uwsgi_pass is written) with a WSGI app on python3, master
// and 2 workers, end to end: the test speaks the uwsgi protocol itself. A
// touch reloads it in place under a uwsgi-protocol load (same PID 1, same
// uWSGI master, the same listening socket, the new code, no failed
// request); a deleted file leaves no process and frees the port.
func TestAppServerUwsgiSocket(t *testing.T) {
	requireRoot(t)
	requireAppServer(t, "python3")
	name, uid, _ := testUser(t, "empuws")
	dir := publicDir(t)
	writeWSGIApp(t, dir, "v1")
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	e := startEmperor(t)
	path := e.install("uws", fmt.Sprintf(`[uwsgi]
uid = %[1]s
gid = %[1]s
chdir = %[2]s
plugin = python3
module = app:application
master = true
processes = 2
socket = %[3]s
vacuum = true
`, name, dir, addr))
	v := e.waitState("uws", "running", time.Minute)
	code, body, err := uwsgiGet(addr, "/hello?x=1")
	if err != nil || code != 200 {
		t.Fatalf("uwsgi GET /hello: %d %q %v", code, body, err)
	}
	if !strings.HasPrefix(body, "v1 path=/hello ") || !strings.HasSuffix(body, fmt.Sprintf(" uid=%d", uid)) {
		t.Fatalf("uwsgi GET /hello: %q", body)
	}
	ns := pidNamespace(v.PID)
	master := appMaster(t, v.PID)
	workers := waitWorkersAccepting(t, master, 2)
	if n := len(appProcs(ns)); n != 3 {
		t.Fatalf("%d uwsgi processes, want a master and 2 workers", n)
	}
	socks := tcpListeners(t, port)
	if len(socks) != 1 {
		t.Fatalf("listening sockets on port %d: %v, want one", port, socks)
	}

	t.Run("a touch reloads in place under load", func(t *testing.T) {
		writeWSGIApp(t, dir, "v2")
		l := startLoadWith(func() error {
			code, body, err := uwsgiGet(addr, "/load")
			if err != nil {
				return err
			}
			if code != 200 || !strings.Contains(body, " path=/load ") {
				return fmt.Errorf("status %d, body %q", code, body)
			}
			return nil
		})
		l.waitAnswers(t, 20)
		touchReload(t, e, path, "the reload")
		l.waitAnswers(t, 20)
		l.end(t)
		code, body, err := uwsgiGet(addr, "/after")
		if err != nil || code != 200 || !strings.HasPrefix(body, "v2 path=/after ") {
			t.Fatalf("after the reload: %d %q %v, want the new code", code, body, err)
		}
		reloadedInPlace(t, e, "uws", v.PID, master, 2, workers, port, socks)
		t.Logf("%d requests in the uwsgi protocol during the reload, none failed", l.ok.Load())
	})

	t.Run("a deleted file leaves no process and frees the port", func(t *testing.T) {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		waitFor(t, time.Minute, "the vassal gone", func() bool {
			_, ok := e.vassal("uws")
			return !ok
		})
		waitGone(t, ns)
		requirePortFreed(t, port)
	})
}

// uWSGI's http router in front of its workers, the way uWSGI's quickstart
// runs an app (`http = :9090`): the http gateway process, a child of the
// master, takes HTTP on the port and passes each request in the uwsgi
// protocol to the workers' own socket (127.0.0.1:0, which uWSGI binds when
// the file names none). It serves over HTTP; a touch reloads it in place
// under load (same PID 1, same master, the port's socket kept, a new
// gateway, the new code, no failed request); a deleted file leaves no
// process (no gateway either) and frees the port.
func TestAppServerHTTPRouter(t *testing.T) {
	requireRoot(t)
	requireAppServer(t, "python3")
	name, uid, _ := testUser(t, "emprtr")
	dir := publicDir(t)
	writeWSGIApp(t, dir, "v1")
	port := freePort(t)
	e := startEmperor(t)
	path := e.install("router", fmt.Sprintf(`[uwsgi]
uid = %[1]s
gid = %[1]s
chdir = %[2]s
plugins = python3
http = 127.0.0.1:%[3]d
wsgi-file = app.py
master = true
processes = 2
`, name, dir, port))
	url := fmt.Sprintf("http://127.0.0.1:%d/hello", port)
	body := waitHTTP(t, url, time.Minute)
	if !strings.HasPrefix(body, "v1 path=/hello ") || !strings.HasSuffix(body, fmt.Sprintf(" uid=%d", uid)) {
		t.Fatalf("GET %s: %q", url, body)
	}
	v := e.waitState("router", "running", time.Minute)
	ns := pidNamespace(v.PID)
	master := appMaster(t, v.PID)
	// Two workers and the gateway, each in its event loop.
	kids := waitWorkersAccepting(t, master, 3)
	for _, k := range kids {
		if p, _ := readProc(k); p.uid != uid {
			t.Fatalf("uwsgi pid %d (%s) runs as uid %d, want %d", k, p.comm, p.uid, uid)
		}
	}
	socks := tcpListeners(t, port)
	if len(socks) != 1 {
		t.Fatalf("listening sockets on port %d: %v, want one", port, socks)
	}

	t.Run("a touch reloads in place under load", func(t *testing.T) {
		writeWSGIApp(t, dir, "v2")
		// uWSGI 2.0's graceful reload SIGKILLs its gateways at once
		// (core/master_utils.c, uwsgi_destroy_processes, from
		// grace_them_all): a request the http router holds at that moment
		// is cut (EOF), at most one per client here. What PID 1 owes is
		// the rest: the port never refuses a connection (it holds the
		// socket; connections wait in the backlog for the new gateway),
		// and nothing else fails. See docs/appserver.md.
		var refused, cut atomic.Int64
		var lastCut atomic.Value
		l := startLoadWith(func() error {
			resp, err := oneShot.Get(url)
			if err != nil {
				if errors.Is(err, syscall.ECONNREFUSED) {
					refused.Add(1)
					return err
				}
				if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
					cut.Add(1)
					lastCut.Store(err.Error())
					return nil
				}
				return err
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				return err
			}
			if resp.StatusCode != 200 || !strings.Contains(string(b), " path=/hello ") {
				return fmt.Errorf("%s: %q", resp.Status, b)
			}
			return nil
		})
		l.waitAnswers(t, 20)
		touchReload(t, e, path, "the reload")
		l.waitAnswers(t, 20)
		l.end(t)
		if n := refused.Load(); n != 0 {
			t.Fatalf("%d connections refused during the reload: the port must stay open", n)
		}
		if n := cut.Load(); n > 4 {
			t.Fatalf("%d requests cut during the reload (last: %v): more than the 4 the gateway can hold when uWSGI kills it", n, lastCut.Load())
		} else if n > 0 {
			t.Logf("%d requests in flight in the gateway were cut by uWSGI's reload (last: %v)", n, lastCut.Load())
		}
		if body, _ := mustGet(t, url); !strings.HasPrefix(body, "v2 path=/hello ") {
			t.Fatalf("after the reload: %q, want the new code", body)
		}
		reloadedInPlace(t, e, "router", v.PID, master, 3, kids, port, socks)
		t.Logf("%d requests answered through the http router during the reload, %d cut by uWSGI, none refused", l.ok.Load()-cut.Load(), cut.Load())
	})

	t.Run("a deleted file leaves no gateway and frees the port", func(t *testing.T) {
		all := appProcs(ns)
		if len(all) != 4 {
			t.Fatalf("uwsgi processes %v, want the master, 2 workers and the gateway", all)
		}
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		waitFor(t, time.Minute, "the vassal gone", func() bool {
			_, ok := e.vassal("router")
			return !ok
		})
		waitGone(t, ns)
		waitPidsGone(t, "every uwsgi process of the vassal", all)
		requirePortFreed(t, port)
	})
}

// reloadedInPlace fails unless the graceful reload of vassal name kept its
// PID 1 (pid) and uWSGI master, replaced every process in old by n new
// accepting workers, and kept the one listening socket of port (socks, as
// before the reload).
func reloadedInPlace(t *testing.T, e *emperorProc, name string, pid, master, n int, old []int, port int, socks []string) {
	t.Helper()
	if nv := e.waitState(name, "running", time.Minute); nv.PID != pid {
		t.Fatalf("PID 1 changed from %d to %d: a touch reloads in place", pid, nv.PID)
	}
	if m := appMaster(t, pid); m != master {
		t.Fatalf("uWSGI master %d -> %d: a graceful reload re-execs the master in place", master, m)
	}
	for _, w := range waitWorkersAccepting(t, master, n) {
		for _, o := range old {
			if w == o {
				t.Fatalf("process %d (a worker or the gateway) survived the reload", w)
			}
		}
	}
	if s := tcpListeners(t, port); len(s) != 1 || s[0] != socks[0] {
		t.Fatalf("listening sockets on port %d: %v after the reload, %v before: the reload must keep the socket", port, s, socks)
	}
}
