package vassal

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emperor-dev/emperor/procstat"
	"golang.org/x/sys/unix"
)

func TestQuietSyscall(t *testing.T) {
	cases := []struct {
		sc   procstat.Syscall
		want bool
	}{
		{procstat.Syscall{Nr: unix.SYS_EPOLL_PWAIT}, true},
		{procstat.Syscall{Nr: unix.SYS_READ}, true},
		{procstat.Syscall{Nr: unix.SYS_CLOCK_NANOSLEEP}, true},
		{procstat.Syscall{Nr: procstat.InUser}, false},
		{procstat.Syscall{Nr: unix.SYS_ACCEPT4}, false},
		{procstat.Syscall{Nr: unix.SYS_FCNTL}, false},
		{procstat.Syscall{Nr: unix.SYS_SETSOCKOPT}, false},
		{procstat.Syscall{Nr: unix.SYS_FUTEX, Args: [6]uint64{0, 128}}, true},      // FUTEX_WAIT_PRIVATE (0)
		{procstat.Syscall{Nr: unix.SYS_FUTEX, Args: [6]uint64{0, 128 | 6}}, true},  // FUTEX_LOCK_PI_PRIVATE
		{procstat.Syscall{Nr: unix.SYS_FUTEX, Args: [6]uint64{0, 128 | 1}}, false}, // FUTEX_WAKE_PRIVATE
		{procstat.Syscall{Nr: unix.SYS_FUTEX, Args: [6]uint64{0, 7}}, false},       // FUTEX_UNLOCK_PI
	}
	for _, c := range cases {
		if got := quietSyscall(c.sc); got != c.want {
			t.Errorf("quietSyscall(%+v) = %v, want %v", c.sc, got, c.want)
		}
	}
}

