package vassal

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emperor-dev/emperor/procstat"
	"github.com/emperor-dev/emperor/restart"
	"github.com/emperor-dev/emperor/vassalfile"
	"golang.org/x/sys/unix"
)

func TestAppSocketAddr(t *testing.T) {
	for _, c := range []struct {
		kind appSocketKind
		in   string
		want string
		ok   bool
	}{
		{appSockPlain, ":9090", ":9090", true},
		{appSockPlain, " 127.0.0.1:3031", "127.0.0.1:3031", true},
		{appSockPlain, "[::1]:3031", "[::1]:3031", true},
		{appSockPlain, "/run/app.sock", "", false},
		{appSockPlain, "@abstract", "", false},
		{appSockPlain, "=0", "", false},
		{appSockPlain, "fd://3", "", false},
		{appSockPlain, "192.168.*:3031", "", false},
		{appSockSSL, ":8443,crt.pem,key.pem", ":8443", true},
		{appSockRouter, ":8080", ":8080", true},
	} {
		got, ok := appSocketAddr(c.kind, c.in)
		if got != c.want || ok != c.ok {
			t.Errorf("appSocketAddr(%q) = %q, %v; want %q, %v", c.in, got, ok, c.want, c.ok)
		}
	}
	if !uwsgiSameSocket("0.0.0.0:80", ":80") || uwsgiSameSocket("127.0.0.1:80", ":80") {
		t.Error("uwsgiSameSocket")
	}
}

