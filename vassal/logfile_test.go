package vassal

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emperor-dev/emperor/vassalfile"
)

// openTestLog opens path as the logto component does, with cfg.
func openTestLog(t *testing.T, path string, cfg logConfig, report *slog.Logger) *logWriter {
	t.Helper()
	dir, name, err := openLogDir(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := openLogIn(dir, name, false)
	if err != nil {
		t.Fatal(err)
	}
	return newLogWriter(path, dir, name, f, cfg, report)
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// PID 1's records reach the file and the emperor's log; a child's output
// reaches only the file, raw, with log-date's prefix, and a long line cut
// in parts is whole again in the file.
func TestSinkSplitsOwnRecordsAndOutput(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v.log")
	var emp bytes.Buffer
	sink := &logSink{}
	log := slog.New(newSinkHandler(slog.NewTextHandler(&emp, nil), sink)).With("vassal", "v1")
	log.Info("before the file")
	ts := time.Date(2026, 12, 2, 9, 5, 7, 0, time.UTC)
	w := openTestLog(t, path, logConfig{date: vassalfile.LogDate{On: true, Format: "%Y-%m-%d %H:%M:%S"}}, slog.New(slog.DiscardHandler))
	sink.swap(w)
	log.Info("daemon started", "pid", 42)
	r := slog.NewRecord(ts, slog.LevelInfo, "hello from the app", 0)
	_ = log.Handler().Handle(outputCtx, r)
	for i, part := range []string{"aaa", "bbb"} {
		r := slog.NewRecord(ts, slog.LevelInfo, part, 0)
		r.AddAttrs(slog.Int("line_part", i+1), slog.Bool("line_continues", i == 0))
		_ = log.Handler().Handle(outputCtx, r)
	}
	sink.swap(nil)
	w.close(time.Minute)
	got := readFile(t, path)
	for _, want := range []string{`msg="daemon started" vassal=v1 pid=42`, "\n2026-12-02 09:05:07 - hello from the app\n", "\n2026-12-02 09:05:07 - aaabbb\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("log file lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "before the file") {
		t.Errorf("a record from before the file was opened reached it")
	}
	e := emp.String()
	if !strings.Contains(e, "before the file") || !strings.Contains(e, "daemon started") {
		t.Errorf("PID 1's records are missing from the emperor's log:\n%s", e)
	}
	if strings.Contains(e, "hello from the app") || strings.Contains(e, "aaa") {
		t.Errorf("a child's output reached the emperor's log although the vassal has a log file:\n%s", e)
	}
}

// log-maxsize rotates into log-backupname before a line would pass it, and
// the new file starts empty; without a backup name the rotated file gets
// .UNIXTIME.
func TestLogRotatesAtMaxSize(t *testing.T) {
	d := t.TempDir()
	path := filepath.Join(d, "v.log")
	if _, _, err := openLogDir(filepath.Join(d, "old", "v.log.1")); err == nil {
		t.Fatal("a backup directory that does not exist opened")
	}
	if err := os.Mkdir(filepath.Join(d, "old"), 0o755); err != nil {
		t.Fatal(err)
	}
	bdir, bname, err := openLogDir(filepath.Join(d, "old", "v.log.1"))
	if err != nil {
		t.Fatal(err)
	}
	w := openTestLog(t, path, logConfig{maxSize: 100, bdir: bdir, bname: bname}, slog.New(slog.DiscardHandler))
	line := strings.Repeat("x", 39) + "\n" // 40 bytes
	for i := 0; i < 3; i++ {
		w.enqueue([]byte(line))
	}
	w.close(time.Minute)
	backup := readFile(t, filepath.Join(d, "old", "v.log.1"))
	if !strings.HasPrefix(backup, line+line) || !strings.Contains(backup, "triggering rotation to v.log.1") {
		t.Errorf("backup holds %q, want two lines and the rotation notice", backup)
	}
	if cur := readFile(t, path); cur != line {
		t.Errorf("new file holds %q, want the third line", cur)
	}

	path2 := filepath.Join(d, "w.log")
	w = openTestLog(t, path2, logConfig{maxSize: 50}, slog.New(slog.DiscardHandler))
	w.enqueue([]byte(line))
	w.enqueue([]byte(line))
	w.close(time.Minute)
	m, _ := filepath.Glob(path2 + ".[0-9]*")
	if len(m) != 1 {
		t.Fatalf("rotated files %v, want one w.log.UNIXTIME", m)
	}
}

// A reopen after a logrotate-style rename writes to a new file of the
// same name; the moved file got the notice and nothing after it.
func TestLogReopenAfterRename(t *testing.T) {
	d := t.TempDir()
	path := filepath.Join(d, "v.log")
	w := openTestLog(t, path, logConfig{chmod: 0o600}, slog.New(slog.DiscardHandler))
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	w.requestReopen("test")
	w.enqueue([]byte("two\n"))
	w.close(time.Minute)
	if got := readFile(t, path+".1"); !strings.Contains(got, "triggering log-reopen (test)") || strings.Contains(got, "two") {
		t.Errorf("moved file: %q", got)
	}
	got := readFile(t, path)
	if !strings.HasSuffix(got, "two\n") || !strings.Contains(got, "reopened") {
		t.Errorf("reopened file: %q", got)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("reopened file has mode %v, want logfile-chmod's 0600", st.Mode().Perm())
	}
}

// What does not fit in the queue is dropped and counted, never waited
// for; the count reaches the file once it takes lines again.
func TestLogQueueDropsWhenFull(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v.log")
	dir, name, err := openLogDir(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := openLogIn(dir, name, false)
	if err != nil {
		t.Fatal(err)
	}
	// A writer whose goroutine has not started: the file takes nothing.
	w := &logWriter{path: path, report: slog.New(slog.DiscardHandler), dir: dir, name: name, f: f,
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	big := bytes.Repeat([]byte("y"), 1<<20)
	for i := 0; i < 6; i++ {
		w.enqueue(big)
	}
	if w.dropped != 2 || w.queued != 4<<20 {
		t.Fatalf("dropped %d, queued %d: want 2 dropped and the queue at its bound", w.dropped, w.queued)
	}
	go w.run()
	w.close(time.Minute)
	if got := readFile(t, path); !strings.HasPrefix(got, "[emperor] 2 log lines dropped") {
		t.Errorf("file starts with %q", got[:min(len(got), 80)])
	}
}

// The last component of a log path is never followed when it is a symlink,
// and a FIFO is refused without blocking.
func TestLogOpenRefusesSymlinkAndFIFO(t *testing.T) {
	d := t.TempDir()
	target := filepath.Join(d, "target")
	if err := os.WriteFile(target, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(d, "link.log")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(d, "fifo.log"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir, _, err := openLogDir(filepath.Join(d, "x"))
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	if f, err := openLogIn(dir, "link.log", false); err == nil || !strings.Contains(err.Error(), "symlink") {
		t.Errorf("symlink: %v, %v", f, err)
	}
	if f, err := openLogIn(dir, "fifo.log", false); err == nil {
		t.Errorf("fifo opened: %v", f)
	}
}

func TestStrftime(t *testing.T) {
	ts := time.Date(2026, 2, 3, 14, 5, 6, 0, time.UTC)
	if got := strftime("%a %e %b %Y %T %j %% %p %s", ts); got != "Tue  3 Feb 2026 14:05:06 034 % PM 1770127506" {
		t.Errorf("got %q", got)
	}
	if got := logDatePrefix("", ts); got != "Tue Feb  3 14:05:06 2026 - " {
		t.Errorf("ctime form: %q", got)
	}
}

// A file that fails every write (a full disk: /dev/full says ENOSPC) loses
// the lines, never blocks whoever logs, and is reported to the emperor's
// log once, not once per line.
func TestLogWriteErrorsReportedOnce(t *testing.T) {
	f, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("no /dev/full: %v", err)
	}
	dir, err := os.Open(os.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var rep bytes.Buffer
	w := newLogWriter("/dev/full", dir, "full", f, logConfig{}, slog.New(slog.NewTextHandler(&rep, nil)))
	for i := 0; i < 100; i++ {
		w.enqueue([]byte("a line\n"))
	}
	w.close(time.Minute)
	if n := strings.Count(rep.String(), "lines are lost"); n != 1 || !strings.Contains(rep.String(), "no space left on device") {
		t.Errorf("%d reports, want 1 naming ENOSPC:\n%s", n, rep.String())
	}
}
