package vassal

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emperor-dev/emperor/control"
	"github.com/emperor-dev/emperor/reexec"
	"golang.org/x/sys/unix"
)

// The test binary is also a vassal's PID 1: these tests run it as the
// emperor would, without namespaces (no root needed), and talk to it over
// the control channel.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == reexec.InitCommand {
		os.Exit(Main(os.Args[2:]))
	}
	os.Exit(m.Run())
}

// hang only stops a hung test; nothing waits for it to pass.
const hang = 2 * time.Minute

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

// pid1 is a running vassal under test.
type pid1 struct {
	t      *testing.T
	pid    int
	conn   *control.Conn
	msgs   chan control.Message
	log    *logBuf
	done   chan struct{}   // closed when PID 1 has been reaped
	status unix.WaitStatus // its wait status, once done is closed
}

// startPID1 runs the test binary as vassal-init for content and waits
// until it is ready. It is started through the package's one reaper (the
// reaper tests share this process, and a second waiter would lose the
// status).
func startPID1(t *testing.T, content string, edit ...func(*control.Message)) *pid1 {
	t.Helper()
	p := spawnPID1(t)
	start := control.Message{Type: control.MsgStart, Name: "t", Path: filepath.Join(t.TempDir(), "t.ini"), Content: []byte(content), Mercy: 10 * time.Second}
	for _, e := range edit {
		e(&start)
	}
	if err := p.conn.Send(start); err != nil {
		t.Fatal(err)
	}
	p.await(control.MsgReady, false)
	return p
}

// spawnPID1 runs the test binary as vassal-init and returns before the
// start message is sent.
func spawnPID1(t *testing.T) *pid1 {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "ours"), os.NewFile(uintptr(fds[1]), "theirs")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	attr := &syscall.ProcAttr{Env: os.Environ(), Files: []uintptr{null.Fd(), w.Fd(), w.Fd(), theirs.Fd()}}
	pid, exit, err := sharedReaper().Start(exe, reexec.Argv(exe, "t"), attr)
	null.Close()
	w.Close()
	theirs.Close()
	if err != nil {
		t.Fatal(err)
	}
	p := &pid1{t: t, pid: pid, conn: control.NewConn(ours), msgs: make(chan control.Message, 16), log: &logBuf{}, done: make(chan struct{})}
	go func() { p.status = <-exit; close(p.done) }()
	go func() { io.Copy(p.log, r); r.Close() }()
	go func() {
		defer close(p.msgs)
		for {
			var m control.Message
			if err := p.conn.Recv(&m); err != nil {
				return
			}
			p.msgs <- m
		}
	}()
	t.Cleanup(func() {
		syscall.Kill(pid, syscall.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(hang):
			t.Errorf("vassal %d did not die", pid)
		}
		ours.Close()
		if t.Failed() {
			t.Logf("vassal log:\n%s", p.log.String())
		}
	})
	return p
}

// await waits for the next message of type typ (skipping mount reports).
func (p *pid1) await(typ string, reload bool) control.Message {
	p.t.Helper()
	timeout := time.After(hang)
	for {
		select {
		case m, ok := <-p.msgs:
			if !ok {
				p.t.Fatalf("the vassal closed its channel waiting for %s", typ)
			}
			if m.Type == control.MsgMounts {
				continue
			}
			if m.Type != typ || m.Reload != reload {
				p.t.Fatalf("got %+v, want %s (reload %v)", m, typ, reload)
			}
			return m
		case <-timeout:
			p.t.Fatalf("no %s message", typ)
		}
	}
}

func (p *pid1) reload(content string) {
	p.t.Helper()
	if err := p.conn.Send(control.Message{Type: control.MsgReload, Content: []byte(content)}); err != nil {
		p.t.Fatal(err)
	}
}