// Socket lines get the name uWSGI computes for the descriptor PID 1 bound
// (a host name would not match and uWSGI would bind again: EADDRINUSE);
// a router's socket becomes fd://N and is kept by safe-fd.
func TestAppFilesNamesSockets(t *testing.T) {
	bind := func(addr string) *os.File {
		f, err := bindAppSocket(addr, appSockOptsOf(nil))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	f1 := bind("localhost:0")
	name1, err := uwsgiSocketName(f1)
	if err != nil || !strings.HasPrefix(name1, "127.0.0.1:") {
		t.Fatalf("name %q, %v", name1, err)
	}
	f2 := bind("127.0.0.1:0")
	name2, _ := uwsgiSocketName(f2)
	lines := []vassalfile.AppLine{
		{Key: "plugin", Value: "python3"},
		{Key: "http-socket", Value: "localhost:" + strings.Split(name1, ":")[1], Line: 3},
		{Key: "http", Value: name2, Line: 4},
		{Key: "module", Value: "app:application", Line: 5},
	}
	socks := []appSocket{
		{key: "http-socket", addr: lines[1].Value, line: 3, f: f1},
		{key: "http", addr: name2, line: 4, f: f2},
	}
	out, files, safe, err := appFiles(lines, socks)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || files[0] != f1 || files[1] != f2 {
		t.Fatalf("files %v", files)
	}
	if out[1].Value != name1 {
		t.Errorf("http-socket = %q, want %q", out[1].Value, name1)
	}
	if out[2].Value != "fd://5" || len(safe) != 1 || safe[0] != 5 {
		t.Errorf("http = %q, safe %v; want fd://5, [5]", out[2].Value, safe)
	}
	argv := appArgv("/usr/bin/uwsgi", safe, "tok", 1500*time.Millisecond, appNeedsApp(lines))
	want := "/usr/bin/uwsgi --safe-fd 3 --safe-fd 5 --hook-accepting1 log:tok --reload-mercy 2 --worker-reload-mercy 2 --no-orphans --need-app --ini fd://3"
	if got := strings.Join(argv, " "); got != want {
		t.Errorf("argv\n got %s\nwant %s", got, want)
	}
	if s := safeOf(argv); len(s) != 1 || s[0] != 5 {
		t.Errorf("safeOf %v", s)
	}
}

func TestAppMissingPluginNamesPaths(t *testing.T) {
	err := checkAppPlugins([]vassalfile.AppLine{{Key: "plugins-dir", Value: "/nonexistent/plugins"}, {Key: "plugin", Value: "0:nosuch", Line: 7}}, "pivot_root /ufs", (&vassalfile.Spec{Path: "/v/app.ini"}).Where)
	var me *AppMissingError
	if !errors.As(err, &me) {
		t.Fatalf("err %v", err)
	}
	for _, want := range []string{"/nonexistent/plugins/nosuch_plugin.so", appPluginDir + "/nosuch_plugin.so", "/v/app.ini:7", "pivot_root /ufs", "docs/appserver.md"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
	if _, err := findAppBinary([]string{"PATH=/nonexistent"}, ""); err == nil || !strings.Contains(err.Error(), "/nonexistent/uwsgi") {
		t.Errorf("findAppBinary: %v", err)
	}
}

// The config memfd is read by the app server from the shared offset: a
// write rewinds it.
func TestAppConfigRewinds(t *testing.T) {
	c, err := newAppConfig("t")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, s := range []string{"[uwsgi]\nmodule = a:long_name\n", "[uwsgi]\nmodule = b\n"} {
		if err := c.write([]byte(s)); err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(c.f)
		if err != nil || string(b) != s {
			t.Fatalf("read %q, %v; want %q", b, err, s)
		}
	}
}

// testApp runs the app server component as PID 1 would, without root.
type testApp struct {
	t     *testing.T
	v     *vassal
	socks *appSockets
	app   *appServer
	log   *syncBuf
	dir   string
	port  string
	cur   *config
}

func haveUWSGI(t *testing.T) {
	t.Helper()
	if _, err := findAppBinary([]string{"PATH=" + DefaultPath}, ""); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	if _, err := os.Stat(appPluginDir + "/python3_plugin.so"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

const testWSGI = `def application(env, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'%s']
`

func newTestApp(t *testing.T) *testApp {
	haveUWSGI(t)
	dir := t.TempDir()
	for _, m := range []string{"one", "two"} {
		if err := os.WriteFile(filepath.Join(dir, m+".py"), []byte(fmt.Sprintf(testWSGI, m)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "bad.py"), []byte("raise RuntimeError('broken app')\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	lb := &syncBuf{}
	v := &vassal{name: "t", path: "/etc/uwsgi/vassals/t.ini", log: slog.New(slog.NewTextHandler(lb, nil)).With("vassal", "t"),
		reaper: sharedReaper(), mercy: 10 * time.Second,
		policy: restart.Policy{Throttle: 100 * time.Millisecond, MaxThrottle: time.Second, Burst: 2, HalfLife: time.Hour}}
	// The vassal's procfs, as PID 1 has one: a graceful reload holds the
	// workers through it (quiesce.go). Without it the reload is uWSGI's
	// plain SIGHUP, and a worker that just accepted a connection may drop
	// it (1 in 30 runs of the prefork test did).
	fs, err := procstat.OpenFS("/proc")
	if err != nil {
		t.Fatal(err)
	}
	v.procfs = fs
	t.Cleanup(func() { fs.Close() })
	ta := &testApp{t: t, v: v, log: lb, dir: dir, port: port}
	ta.socks = &appSockets{v: v}
	ta.app = &appServer{v: v, socks: ta.socks}
	t.Cleanup(func() {
		ta.app.Stop()
		ta.socks.Stop()
		if t.Failed() {
			t.Logf("log:\n%s", lb.String())
		}
	})
	return ta
}

func (ta *testApp) config(extra ...string) *config {
	lines := []vassalfile.AppLine{{Key: "plugin", Value: "python3"}, {Key: "http-socket", Value: "127.0.0.1:" + ta.port, Line: 2}}
	for i, kv := range extra {
		k, v, _ := strings.Cut(kv, "=")
		lines = append(lines, vassalfile.AppLine{Key: k, Value: v, Line: 3 + i})
	}
	spec := &vassalfile.Spec{Name: "t", Path: ta.v.path, Chdir: ta.dir, App: &vassalfile.App{Lines: lines, Sockets: lines[1:2]}}
	return &config{spec: spec}
}

func (ta *testApp) start(c *config) error {
	ta.t.Helper()
	if err := ta.socks.Start(c); err != nil {
		ta.t.Fatal(err)
	}
	ta.cur = c
	return ta.app.Start(c)
}

func (ta *testApp) apply(c *config) error {
	err := ta.app.Apply(ta.cur, c)
	if err == nil {
		ta.cur = c
	}
	return err
}

func (ta *testApp) get() (string, error) {
	resp, err := testClient.Get("http://127.0.0.1:" + ta.port + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return string(b), fmt.Errorf("status %d", resp.StatusCode)
	}
	return string(b), err
}

func (ta *testApp) pid() int {
	ta.app.run.mu.Lock()
	defer ta.app.run.mu.Unlock()
	return ta.app.run.pid
}

// load runs a client loop on several connections until stop is closed and
// counts failed requests.
func (ta *testApp) load(stop chan struct{}) (ok, failed *atomic.Int64, wait func()) {
	ok, failed = &atomic.Int64{}, &atomic.Int64{}
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := ta.get(); err != nil {
					failed.Add(1)
					ta.t.Logf("request failed: %v", err)
				} else {
					ok.Add(1)
				}
			}
		}()
	}
	return ok, failed, wg.Wait
}

// With a master, a reload is uWSGI's: SIGHUP, the master re-execs itself
// (same pid) reading the rewritten config from fd 3, inherits the socket
// PID 1 bound, and no request fails meanwhile. A stop leaves no process.
func TestAppServerMasterReloadsInPlace(t *testing.T) {
	testAppReload(t, true)
}

// Without a master, SIGHUP makes uWSGI exit 17 after its request; PID 1
// starts it again at once on the same socket (which queues connections
// meanwhile): no request fails either.
func TestAppServerSingleProcessReloads(t *testing.T) {
	testAppReload(t, false)
}

// Without a master and with 2 processes, the other worker finishes its
// request and exits too: no old code serves after the reload.
func TestAppServerPreforkReloads(t *testing.T) {
	testAppReload(t, false, "processes=2")
}

func testAppReload(t *testing.T, master bool, more ...string) {
	ta := newTestApp(t)
	extra := []string{"module=one:application"}
	if master {
		extra = append(extra, "master=true", "processes=2")
	}
	extra = append(extra, more...)
	if err := ta.start(ta.config(extra...)); err != nil {
		t.Fatal(err)
	}
	if body, err := ta.get(); err != nil || body != "one" {
		t.Fatalf("GET: %q, %v", body, err)
	}
	pid := ta.pid()
	// The reload is of a running app: every worker in its accept loop.
	// Readiness is worker 1's (hook-accepting1); a worker still setting up
	// has no SIGHUP handler yet and misses the reload (see
	// docs/appserver.md), which is a different case.
	workers := 0
	switch {
	case master:
		workers = 2
	case strings.Contains(strings.Join(more, " "), "processes=2"):
		workers = 1 // the first process forks the second
	}
	waitWorkersAccepting(t, pid, workers)
	stop := make(chan struct{})
	ok, failed, wait := ta.load(stop)
	extra[0] = "module=two:application"
	err := ta.apply(ta.config(extra...))
	// Requests keep going after the reload too.
	for n, deadline := ok.Load(), time.Now().Add(time.Minute); ok.Load() < n+20; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("no answers after the reload (apply: %v)", err)
			break
		}
	}
	close(stop)
	wait()
	if err != nil {
		t.Fatal(err)
	}
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed during the reload", failed.Load(), failed.Load()+ok.Load())
	}
	for i := 0; i < 20; i++ {
		if body, err := ta.get(); err != nil || body != "two" {
			t.Fatalf("after reload GET %d: %q, %v", i, body, err)
		}
	}
	if master && ta.pid() != pid {
		t.Errorf("master pid %d -> %d: a master reloads in place", pid, ta.pid())
	}
	if !ta.app.Running() {
		t.Error("Running() = false")
	}
	last := ta.pid()
	ta.app.Stop()
	// Stop has killed what was left of the group; the reaper collects the
	// workers (orphans) as their exits come in. The group before the
	// reload (pid) goes too: a worker of a uWSGI without master that
	// missed the reload's SIGHUP is killed after mercy (10 s here).
	for _, g := range []int{last, pid} {
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(5 * time.Millisecond) {
			if err := syscall.Kill(-g, 0); errors.Is(err, syscall.ESRCH) {
				break
			} else if time.Now().After(deadline) {
				syscall.Kill(-g, syscall.SIGKILL)
				t.Fatalf("process group %d still there a minute after Stop: %v", g, err)
			}
		}
	}
	if !strings.Contains(ta.log.String(), "app server accepting connections") {
		t.Error("no readiness line in the log")
	}
}

// A start whose app does not load is a failed start with uWSGI's error in
// the log; a reload to such a file is an error (the lifecycle rolls it
// back) and applying the old file again serves again.
func TestAppServerBadApp(t *testing.T) {
	ta := newTestApp(t)
	err := ta.start(ta.config("module=bad:application"))
	var se *AppStartError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "exit status 22") {
		t.Fatalf("start: %v", err)
	}
	if !strings.Contains(ta.log.String(), "broken app") {
		t.Error("uWSGI's traceback is not in the log")
	}
	ta.socks.Stop()

	ta = newTestApp(t)
	good := ta.config("module=one:application", "master=true")
	if err := ta.start(good); err != nil {
		t.Fatal(err)
	}
	if err := ta.apply(ta.config("module=bad:application", "master=true")); err == nil {
		t.Fatal("a reload to a broken app succeeded")
	}
	if err := ta.apply(good); err != nil {
		t.Fatalf("roll back: %v", err)
	}
	if body, err := ta.get(); err != nil || body != "one" {
		t.Fatalf("after roll back GET: %q, %v", body, err)
	}
}

