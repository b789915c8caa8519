package vassal

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emperor-dev/emperor/vassalfile"
)

// The vassal's log sink. Every record PID 1 writes goes through v.log,
// whose handler (sinkHandler) sends it to the emperor's log (stderr, shared
// with the emperor) and, when the file asks for one (logto, logto2), to the
// vassal's log file:
//   - PID 1's own records go to both, so the emperor's log keeps the
//     vassal's lifecycle with its name;
//   - the output of the vassal's processes (hooks, daemons, the app server,
//     cron jobs: logLines marks it with outputCtx) goes only to the file,
//     as the raw line, with log-date's prefix when set.
//
// The file is written by one goroutine from a queue bounded in bytes: a full
// disk, an unwritable file or a hung mount under it never blocks whoever
// logs. What does not fit is dropped and counted, and the count is written
// when the file takes lines again; write errors go to the emperor's log,
// at most once per logErrorEvery.

// outputKey marks a record that is a line of a child's output.
type outputKey struct{}

// outputCtx is the context logLines logs a child's lines with.
var outputCtx = context.WithValue(context.Background(), outputKey{}, true)

const (
	// logQueueMax bounds the bytes waiting for the file.
	logQueueMax = 4 << 20
	// logErrorEvery spaces the reports of a failing log file.
	logErrorEvery = time.Minute
	// logRotateRetry spaces rotation attempts after one failed.
	logRotateRetry = 30 * time.Second
	// logCloseWait bounds the wait for the last lines at exit.
	logCloseWait = 2 * time.Second
)

// logSink holds the vassal's current log file writer (nil: none).
type logSink struct {
	mu sync.Mutex
	w  *logWriter
}

func (s *logSink) writer() *logWriter {
	if s == nil {
		return nil // a vassal built by a unit test
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w
}

// swap installs w and returns the writer it replaces.
func (s *logSink) swap(w *logWriter) *logWriter {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.w
	s.w = w
	return old
}

// sinkHandler is the handler of v.log (see above).
type sinkHandler struct {
	sink *logSink
	emp  slog.Handler // the emperor's log
	file slog.Handler // PID 1's records as text lines, into the sink's writer
}

func newSinkHandler(emp slog.Handler, sink *logSink) *sinkHandler {
	return &sinkHandler{sink: sink, emp: emp, file: slog.NewTextHandler(sinkWriter{sink}, nil)}
}

func (h *sinkHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.emp.Enabled(ctx, l) || h.file.Enabled(ctx, l)
}

func (h *sinkHandler) Handle(ctx context.Context, r slog.Record) error {
	w := h.sink.writer()
	if w == nil {
		return h.emp.Handle(ctx, r)
	}
	if ctx.Value(outputKey{}) != nil {
		w.enqueueOutput(r)
		return nil
	}
	_ = h.file.Handle(ctx, r)
	return h.emp.Handle(ctx, r)
}

func (h *sinkHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &sinkHandler{sink: h.sink, emp: h.emp.WithAttrs(as), file: h.file.WithAttrs(as)}
}

func (h *sinkHandler) WithGroup(name string) slog.Handler {
	return &sinkHandler{sink: h.sink, emp: h.emp.WithGroup(name), file: h.file.WithGroup(name)}
}

// sinkWriter queues what the text handler writes (one record per Write).
type sinkWriter struct{ sink *logSink }

func (s sinkWriter) Write(p []byte) (int, error) {
	if w := s.sink.writer(); w != nil {
		w.enqueue(append([]byte(nil), p...))
	}
	return len(p), nil
}

// logConfig is what a log file does that a reload may change.
type logConfig struct {
	maxSize int64
	bdir    *os.File // log-backupname's directory; nil: the file's own
	bname   string   // "": the file's name + "." + Unix time
	chmod   os.FileMode
	date    vassalfile.LogDate
}

// logWriter writes one log file (see the top of this file).
type logWriter struct {
	path   string       // as configured, for messages
	report *slog.Logger // the emperor's log, for problems with the file

	mu      sync.Mutex
	queue   [][]byte
	queued  int
	dropped int
	cfg     logConfig // the config for the next batch
	newCfg  bool
	reopen  string // a reopen asked for, and why
	rotate  string // a rotation asked for, and why
	closing bool
	wake    chan struct{}
	done    chan struct{}

	// Owned by the writer goroutine.
	dir      *os.File
	name     string
	f        *os.File
	size     int64
	active   logConfig
	lastErr  time.Time // last report of a failure
	failing  bool
	rotateAt time.Time // no rotation attempt before this (one failed)
}

// newLogWriter starts writing f (opened in dir as name) with cfg.
func newLogWriter(path string, dir *os.File, name string, f *os.File, cfg logConfig, report *slog.Logger) *logWriter {
	w := &logWriter{
		path: path, report: report, cfg: cfg, active: cfg,
		dir: dir, name: name, f: f,
		wake: make(chan struct{}, 1), done: make(chan struct{}),
	}
	if st, err := f.Stat(); err == nil {
		w.size = st.Size()
	}
	go w.run()
	return w
}

// enqueue queues one record for the file, or drops and counts it when
// logQueueMax bytes are already waiting.
func (w *logWriter) enqueue(b []byte) {
	w.mu.Lock()
	if w.closing || w.queued+len(b) > logQueueMax {
		w.dropped++
		w.mu.Unlock()
		return
	}
	w.queue = append(w.queue, b)
	w.queued += len(b)
	w.mu.Unlock()
	w.poke()
}

// enqueueOutput queues a line of a child's output: the line as it was
// written, after log-date's prefix. A long line that logLines cut into
// parts is joined again (no newline after a part that continues).
func (w *logWriter) enqueueOutput(r slog.Record) {
	w.mu.Lock()
	date := w.cfg.date
	w.mu.Unlock()
	cont, part := false, 0
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "line_continues":
			cont = a.Value.Bool()
		case "line_part":
			part = int(a.Value.Int64())
		}
		return true
	})
	var b []byte
	if date.On && part <= 1 {
		b = append(b, logDatePrefix(date.Format, r.Time)...)
	}
	b = append(b, r.Message...)
	if !cont {
		b = append(b, '\n')
	}
	w.enqueue(b)
}

