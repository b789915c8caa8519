package emperor

import (
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emperor-dev/emperor/control"
	"github.com/emperor-dev/emperor/vassalfile"
)

// fakeRead replaces readVassalFile for one file name for the test's life.
func fakeRead(t *testing.T, base string, read func(path string) ([]byte, fs.FileInfo, error)) {
	t.Helper()
	real := readVassalFile
	readVassalFile = func(path string) ([]byte, fs.FileInfo, error) {
		if filepath.Base(path) == base {
			return read(path)
		}
		return real(path)
	}
	t.Cleanup(func() { readVassalFile = real })
}

// A file whose read failed once (EMFILE, a FIFO swapped in for a moment)
// is read again at the next rescan, though its stat has not changed; the
// old emperor recorded the stat before the read and left it failed until
// someone touched it.
func TestFailedReadIsRetried(t *testing.T) {
	var mu sync.Mutex
	fails := 1
	fakeRead(t, "flaky.ini", func(path string) ([]byte, fs.FileInfo, error) {
		mu.Lock()
		defer mu.Unlock()
		if fails > 0 {
			fails--
			return nil, nil, &fs.PathError{Op: "open", Path: path, Err: syscall.EMFILE}
		}
		return vassalfile.ReadFileStat(path)
	})
	te := startTest(t)
	te.install("flaky", "[uwsgi]\nattach-daemon = exec sleep 1000\n")
	waitUntil(t, time.Minute, "the failed read", func() bool {
		return strings.Contains(te.log.String(), "too many open files")
	})
	te.waitState(t, "flaky", StateRunning)
}

// A check that does not return (a read stuck in a hung mount) fails its
// file after CheckTimeout with an error that says so; other files are
// served meanwhile, no second check of the stuck file starts, and the
// emperor still stops at once.
func TestStuckCheckTimesOut(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	calls := 0
	fakeRead(t, "stuck.ini", func(path string) ([]byte, fs.FileInfo, error) {
		mu.Lock()
		calls++
		mu.Unlock()
		<-release
		return vassalfile.ReadFileStat(path)
	})
	defer close(release)
	te := startTest(t, func(c *Config) { c.CheckTimeout = 300 * time.Millisecond })
	te.install("stuck", "[uwsgi]\nattach-daemon = exec sleep 1000\n")
	v := te.waitState(t, "stuck", StateFailedConfig)
	if !strings.Contains(v.ConfigError, "stuck.ini: the check of this file did not finish within 300ms") {
		t.Fatalf("config error %q", v.ConfigError)
	}
	// Events and rescans keep asking for the stuck file; the stuck check
	// stays the only one. The other file, installed after the touch, is
	// served meanwhile.
	te.install("stuck", "[uwsgi]\nattach-daemon = exec sleep 2000\n")
	te.install("other", "[uwsgi]\nattach-daemon = exec sleep 1000\n")
	te.waitState(t, "other", StateRunning)
	mu.Lock()
	n := calls
	mu.Unlock()
	if n != 1 {
		t.Fatalf("%d checks of the stuck file started, want 1", n)
	}
	start := time.Now()
	te.stop()
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("stopping took %v with a check stuck", d)
	}
}

// Past MaxControlConns idle connections, a new one closes the one idle the
// longest: status still answers, and the emperor holds at most the cap.
func TestControlConnectionCap(t *testing.T) {
	te := startTest(t)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < 3*MaxControlConns; i++ {
		c, err := net.Dial("unix", te.ctl)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	resp, err := control.Call(te.ctl, control.Request{Cmd: "status"}, time.Minute)
	if err != nil || !resp.OK {
		t.Fatalf("status: %v %+v", err, resp)
	}
	waitUntil(t, time.Minute, "the cap's log line", func() bool {
		return strings.Contains(te.log.String(), "control connections at the limit")
	})
	// The oldest connections were closed by the emperor: a read sees EOF.
	buf := make([]byte, 1)
	conns[0].SetReadDeadline(time.Now().Add(time.Minute))
	if _, err := conns[0].Read(buf); err == nil {
		t.Fatal("the longest-idle connection is still open")
	}
}

// TestIncludedFileChange: a vassal file that includes another is checked
// again when the included file changes though the vassal file did not
// (the rescan stats the included file), and counts as changed only when
// what it reads changed; a missing include that appears is seen too.
func TestIncludedFileChange(t *testing.T) {
	dir := t.TempDir()
	vf, base, extra := filepath.Join(dir, "app.ini"), filepath.Join(dir, "base.conf"), filepath.Join(dir, "extra.conf")
	write := func(p, s string) {
		t.Helper()
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(vf, "[uwsgi]\nini = base.conf\nif-exists = extra.conf\nini = extra.conf\nendif =\n")
	write(base, "[uwsgi]\nattach-daemon = sleep 1000\n")
	r := checkFile("app", vf, fileState{}, false)
	if r.checkErr != nil || r.v == nil {
		t.Fatalf("first check: %v", r.checkErr)
	}
	if got := string(r.v.Files[base]); !strings.Contains(got, "sleep 1000") || len(r.st.deps) != 2 {
		t.Fatalf("files %q, deps %v", r.v.Files, r.st.deps)
	}
	prev := r.st
	if r := checkFile("app", vf, prev, true); !r.unchanged {
		t.Fatalf("nothing changed, yet: %+v", r)
	}
	// same content, touched: checked again, unchanged
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(base, later, later); err != nil {
		t.Fatal(err)
	}
	r = checkFile("app", vf, prev, true)
	if !r.unchanged {
		t.Fatalf("a touched include that reads the same changed the vassal: %+v", r)
	}
	prev = r.st
	write(base, "[uwsgi]\nattach-daemon = sleep 2000\n")
	r = checkFile("app", vf, prev, true)
	if r.unchanged || r.v == nil || !strings.Contains(string(r.v.Files[base]), "sleep 2000") {
		t.Fatalf("a changed include was not seen: %+v", r)
	}
	prev = r.st
	write(extra, "[uwsgi]\nenv = EXTRA=1\n")
	r = checkFile("app", vf, prev, true)
	if r.unchanged || r.v == nil || r.v.Files[extra] == nil {
		t.Fatalf("an include that appeared was not seen: %+v", r)
	}
	prev = r.st
	write(extra, "[uwsgi]\nbogus-option = 1\n")
	r = checkFile("app", vf, prev, true)
	if r.checkErr == nil || !strings.Contains(r.checkErr.Error(), extra+":2: unknown option \"bogus-option\"") {
		t.Fatalf("a broken include: %v", r.checkErr)
	}
}