func openProcFS(t *testing.T) *procstat.FS {
	t.Helper()
	fs, err := procstat.OpenFS("/proc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Close() })
	return fs
}

// python finds python3 and pins the test to its OS thread until its
// cleanups ran: the workers it starts have Pdeathsig, which the kernel
// sends when the thread that forked them ends, and the runtime ends a
// thread whose goroutine exits locked to it (other tests of this package
// lock theirs).
func python(t *testing.T) string {
	t.Helper()
	runtime.LockOSThread()
	t.Cleanup(runtime.UnlockOSThread)
	py, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	return py
}

// Workers for the tests, in python3, whose SIGHUP handler exits 17 as
// uWSGI's does for a worker not in a request.
const (
	// forwardingMaster starts two workers (python argv[1], script argv[2])
	// and on SIGHUP forwards it to them, waits for them and writes their
	// exit codes to argv[3]: uWSGI's master reduced to grace_them_all.
	forwardingMaster = `
import os, signal, subprocess, sys
py, worker, out = sys.argv[1:4]
ws = [subprocess.Popen([py, "-c", worker], stdout=subprocess.DEVNULL) for _ in range(2)]
def hup(s, f):
    for w in ws:
        os.kill(w.pid, signal.SIGHUP)
    codes = [str(w.wait()) for w in ws]
    with open(out, "w") as f:
        f.write(" ".join(codes))
    os._exit(0)
signal.signal(signal.SIGHUP, hup)
print("started", flush=True)
while True:
    signal.pause()
`
	// idleWorker waits in epoll.
	idleWorker = `
import os, select, signal
signal.signal(signal.SIGHUP, lambda s, f: os._exit(17))
print("ready", flush=True)
select.epoll().poll()
`
	// busyWorker spins in its own code.
	busyWorker = `
import os, signal
signal.signal(signal.SIGHUP, lambda s, f: os._exit(17))
print("ready", flush=True)
while True:
    pass
`
	// lateWorker waits in epoll with SIGHUP ignored until the file argv[1]
	// exists, then installs its handler: a uWSGI worker before its accept
	// loop.
	lateWorker = `
import os, select, signal, sys, time
signal.signal(signal.SIGHUP, signal.SIG_IGN)
print("ready", flush=True)
while not os.path.exists(sys.argv[1]):
    time.sleep(0.001)
signal.signal(signal.SIGHUP, lambda s, f: os._exit(17))
select.epoll().poll()
`
)

// worker is a process a test started through the package's one reaper
// (a second wait4(-1) loop would steal its status).
type worker struct {
	pid  int
	exit <-chan unix.WaitStatus
}

// startInGroup starts argv in process group pgid (0: its own), with extra
// as fd 3, and waits until it printed its first line.
func startInGroup(t *testing.T, pgid int, extra *os.File, argv ...string) worker {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	files := []uintptr{0, w.Fd(), os.Stderr.Fd()}
	if extra != nil {
		files = append(files, extra.Fd())
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		t.Fatal(err)
	}
	pid, exit, err := sharedReaper().Start(path, argv, &syscall.ProcAttr{
		Env: os.Environ(), Files: files,
		Sys: &syscall.SysProcAttr{Setpgid: true, Pgid: pgid, Pdeathsig: syscall.SIGKILL},
	})
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	if _, err := bufio.NewReader(r).ReadString('\n'); err != nil {
		t.Fatalf("%v: no first line: %v", argv, err)
	}
	return worker{pid: pid, exit: exit}
}

// code waits for the worker's end: its exit code, or minus the signal
// that killed it.
func (w worker) code(t *testing.T) int {
	t.Helper()
	select {
	case ws := <-w.exit:
		if ws.Signaled() {
			return -int(ws.Signal())
		}
		return ws.ExitStatus()
	case <-time.After(time.Minute):
		t.Fatalf("pid %d did not end", w.pid)
		return 0
	}
}

// Without a master every held worker gets the SIGHUP from PID 1, and they
// are continued only after it is sent. A worker that never stops at a quiet
// place (it spins in its own code) is not held past the budget: the SIGHUP
// then goes out unguarded, and nothing is left stopped.
func TestQuietReloadWithoutMaster(t *testing.T) {
	for _, c := range []struct {
		name   string
		first  string
		budget time.Duration
		held   bool
	}{
		{"two idle workers are held", idleWorker, time.Minute, true},
		{"a spinning worker is not held past the budget", busyWorker, 200 * time.Millisecond, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			fs := openProcFS(t)
			py := python(t)
			a := startInGroup(t, 0, nil, py, "-c", c.first)
			b := startInGroup(t, a.pid, nil, py, "-c", idleWorker)
			q := &quietReload{fs: fs, pgid: a.pid, budget: c.budget, log: slog.Default()}
			if held := q.hup(); held != c.held {
				t.Fatalf("held: %v, want %v", held, c.held)
			}
			for _, w := range []worker{a, b} {
				if code := w.code(t); code != 17 {
					t.Fatalf("pid %d: exit %d, want 17 (its SIGHUP handler)", w.pid, code)
				}
			}
		})
	}
}