// logDatePrefix is log-date's prefix for t: uWSGI's ctime form without a
// format, else the strftime format; then " - ".
func logDatePrefix(format string, t time.Time) string {
	if format == "" {
		return t.Format("Mon Jan _2 15:04:05 2006") + " - "
	}
	return strftime(format, t) + " - "
}

// strftime formats t with the conversions vassalfile.StrftimeConversions
// lists (the parser refused any other).
func strftime(format string, t time.Time) string {
	var b strings.Builder
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' || i+1 == len(format) {
			b.WriteByte(c)
			continue
		}
		i++
		switch format[i] {
		case 'a':
			b.WriteString(t.Format("Mon"))
		case 'A':
			b.WriteString(t.Format("Monday"))
		case 'b':
			b.WriteString(t.Format("Jan"))
		case 'B':
			b.WriteString(t.Format("January"))
		case 'c':
			b.WriteString(t.Format("Mon Jan _2 15:04:05 2006"))
		case 'd':
			b.WriteString(t.Format("02"))
		case 'D':
			b.WriteString(t.Format("01/02/06"))
		case 'e':
			b.WriteString(t.Format("_2"))
		case 'F':
			b.WriteString(t.Format("2006-01-02"))
		case 'H':
			b.WriteString(t.Format("15"))
		case 'I':
			b.WriteString(t.Format("03"))
		case 'j':
			fmt.Fprintf(&b, "%03d", t.YearDay())
		case 'm':
			b.WriteString(t.Format("01"))
		case 'M':
			b.WriteString(t.Format("04"))
		case 'n':
			b.WriteByte('\n')
		case 'p':
			b.WriteString(t.Format("PM"))
		case 's':
			b.WriteString(strconv.FormatInt(t.Unix(), 10))
		case 'S':
			b.WriteString(t.Format("05"))
		case 'T':
			b.WriteString(t.Format("15:04:05"))
		case 'y':
			b.WriteString(t.Format("06"))
		case 'Y':
			b.WriteString(t.Format("2006"))
		case 'z':
			b.WriteString(t.Format("-0700"))
		case 'Z':
			b.WriteString(t.Format("MST"))
		case '%':
			b.WriteByte('%')
		default:
			b.WriteByte('%')
			b.WriteByte(format[i])
		}
	}
	return b.String()
}

func (w *logWriter) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// configure hands a new config to the writer (from the next batch on).
func (w *logWriter) configure(cfg logConfig) {
	w.mu.Lock()
	if w.newCfg && w.cfg.bdir != nil && w.cfg.bdir != cfg.bdir {
		w.cfg.bdir.Close() // a config the writer never took
	}
	w.cfg, w.newCfg = cfg, true
	w.mu.Unlock()
	w.poke()
}

// requestReopen asks for the file to be reopened by its name (after
// logrotate moved it away), with why for the file's own record of it.
func (w *logWriter) requestReopen(why string) {
	w.mu.Lock()
	w.reopen = why
	w.mu.Unlock()
	w.poke()
}

// requestRotate asks for a rotation (touch-logrotate).
func (w *logWriter) requestRotate(why string) {
	w.mu.Lock()
	w.rotate = why
	w.mu.Unlock()
	w.poke()
}

// close writes what is queued and closes the file, waiting at most wait
// (a writer stuck on a hung filesystem is left behind).
func (w *logWriter) close(wait time.Duration) {
	w.mu.Lock()
	w.closing = true
	w.mu.Unlock()
	w.poke()
	select {
	case <-w.done:
	case <-time.After(wait):
		w.report.Warn("the log file did not take its last lines in time; leaving them", "logto", w.path, "waited", wait)
	}
}

