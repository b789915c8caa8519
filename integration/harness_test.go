// Package integration runs the real emperor binary as root, with real
// namespaces, FUSE daemons and processes. Every test here needs root; without
// it the tests skip, and under CI=true a skip is a failure.
package integration

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emperor-dev/emperor/control"
)

var emperorBin string

func TestMain(m *testing.M) {
	if os.Getenv("EMPEROR_TEST_HTTPD") != "" {
		testHTTPD()
		return
	}
	if os.Getenv(hungStatfsEnv) != "" {
		hungStatfs()
		return
	}
	dir, err := os.MkdirTemp("", "emperor-it-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	emperorBin = filepath.Join(dir, "emperor")
	build := exec.Command("go", "build", "-o", emperorBin, "../cmd/emperor")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build emperor: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	teardownGluster()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testHTTPD is an attached daemon for tests: it serves on the inherited
// shared socket (fd 3, LISTEN_FDS) or on EMPEROR_TEST_HTTPD_ADDR, answers
// with its pid, and drains in-flight requests on SIGTERM.
func testHTTPD() {
	var ln net.Listener
	var err error
	if os.Getenv("LISTEN_FDS") != "" {
		ln, err = net.FileListener(os.NewFile(3, "listen"))
	} else {
		ln, err = net.Listen("tcp", os.Getenv("EMPEROR_TEST_HTTPD_ADDR"))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "testhttpd:", err)
		os.Exit(1)
	}
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "pid=%d uid=%d\n", os.Getpid(), os.Getuid())
	})
	if root := os.Getenv("EMPEROR_TEST_HTTPD_ROOT"); root != "" {
		files := http.FileServer(http.Dir(root))
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Pid", strconv.Itoa(os.Getpid()))
			files.ServeHTTP(w, r)
		})
	}
	// Drain on SIGTERM without http.Server.Shutdown: Shutdown drops a
	// request read after it started, even on a connection accepted before.
	// Here the listener closes (new connections wait in the shared socket's
	// backlog for the next daemon) and every accepted connection is served.
	var open sync.WaitGroup
	srv := &http.Server{Handler: h, ConnState: func(c net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			open.Add(1)
		case http.StateClosed, http.StateHijacked:
			open.Done()
		}
	}}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	go func() {
		<-term
		ln.Close()
		srv.SetKeepAlivesEnabled(false)
	}()
	srv.Serve(ln)
	done := make(chan struct{})
	go func() { open.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(hangTimeout):
	}
	os.Exit(0)
}

// requireRoot skips a test that needs root, or fails it under CI=true,
// where every capability is expected to be present.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("this test needs root, and CI=true forbids skipping it")
		}
		t.Skip("needs root (make test runs it as root)")
	}
}

// requireBinary does the same for an external program.
func requireBinary(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is missing (make deps installs it), and CI=true forbids skipping", n)
			}
			t.Skipf("%s is missing (make deps installs it)", n)
		}
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type emperorProc struct {
	t       *testing.T
	cmd     *exec.Cmd
	dir     string
	control string
	log     *logBuf
	exited  chan struct{}
}

// startEmperor runs the emperor on a fresh vassal directory. config holds
// extra [uwsgi] lines for its --config file.
func startEmperor(t *testing.T, config ...string) *emperorProc {
	t.Helper()
	return startEmperorCmd(t, nil, config...)
}