// A master forwards the SIGHUP to its held workers; they are continued once
// it is pending for each, and then run their handler.
func TestQuietReloadThroughMaster(t *testing.T) {
	fs := openProcFS(t)
	py := python(t)
	out := filepath.Join(t.TempDir(), "status")
	m := startInGroup(t, 0, nil, py, "-c", forwardingMaster, py, idleWorker, out)
	waitUntil(t, func() bool { // both workers in epoll with their handler
		g, _ := fs.Group(m.pid)
		n := 0
		for _, s := range g {
			sc, err := fs.ReadSyscall(s.PID)
			caught, _ := fs.SignalCaught(s.PID, unix.SIGHUP)
			if s.PID != m.pid && err == nil && caught && quietSyscall(sc) {
				n++
			}
		}
		return n == 2
	})
	q := &quietReload{fs: fs, pgid: m.pid, master: m.pid, budget: time.Minute, log: slog.Default()}
	if !q.hup() {
		t.Fatal("two idle workers were not held")
	}
	if code := m.code(t); code != 0 {
		t.Fatalf("master: exit %d", code)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != "17 17" {
		t.Fatalf("workers' statuses %q, want 17 17 (their SIGHUP handler)", got)
	}
}

// A worker whose SIGHUP handler is not installed yet is not held: the
// reload waits for the handler, instead of sending a SIGHUP it ignores.
func TestQuietReloadWaitsForTheHandler(t *testing.T) {
	fs := openProcFS(t)
	py := python(t)
	flag := filepath.Join(t.TempDir(), "install-the-handler")
	w := startInGroup(t, 0, nil, py, "-c", lateWorker, flag)
	// The worker ignores SIGHUP until the flag exists; it counts as
	// starting however long python took to get there.
	q := &quietReload{fs: fs, pgid: w.pid, budget: time.Minute, startup: time.Hour, log: slog.Default()}
	if !hupAfterRetries(t, q, flag) {
		t.Fatal("the worker was not held once it had its handler")
	}
	if code := w.code(t); code != 17 {
		t.Fatalf("exit %d, want 17: the SIGHUP reached the handler", code)
	}
}

// A process that has ignored SIGHUP for longer than a worker takes to
// start (uWSGI's http router, a gateway) is neither held nor waited for,
// and a process at SIGHUP's default action (not uWSGI's) neither.
func TestQuietReloadSkipsGateways(t *testing.T) {
	fs := openProcFS(t)
	py := python(t)
	gateway := `
import select, signal
signal.signal(signal.SIGHUP, signal.SIG_IGN)
print("ready", flush=True)
while True:
    pass
`
	other := `
import signal
signal.signal(signal.SIGHUP, signal.SIG_DFL)
print("ready", flush=True)
while True:
    pass
`
	w := startInGroup(t, 0, nil, py, "-c", idleWorker)
	g := startInGroup(t, w.pid, nil, py, "-c", gateway)
	o := startInGroup(t, w.pid, nil, py, "-c", other)
	q := &quietReload{fs: fs, pgid: w.pid, budget: time.Minute, log: slog.Default(), retried: func() {
		t.Error("a spinning gateway or foreign process was tried")
	}}
	if !q.hup() {
		t.Fatal("the idle worker was not held")
	}
	if code := w.code(t); code != 17 {
		t.Fatalf("worker: exit %d, want 17", code)
	}
	for _, p := range []worker{g, o} {
		if s, err := fs.Stat(p.pid); err != nil || s.State == 'T' {
			t.Fatalf("pid %d after the reload: %+v %v, want it running", p.pid, s, err)
		}
	}
}

// A held process that the master does not forward the SIGHUP to is
// continued after hupWait, not left stopped.
func TestQuietReloadMasterForwardsNothing(t *testing.T) {
	fs := openProcFS(t)
	py := python(t)
	m := startInGroup(t, 0, nil, "sh", "-c", `trap '' HUP; "$0" -c "$1" >/dev/null & echo started; wait`, py, idleWorker)
	var worker int
	waitUntil(t, func() bool {
		g, _ := fs.Group(m.pid)
		for _, s := range g {
			caught, _ := fs.SignalCaught(s.PID, unix.SIGHUP)
			if s.PID != m.pid && caught && s.State == 'S' {
				worker = s.PID
				return true
			}
		}
		return false
	})
	q := &quietReload{fs: fs, pgid: m.pid, master: m.pid, budget: time.Minute, log: slog.Default()}
	if !q.hup() {
		t.Fatal("an idle worker was not held")
	}
	if s, err := fs.Stat(worker); err != nil || s.State == 'T' {
		t.Fatalf("worker %d after the reload: %+v %v, want it running", worker, s, err)
	}
	if err := syscall.Kill(-m.pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		t.Fatal(err)
	}
}

// fakeWorker is uWSGI's sync worker loop reduced to what the reload race
// needs (core/loop.c, core/utils.c wsgi_req_accept and wsgi_req_recv,
// core/uwsgi.c gracefully_kill): epoll on the inherited socket (fd 3),
// accept4, then a stretch of its own code before the request starts (here
// held open until the file argv[1] exists), and a SIGHUP handler that
// exits 17 unless a request is in progress.
const fakeWorker = `
import os, select, signal, socket, sys
flag = sys.argv[1]
ls = socket.socket(fileno=3)
in_request = False
manage = True
def hup(sig, frame):
    global manage
    manage = False
    if not in_request:
        os._exit(17)
signal.signal(signal.SIGHUP, hup)
ep = select.epoll()
ep.register(3, select.EPOLLIN)
print("ready", flush=True)
while manage:
    ep.poll()
    c, _ = ls.accept()
    while not os.path.exists(flag):
        pass
    in_request = True
    c.recv(4096)
    c.sendall(b"answered")
    c.close()
    in_request = False
os._exit(17)
`

// TestQuietReloadAcceptWindow puts a worker between accept4 and its
// request, the window where uWSGI's graceful reload drops a connection, and
// reloads it there: a plain SIGHUP resets the client (the window is real),
// and the held reload waits until the worker is in the request, which is
// then answered.
func TestQuietReloadAcceptWindow(t *testing.T) {
	python(t)
	fs := openProcFS(t)
	run := func(t *testing.T, reload func(q *quietReload, flag string)) (answer string, status int) {
		py := python(t)
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		lf, err := l.(*net.TCPListener).File()
		if err != nil {
			t.Fatal(err)
		}
		defer lf.Close()
		flag := filepath.Join(t.TempDir(), "leave-the-window")
		w := startInGroup(t, 0, lf, py, "-c", fakeWorker, flag)
		pid := w.pid
		before := socketsOf(t, fs, pid)
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte("GET / HTTP/1.0\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, func() bool { return socketsOf(t, fs, pid) > before }) // it accepted
		q := &quietReload{fs: fs, pgid: pid, budget: time.Minute, log: slog.Default()}
		reload(q, flag)
		b, _ := io.ReadAll(c)
		return string(b), w.code(t)
	}

	t.Run("a plain SIGHUP in the window resets the client", func(t *testing.T) {
		answer, status := run(t, func(q *quietReload, flag string) {
			if err := syscall.Kill(q.pgid, syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
		})
		if answer != "" || status != 17 {
			t.Fatalf("answer %q, status %d: want no answer and exit 17", answer, status)
		}
	})
	t.Run("the held reload lets the request be answered", func(t *testing.T) {
		answer, status := run(t, func(q *quietReload, flag string) {
			// The worker is in the window until the flag exists.
			if !hupAfterRetries(t, q, flag) {
				t.Fatal("the worker was not held once in its request")
			}
		})
		if answer != "answered" || status != 17 {
			t.Fatalf("answer %q, status %d: want the answer and exit 17", answer, status)
		}
	})
}

// hupAfterRetries runs q.hup while the worker is where it must not be held,
// waits until the reload passed it over three times (it did not send the
// SIGHUP), then creates flag, which lets the worker move on, and returns
// what q.hup returned.
func hupAfterRetries(t *testing.T, q *quietReload, flag string) bool {
	t.Helper()
	retries := make(chan struct{}, 1)
	q.retried = func() {
		select {
		case retries <- struct{}{}:
		default:
		}
	}
	done := make(chan bool, 1)
	go func() { done <- q.hup() }()
	for i := 0; i < 3; i++ {
		select {
		case <-retries:
		case ok := <-done:
			t.Fatalf("the reload ended (held: %v) before the worker could be held", ok)
		case <-time.After(time.Minute):
			t.Fatal("the reload never retried")
		}
	}
	if err := os.WriteFile(flag, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return <-done
}

// socketsOf counts the sockets pid has open.
func socketsOf(t *testing.T, fs *procstat.FS, pid int) int {
	t.Helper()
	inos, err := fs.SocketInodes(pid)
	if err != nil {
		t.Fatal(err)
	}
	return len(inos)
}