func (w *logWriter) run() {
	defer close(w.done)
	for range w.wake {
		w.mu.Lock()
		batch, dropped := w.queue, w.dropped
		w.queue, w.queued, w.dropped = nil, 0, 0
		cfg, newCfg := w.cfg, w.newCfg
		reopen, rotate := w.reopen, w.rotate
		w.newCfg, w.reopen, w.rotate = false, "", ""
		closing := w.closing
		w.mu.Unlock()
		if newCfg {
			if w.active.bdir != nil && w.active.bdir != cfg.bdir {
				w.active.bdir.Close()
			}
			w.active = cfg
		}
		if rotate != "" {
			w.doRotate(rotate)
		} else if reopen != "" {
			w.doReopen(reopen)
		}
		if dropped > 0 {
			w.write([]byte(fmt.Sprintf("[emperor] %d log lines dropped: the log file did not take them fast enough\n", dropped)))
		}
		for _, b := range batch {
			w.write(b)
		}
		if closing {
			w.mu.Lock()
			more := len(w.queue) > 0
			w.mu.Unlock()
			if !more {
				w.f.Close()
				w.dir.Close()
				if w.active.bdir != nil {
					w.active.bdir.Close()
				}
				return
			}
			w.poke()
		}
	}
}

// write appends b, rotating first when log-maxsize says so.
func (w *logWriter) write(b []byte) {
	if m := w.active.maxSize; m > 0 && w.size > 0 && w.size+int64(len(b)) > m && !time.Now().Before(w.rotateAt) {
		// Someone else (logrotate's copytruncate) may have emptied it.
		if st, err := w.f.Stat(); err == nil {
			w.size = st.Size()
		}
		if w.size > 0 && w.size+int64(len(b)) > m {
			w.doRotate(fmt.Sprintf("logsize: %d, log-maxsize %d", w.size, m))
		}
	}
	n, err := w.f.Write(b)
	w.size += int64(n)
	if err != nil {
		w.failed("write", err)
		return
	}
	if w.failing {
		w.failing = false
		w.report.Info("the log file takes lines again", "logto", w.path)
	}
}

// failed reports a failure with the file to the emperor's log, at most
// once per logErrorEvery.
func (w *logWriter) failed(op string, err error) {
	w.failing = true
	if time.Since(w.lastErr) < logErrorEvery {
		return
	}
	w.lastErr = time.Now()
	w.report.Error("vassal log file: lines are lost", "op", op, "logto", w.path, "err", err)
}

// backupName is where a rotation moves the file.
func (w *logWriter) backupName() (*os.File, string) {
	if w.active.bname != "" {
		return w.active.bdir, w.active.bname
	}
	return w.dir, w.name + "." + strconv.FormatInt(time.Now().Unix(), 10)
}

// doRotate renames the file to its backup name and starts a new one, as
// uWSGI does (with its message in the old file). A failed rotation keeps
// writing the old file and is tried again after logRotateRetry.
func (w *logWriter) doRotate(why string) {
	bdir, bname := w.backupName()
	_, _ = fmt.Fprintf(w.f, "%s - %s: triggering rotation to %s...\n", logDatePrefix("", time.Now())[:24], why, bname)
	if err := renameLog(w.dir, w.name, bdir, bname); err != nil {
		w.rotateAt = time.Now().Add(logRotateRetry)
		w.failed("rotate", &LogFileError{Op: "rename to " + bname, Path: w.path, Err: err})
		return
	}
	f, err := openLogIn(w.dir, w.name, false)
	if err != nil {
		// The old descriptor still works (it now names the backup).
		w.rotateAt = time.Now().Add(logRotateRetry)
		w.failed("rotate", &LogFileError{Op: "create after rotation", Path: w.path, Err: err})
		return
	}
	w.setFile(f)
}

// doReopen reopens the file by its name: logrotate moved it away and
// wants a new one. A failed reopen keeps the old descriptor.
func (w *logWriter) doReopen(why string) {
	_, _ = fmt.Fprintf(w.f, "[%d] logsize: %d, triggering log-reopen (%s)...\n", time.Now().Unix(), w.size, why)
	f, err := openLogIn(w.dir, w.name, false)
	if err != nil {
		w.failed("reopen", &LogFileError{Op: "reopen", Path: w.path, Err: err})
		return
	}
	w.setFile(f)
	_, _ = fmt.Fprintf(w.f, "[%d] %s reopened.\n", time.Now().Unix(), w.path)
}

// setFile replaces the open file with f (logfile-chmod applied).
func (w *logWriter) setFile(f *os.File) {
	if w.active.chmod != 0 {
		if err := chmodLog(f, w.active.chmod); err != nil {
			w.failed("chmod", &LogFileError{Op: "chmod (logfile-chmod)", Path: w.path, Err: err})
		}
	}
	w.f.Close()
	w.f, w.size, w.rotateAt = f, 0, time.Time{}
	if st, err := f.Stat(); err == nil {
		w.size = st.Size()
	}
}