// startEmperorCmd is startEmperor with a chance to change the command
// (inherited descriptors, environment) before it starts. The emperor dies
// with the test binary (Pdeathsig), so a run that go test's -timeout or a
// panic ends leaves no emperor, and none of its vassals, behind.
func startEmperorCmd(t *testing.T, prep func(*exec.Cmd), config ...string) *emperorProc {
	t.Helper()
	requireRoot(t)
	base := t.TempDir()
	dir := filepath.Join(base, "vassals")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(base, "emperor.ini")
	body := "[uwsgi]\nemperor = " + dir + "\nreload-mercy = 5\n" + strings.Join(config, "\n") + "\n"
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	e := &emperorProc{t: t, dir: dir, control: filepath.Join(base, "control.sock"), log: &logBuf{}, exited: make(chan struct{})}
	e.cmd = exec.Command(emperorBin, "--config", cfg, "--control", e.control)
	e.cmd.Stdout = e.log
	e.cmd.Stderr = e.log
	// Pdeathsig follows the thread that forked; Go never ends a thread
	// that no goroutine locked, so here it means the test binary died.
	e.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if prep != nil {
		prep(e.cmd)
	}
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { e.cmd.Wait(); close(e.exited) }()
	t.Cleanup(func() {
		e.stop()
		if t.Failed() {
			l := e.log.String()
			if len(l) > 64<<10 {
				l = "...\n" + l[len(l)-64<<10:]
			}
			t.Logf("emperor log (tail):\n%s", l)
		}
	})
	// The socket file appears at bind(2), before listen(2): wait for a
	// status call that is answered.
	waitFor(t, hangTimeout, "the control socket to answer", func() bool {
		_, err := control.Call(e.control, control.Request{Cmd: "status"}, hangTimeout)
		return err == nil
	})
	return e
}

// stop sends SIGTERM and waits; it returns the exit code.
func (e *emperorProc) stop() int {
	select {
	case <-e.exited:
	default:
		e.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-e.exited:
		case <-time.After(hangTimeout):
			e.cmd.Process.Kill()
			<-e.exited
		}
	}
	return e.cmd.ProcessState.ExitCode()
}

// install writes a vassal file the atomic way: write a dotfile, rename it in.
func (e *emperorProc) install(name, body string) string {
	e.t.Helper()
	tmp := filepath.Join(e.dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		e.t.Fatal(err)
	}
	path := filepath.Join(e.dir, name+".ini")
	if err := os.Rename(tmp, path); err != nil {
		e.t.Fatal(err)
	}
	return path
}

func (e *emperorProc) status() []control.VassalStatus {
	e.t.Helper()
	resp, err := control.Call(e.control, control.Request{Cmd: "status"}, hangTimeout)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.Vassals
}

func (e *emperorProc) vassal(name string) (control.VassalStatus, bool) {
	for _, v := range e.status() {
		if v.Name == name {
			return v, true
		}
	}
	return control.VassalStatus{}, false
}

func (e *emperorProc) waitState(name, state string, timeout time.Duration) control.VassalStatus {
	e.t.Helper()
	var v control.VassalStatus
	waitFor(e.t, timeout, name+" "+state, func() bool {
		var ok bool
		v, ok = e.vassal(name)
		return ok && v.State == state
	})
	return v
}

// hangTimeout is the least time any wait of these tests gets. A test waits
// for an event (a log line, a state in status, a socket that accepts); its
// timeout only stops a hang and never stands in for a speed requirement: a
// slow or busy machine takes what it takes.
const hangTimeout = time.Minute

// waitFor polls cond until it holds. timeout only stops a hang: a shorter
// one is raised to hangTimeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	timeout = max(timeout, hangTimeout)
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The clients' timeouts only stop hangs (see hangTimeout): 64 clients of a
// 16 MiB file with both cores busy took more than 5 s.
var client = &http.Client{Timeout: hangTimeout}

// oneShot opens a connection per request. The reload tests use it: an app
// server that drains on SIGTERM closes its idle keep-alive connections, and
// a request racing that close fails on the client's side whatever the
// supervisor does (HTTP leaves the retry to the client). What the tests
// check is that no connection is refused or dropped while the daemon
// restarts behind the shared socket.
var oneShot = &http.Client{Timeout: hangTimeout, Transport: &http.Transport{DisableKeepAlives: true}}