// waitLog waits for a log line matching re and returns its submatches.
func (p *pid1) waitLog(re string) []string {
	p.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(hang)
	for time.Now().Before(deadline) {
		if m := rx.FindStringSubmatch(p.log.String()); m != nil {
			return m
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.t.Fatalf("no log line matching %s", re)
	return nil
}

func (p *pid1) fds() int {
	p.t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.pid))
	if err != nil {
		p.t.Fatal(err)
	}
	return len(ents)
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: hang}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A static-map's folder is opened again on every reload; the folder of the
// replaced handler must close (it leaked one descriptor per reload).
func TestStaticMapReloadsLeakNoDescriptor(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("hello\n"), 0o644)
	content := "[uwsgi]\nhttp-socket = 127.0.0.1:0\nstatic-map = /s=" + dir + "\n"
	p := startPID1(t, content)
	addr := p.waitLog(`msg="serving HTTP" vassal=t addr=([0-9.:]+)`)[1]
	if code, body := get(t, "http://"+addr+"/s/a.txt"); code != 200 || body != "hello\n" {
		t.Fatalf("%d %q", code, body)
	}
	// The first reload settles what a reload opens for good (nothing, but
	// the runtime may open a descriptor or two on first use).
	p.reload(content)
	p.await(control.MsgReady, true)
	before := p.fds()
	for i := 0; i < 20; i++ {
		p.reload(content)
		p.await(control.MsgReady, true)
	}
	if code, body := get(t, "http://"+addr+"/s/a.txt"); code != 200 || body != "hello\n" {
		t.Fatalf("%d %q", code, body)
	}
	if after := p.fds(); after != before {
		t.Fatalf("%d descriptors before 20 reloads, %d after", before, after)
	}
}

// A reload refused for a full restart leaves the vassal on its last good
// file, content included: SIGHUP reloads that file, not the refused one
// (which it did, and was refused again), and a later reload compares
// against it.
func TestRefusedRestartKeepsLastGoodFile(t *testing.T) {
	a := "[uwsgi]\nenv = GEN=a\n"
	p := startPID1(t, a)
	p.reload("[uwsgi]\nenv = GEN=b\nunshare = ipc\n")
	if m := p.await(control.MsgRefuse, false); !m.Restart || !strings.Contains(m.Reason, "unshare changed") {
		t.Fatalf("%+v", m)
	}
	syscall.Kill(p.pid, syscall.SIGHUP)
	p.await(control.MsgReady, true)
	p.reload("[uwsgi]\nenv = GEN=c\n")
	p.await(control.MsgReady, true)
}

// A reload that a component refuses (a static-map folder that does not
// exist) is rolled back: the as-user hooks of the new file are undone by
// its as-user-atexit hooks, the old file's as-user hooks and daemons come
// back, the old handler keeps serving, and the emperor hears a refusal.
func TestRefusedReloadRollsBack(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("old\n"), 0o644)
	file := func(gen, mapDir string) string {
		return "[uwsgi]\nhttp-socket = 127.0.0.1:0\nstatic-map = /s=" + mapDir + "\n" +
			"exec-as-user = echo as-user-" + gen + "\nexec-as-user-atexit = echo atexit-" + gen + "\n" +
			"attach-daemon = echo daemon-" + gen + "; exec sleep 100000\n"
	}
	p := startPID1(t, file("A", dir))
	addr := p.waitLog(`msg="serving HTTP" vassal=t addr=([0-9.:]+)`)[1]
	p.waitLog(`msg=daemon-A`)
	mark := len(p.log.String())
	p.reload(file("B", filepath.Join(dir, "missing")))
	m := p.await(control.MsgRefuse, false)
	if m.Restart || !strings.Contains(m.Reason, "http: static-map") || !strings.Contains(m.Reason, "rolled back") {
		t.Fatalf("%+v", m)
	}
	// The daemon of A runs again once the rollback is done.
	deadline := time.Now().Add(hang)
	for !strings.Contains(p.log.String()[mark:], "msg=daemon-A") {
		if time.Now().After(deadline) {
			t.Fatal("the daemon of A did not come back")
		}
		time.Sleep(10 * time.Millisecond)
	}
	var seq []string
	for _, l := range strings.Split(p.log.String()[mark:], "\n") {
		for _, w := range []string{"atexit-A", "as-user-B", "atexit-B", "as-user-A", "daemon-A", "daemon-B"} {
			if strings.Contains(l, "msg="+w+" ") {
				seq = append(seq, w)
			}
		}
	}
	if strings.Join(seq, " ") != "atexit-A as-user-B atexit-B as-user-A daemon-A" {
		t.Fatalf("sequence %v", seq)
	}
	if code, body := get(t, "http://"+addr+"/s/a.txt"); code != 200 || body != "old\n" {
		t.Fatalf("%d %q", code, body)
	}
	// The last good file is still A.
	syscall.Kill(p.pid, syscall.SIGHUP)
	p.await(control.MsgReady, true)
}