// An app server that dies on its own is started again by the restart
// policy and serves again.
func TestAppServerRestartsAfterCrash(t *testing.T) {
	ta := newTestApp(t)
	if err := ta.start(ta.config("module=one:application", "master=true")); err != nil {
		t.Fatal(err)
	}
	pid := ta.pid()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		if p := ta.pid(); p != 0 && p != pid && strings.Count(ta.log.String(), "app server accepting connections") >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("not restarted")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if body, err := ta.get(); err != nil || body != "one" {
		t.Fatalf("after restart GET: %q, %v", body, err)
	}
}

// testClient's timeout only stops a hang.
var testClient = &http.Client{Timeout: time.Minute, Transport: &http.Transport{DisableKeepAlives: true}}

func TestAppSockOpts(t *testing.T) {
	o := appSockOptsOf([]vassalfile.AppLine{{Key: "listen", Value: "1024"}, {Key: "socket-timeout", Value: "10"}, {Key: "reuse-port", Value: "true"}})
	if o != (appSockOpts{backlog: 1024, deferAccept: 10, reusePort: true}) {
		t.Errorf("opts %+v", o)
	}
	if o := appSockOptsOf([]vassalfile.AppLine{{Key: "no-defer-accept", Value: "true"}}); o.deferAccept != 0 || o.backlog != 100 {
		t.Errorf("no-defer-accept: %+v", o)
	}
	f, err := bindAppSocket("127.0.0.1:0", appSockOptsOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if v, err := unix.GetsockoptInt(int(f.Fd()), unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT); err != nil || v == 0 {
		t.Errorf("TCP_DEFER_ACCEPT = %d, %v", v, err)
	}
}

// PID 1 itself, with a vassal file that asks for an app: it is ready only
// once uWSGI accepts (the first request after the ready message is
// answered), and SIGQUIT stops it as SIGINT does in uWSGI 2.0 (the Go
// runtime's default for SIGQUIT is a goroutine dump and exit 2), leaving no
// app server process.
func TestPID1AppServerSIGQUIT(t *testing.T) {
	haveUWSGI(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "one.py"), []byte(fmt.Sprintf(testWSGI, "one")), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	p := startPID1(t, fmt.Sprintf("[uwsgi]\nchdir = %s\nhttp-socket = 127.0.0.1:%d\nmodule = one:application\nmaster = true\nprocesses = 2\n", dir, port))
	resp, err := testClient.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "one" {
		t.Fatalf("GET: %q", body)
	}
	master := 0
	for _, k := range childrenOf(p.pid) {
		master = k
	}
	if master == 0 {
		t.Fatal("no app server under PID 1")
	}
	if err := syscall.Kill(p.pid, syscall.SIGQUIT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(hang):
		t.Fatal("the vassal did not stop")
	}
	// The app server is stopped either way PID 1 stops it: SIGINT, or
	// SIGKILL after reload-mercy. The second happens when a worker still
	// starting when the signal came misses the master's SIGINT and waits in
	// its accept loop (seen here: worker 2 in epoll_wait, the master waiting
	// for it); that race is uWSGI's, and mercy is what bounds it.
	stopped := strings.Contains(p.log.String(), "app server stopped") ||
		strings.Contains(p.log.String(), "app server ignored SIGINT, killed")
	if !p.status.Exited() || p.status.ExitStatus() != 0 || !stopped {
		t.Fatalf("the vassal ended with %v, want a clean stop with the app server stopped; log:\n%s", p.status, p.log.String())
	}
	for deadline := time.Now().Add(hang); pidAlive(master); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("app server master %d still there", master)
		}
	}
}