func get(url string) (int, string, error) {
	resp, err := client.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func waitHTTP(t *testing.T, url string, timeout time.Duration) string {
	t.Helper()
	var body string
	waitFor(t, timeout, "HTTP 200 from "+url, func() bool {
		code, b, err := get(url)
		body = b
		return err == nil && code == 200
	})
	return body
}

// procInfo is what /proc says of one process.
type procInfo struct {
	pid, ppid int
	state     string
	comm      string
	nspid     []int
	uid       int
}

func readProc(pid int) (procInfo, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return procInfo{}, false
	}
	p := procInfo{pid: pid}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		v = strings.TrimSpace(v)
		switch k {
		case "Name":
			p.comm = v
		case "State":
			p.state = v
		case "PPid":
			p.ppid, _ = strconv.Atoi(v)
		case "NSpid":
			for _, f := range strings.Fields(v) {
				n, _ := strconv.Atoi(f)
				p.nspid = append(p.nspid, n)
			}
		case "Uid":
			p.uid, _ = strconv.Atoi(strings.Fields(v)[0])
		}
	}
	return p, true
}

func allProcs() []procInfo {
	ents, _ := os.ReadDir("/proc")
	var out []procInfo
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p, ok := readProc(pid); ok {
			out = append(out, p)
		}
	}
	return out
}

// descendants lists every live process below pid.
func descendants(pid int) []procInfo {
	procs := allProcs()
	kids := map[int][]procInfo{}
	for _, p := range procs {
		kids[p.ppid] = append(kids[p.ppid], p)
	}
	var out []procInfo
	var walk func(int)
	walk = func(p int) {
		for _, k := range kids[p] {
			out = append(out, k)
			walk(k.pid)
		}
	}
	walk(pid)
	return out
}

// pidNamespace returns the pid namespace inode of pid, or "" if it is gone.
func pidNamespace(pid int) string {
	l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
	if err != nil {
		return ""
	}
	return l
}

// procsInNamespace lists every process in the pid namespace ns.
func procsInNamespace(ns string) []int {
	var out []int
	for _, p := range allProcs() {
		if pidNamespace(p.pid) == ns {
			out = append(out, p.pid)
		}
	}
	return out
}

// mountSeenAnywhere lists the pids whose mount namespace has a mount on
// target: the check "no mount in any namespace".
func mountSeenAnywhere(target string) []int {
	var out []int
	seen := map[string]bool{}
	for _, p := range allProcs() {
		ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", p.pid))
		if err != nil || seen[ns] {
			continue
		}
		seen[ns] = true
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", p.pid))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) > 4 && f[4] == target {
				out = append(out, p.pid)
				break
			}
		}
	}
	return out
}

// publicDir is a temporary directory that an unprivileged vassal can read
// (t.TempDir's parent is 0700).
func publicDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "emperor-pub-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(d, 0o755)
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func runCmd(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

// load GETs url from 4 clients, one connection per request, until stop is
// closed (or ten hang timeouts pass), and counts the answers: the reload tests require
// that not one fails.
type load struct {
	ok, failed atomic.Int64
	last       atomic.Value
	stop       chan struct{}
	wg         sync.WaitGroup
}

func startLoad(url string) *load {
	l := &load{stop: make(chan struct{})}
	for i := 0; i < 4; i++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			deadline := time.Now().Add(10 * hangTimeout)
			for time.Now().Before(deadline) {
				select {
				case <-l.stop:
					return
				default:
				}
				resp, err := oneShot.Get(url)
				if err != nil {
					l.failed.Add(1)
					l.last.Store(err.Error())
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					l.failed.Add(1)
					l.last.Store(resp.Status)
				} else {
					l.ok.Add(1)
				}
			}
		}()
	}
	return l
}

// waitAnswers waits until the load has had n more good answers than when it
// was called: the event a test waits for before and after a reload, instead
// of a guessed sleep.
func (l *load) waitAnswers(t *testing.T, n int64) {
	t.Helper()
	base := l.ok.Load()
	waitFor(t, hangTimeout, fmt.Sprintf("%d answers to the load", n), func() bool {
		if f := l.failed.Load(); f != 0 {
			t.Fatalf("%d requests failed (last: %v)", f, l.last.Load())
		}
		return l.ok.Load() >= base+n
	})
}

// end stops the load and fails t if any request failed.
func (l *load) end(t *testing.T) {
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	if l.failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed during the reload (last: %v)", l.failed.Load(), l.ok.Load()+l.failed.Load(), l.last.Load())
	}
	if l.ok.Load() < 10 {
		t.Fatalf("only %d requests made", l.ok.Load())
	}
}