// PID 1 logs in the format of the start message, its daemons' and hooks'
// output included, every line with the vassal's name.
func TestPID1LogsInTheEmperorsFormat(t *testing.T) {
	p := startPID1(t, "[uwsgi]\nexec-as-user = echo hook-out\nattach-daemon = echo daemon-out; exec sleep 100000\n",
		func(m *control.Message) { m.LogFormat = reexec.LogJSON })
	p.waitLog(`"msg":"daemon-out"`)
	syscall.Kill(p.pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(hang):
		t.Fatal("PID 1 did not stop")
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(p.log.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil || m["vassal"] != "t" {
			t.Fatalf("line %q: %v", line, err)
		}
		seen[m["msg"].(string)] = true
	}
	for _, msg := range []string{"vassal ready", "hook-out", "daemon-out", "stopping"} {
		if !seen[msg] {
			t.Errorf("no line %q", msg)
		}
	}
}

// A SIGTERM that arrives before the start message is not lost: the vassal
// stops as soon as it can, by itself. (As PID 1 of a namespace, a signal
// without a handler is dropped, and the emperor had to SIGKILL the vassal
// after reload-mercy.) The signal is sent once PID 1 has made its control
// socket non-blocking, the step right before it waits for the message.
func TestSIGTERMBeforeStartMessage(t *testing.T) {
	p := spawnPID1(t)
	waiting := func() bool {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/%d", p.pid, reexec.ControlFD))
		var flags int
		for _, l := range strings.Split(string(b), "\n") {
			fmt.Sscanf(l, "flags: %o", &flags)
		}
		return err == nil && flags&unix.O_NONBLOCK != 0
	}
	for deadline := time.Now().Add(hang); !waiting(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("PID 1 never made its control socket non-blocking")
		}
	}
	if err := syscall.Kill(p.pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	start := control.Message{Type: control.MsgStart, Name: "t", Path: filepath.Join(t.TempDir(), "t.ini"), Content: []byte("[uwsgi]\nattach-daemon = sleep 100000\n"), Mercy: 10 * time.Second}
	if err := p.conn.Send(start); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(hang):
		t.Fatal("the vassal did not stop")
	}
	if !p.status.Exited() || p.status.ExitStatus() != 0 || !strings.Contains(p.log.String(), "stopping") {
		t.Fatalf("the vassal ended with %v, want a clean stop (exit 0 after \"stopping\"); log:\n%s", p.status, p.log.String())
	}
}

// The emperor's stop message stops PID 1 as its SIGTERM does, with no
// signal at all: the message is what a stop relies on when the signal is
// held by a thread asleep in a hung FUSE mount.
func TestStopMessage(t *testing.T) {
	p := startPID1(t, "[uwsgi]\nattach-daemon = sleep 100000\n")
	if err := p.conn.Send(control.Message{Type: control.MsgStop}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(hang):
		t.Fatal("the vassal did not stop")
	}
	if !p.status.Exited() || p.status.ExitStatus() != 0 || !strings.Contains(p.log.String(), `msg=stopping vassal=t message="stop from the emperor"`) {
		t.Fatalf("the vassal ended with %v, want a clean stop (exit 0 after \"stopping\"); log:\n%s", p.status, p.log.String())
	}
}