// A master killed outright takes its workers with it (--no-orphans): the
// vassal's PID 1 is SIGKILLed with no PID namespace around it (as the
// emperor's death leaves a vassal of emperor-use-clone = none), Pdeathsig
// kills the master, and no worker may outlive it. Before --no-orphans the
// workers ran on, reparented to the host's init, spinning at full CPU.
func TestAppWorkersDieWithMaster(t *testing.T) {
	haveUWSGI(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "one.py"), []byte(fmt.Sprintf(testWSGI, "one")), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startPID1(t, fmt.Sprintf("[uwsgi]\nchdir = %s\nhttp-socket = 127.0.0.1:%d\nmodule = one:application\nmaster = true\nprocesses = 2\n", dir, freeTCPPort(t)))
	masters, err := procstat.Children(p.pid)
	if err != nil || len(masters) != 1 {
		t.Fatalf("children of PID 1: %v, %v", masters, err)
	}
	workers, err := procstat.Children(masters[0])
	if err != nil || len(workers) != 2 {
		t.Fatalf("workers of master %d: %v, %v", masters[0], workers, err)
	}
	if err := syscall.Kill(p.pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
	all := append(masters, workers...)
	gone := func(pid int) bool {
		st, err := procstat.Read(pid)
		return err != nil || st.Zombie()
	}
	deadline := time.Now().Add(hang)
	for _, w := range all {
		for !gone(w) {
			if time.Now().After(deadline) {
				// End what this test started before failing: a worker
				// left behind spins at full CPU.
				for _, p := range all {
					syscall.Kill(p, syscall.SIGKILL)
				}
				t.Fatalf("process %d outlived its master %d", w, masters[0])
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// waitWorkersAccepting waits until pid has n children, each asleep in its
// accept loop (epoll_wait or accept in the kernel), which uWSGI enters only
// after it has installed the worker's signal handlers.
func waitWorkersAccepting(t *testing.T, pid, n int) {
	t.Helper()
	inAccept := func(p int) bool {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/wchan", p))
		w := string(b)
		return err == nil && (w == "do_epoll_wait" || w == "ep_poll" || w == "inet_csk_accept")
	}
	deadline := time.Now().Add(hang)
	for !func() bool {
		kids, err := procstat.Children(pid)
		if err != nil || len(kids) != n {
			return false
		}
		for _, k := range kids {
			if !inAccept(k) {
				return false
			}
		}
		return true
	}() {
		if time.Now().After(deadline) {
			t.Fatalf("%d workers of %d not in their accept loop", n, pid)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
