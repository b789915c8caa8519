package vassal

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/emperor-dev/emperor/nosignal"
	"github.com/emperor-dev/emperor/reexec"

	"github.com/emperor-dev/emperor/vassalfile"
	"golang.org/x/sys/unix"
)

// touchSettle gathers the events of one change (an editor's truncate,
// write and close; touch's create and attrib) into one check.
const touchSettle = 50 * time.Millisecond

// touchStopWait bounds the wait for the watcher at Stop: a path lookup into
// a hung FUSE mount blocks it for good, and PID 1 must still stop.
const touchStopWait = 2 * time.Second

// touchState is what a change of a touched file is seen in: it appears or
// goes away, or its inode or mtime changes (a rename over it, a touch, a
// write, a symlink on its path that now leads elsewhere).
type touchState struct {
	exists   bool
	dev, ino uint64
	mtime    unix.Timespec
	size     int64
}

// statTouch stats path, following symlinks as the tenant's tools would.
// The lookup may hang in a FUSE mount: it runs where no signal for PID 1
// can be caught (package nosignal).
func statTouch(path string) touchState {
	var st unix.Stat_t
	var err error
	nosignal.Do(func() { err = unix.Stat(path, &st) })
	if err != nil {
		return touchState{}
	}
	return touchState{exists: true, dev: st.Dev, ino: st.Ino, mtime: st.Mtim, size: st.Size}
}

// touchEntry is one touch-* line being watched.
type touchEntry struct {
	t     vassalfile.Touch
	abs   string // the path, absolute (relative ones are under chdir)
	state touchState
}

// interest is what an inotify watch is for: the entry, and the name in the
// watched directory that leads to its file ("" : the file itself).
type interest struct {
	entry *touchEntry
	name  string
}

// touchWatcher is the touch-* component: touch-reload, touch-chain-reload
// and touch-workers-reload ask the emperor for a reload (RequestReload),
// touch-logreopen and touch-logrotate act on the log file, touch-exec runs
// its command. Files are watched with inotify, no poll: each directory on
// the path from / down to the file's (the deepest that exists, for a file
// whose directories appear later) and the file itself. A relevant event
// starts a short settle, then every file is stat'ed and compared with what
// was seen last, and the watches are set again (a directory that appeared,
// a symlink swapped, a file renamed over).
//
// Paths are looked up in the vassal's view (after the jail), as the
// tenant, from the watcher's goroutine only: a hung mount on a path blocks
// that goroutine, never PID 1's loop. Around a reload the watcher pauses
// (Release) and takes what it sees after the reload as the new baseline
// (Apply), as uWSGI reads its touch files' times anew when it reloads: a
// remount by the as-user hooks does not reload the vassal again. A change
// while the reload runs is taken in; one after it (after the emperor has
// heard the reload landed) is seen.
type touchWatcher struct {
	v *vassal

	mu      sync.Mutex
	fd      *os.File // the inotify instance; nil: none yet
	pending []*touchEntry
	newSet  bool
	setDone chan struct{} // closed once the pending set is the baseline
	proc    *proc         // how touch-exec commands start (the current config)
	mercy   time.Duration
	paused  atomic.Bool
	// baselines counts the baselines taken (for tests: the watches are
	// set once it moved).
	baselines atomic.Int64
	wake      chan struct{}
	stop      chan struct{}
	done      chan struct{}
	running   map[string]int // touch-exec commands running: key -> pid
	execs     sync.WaitGroup
}

func newTouchWatcher(v *vassal) *touchWatcher {
	return &touchWatcher{v: v, wake: make(chan struct{}, 1), running: map[string]int{}}
}

func (w *touchWatcher) Start(c *config) error { return w.set(c) }

// Release pauses the watcher while the reload runs (see above).
func (w *touchWatcher) Release(old, new *config) { w.paused.Store(true) }

// Apply watches new's touch lines, with what is seen now as the baseline.
func (w *touchWatcher) Apply(old, new *config) error { return w.set(new) }

// set hands c's touch lines to the watcher and waits until it has set its
// watches and taken the baseline, so that a change after the start or
// reload is reported (the wait is bounded by touchStopWait: the lookups
// may hang on a mount, and PID 1 goes on then).
func (w *touchWatcher) set(c *config) error {
	entries := touchEntries(c.spec, w.v.log)
	w.mu.Lock()
	w.proc, w.mercy = w.v.newProc(c, nil), w.v.mercyFor(c.spec)
	if w.fd == nil {
		if len(entries) == 0 {
			w.mu.Unlock()
			w.paused.Store(false)
			return nil
		}
		fd, err := inotifyInit()
		if err != nil {
			w.mu.Unlock()
			return err
		}
		w.fd = fd
		w.stop, w.done = make(chan struct{}), make(chan struct{})
		events := make(chan []inotifyEvent, 16)
		go readInotify(fd, events)
		go w.run(events)
	}
	done := make(chan struct{})
	w.pending, w.newSet, w.setDone = entries, true, done
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	select {
	case <-done:
	case <-time.After(touchStopWait):
		w.v.log.Warn("the touch watcher has not set its watches yet (a path lookup into a hung mount?); going on", "waited", touchStopWait)
	}
	return nil
}

// touchEntries lists spec's touch lines with absolute paths. A reload
// line that names the vassal file itself (touch-reload = %p, a uWSGI idiom
// outside an emperor) is left out when the vassal has no jail: the emperor
// reloads the vassal when its file changes already, and a second request
// would reload it twice.
func touchEntries(s *vassalfile.Spec, log *slog.Logger) []*touchEntry {
	var out []*touchEntry
	for _, t := range s.Touches {
		abs := t.Path
		if !filepath.IsAbs(abs) {
			abs = filepath.Join(workdirOf(s), abs)
		}
		if abs == s.Path && s.Chroot == "" && s.PivotNew == "" && t.Action != "touch-exec" && t.Action != "touch-logreopen" && t.Action != "touch-logrotate" {
			log.Info("not watching the vassal file itself: the emperor reloads the vassal when it changes", t.Action, t.Path, "line", t.Ref)
			continue
		}
		out = append(out, &touchEntry{t: t, abs: abs})
	}
	return out
}

func (w *touchWatcher) Stop() {
	w.mu.Lock()
	fd, stop, done := w.fd, w.stop, w.done
	w.fd = nil
	mercy := w.mercy
	w.mu.Unlock()
	if fd == nil {
		return
	}
	close(stop)
	fd.Close() // ends readInotify
	select {
	case <-done:
	case <-time.After(touchStopWait):
		w.v.log.Warn("the touch watcher did not stop in time (a path lookup into a hung mount?); leaving it", "waited", touchStopWait)
	}
	// touch-exec commands still running stop as daemons do: SIGTERM to
	// their group, SIGKILL after mercy.
	w.mu.Lock()
	var pids []int
	for key, pid := range w.running {
		w.v.log.Info("stopping touch-exec command", "touch-exec", shortCmd(key), "pid", pid, "mercy", mercy)
		pids = append(pids, pid)
	}
	w.mu.Unlock()
	if len(pids) == 0 {
		return
	}
	gone := make(chan struct{})
	go func() { w.execs.Wait(); close(gone) }()
	stopAndWait(func(sig syscall.Signal) {
		for _, pid := range pids {
			killProcessGroup(pid, sig)
		}
	}, gone, mercy)
}

// run is the watcher's goroutine: it owns the watches and the entries.
func (w *touchWatcher) run(events <-chan []inotifyEvent) {
	defer close(w.done)
	var entries []*touchEntry
	watches := map[int32][]interest{}
	var settle *time.Timer
	var settleC <-chan time.Time
	for {
		select {
		case <-w.stop:
			if settle != nil {
				settle.Stop()
			}
			return
		case <-w.wake:
			w.mu.Lock()
			set, ok, done := w.pending, w.newSet, w.setDone
			w.pending, w.newSet, w.setDone = nil, false, nil
			w.mu.Unlock()
			if !ok {
				continue
			}
			// Watches first, then the baseline: a change after the
			// stat is an event on the new watches.
			entries = set
			w.arm(entries, watches)
			for _, e := range entries {
				e.state = statTouch(e.abs)
				if !e.state.exists {
					w.v.log.Info("touched file does not exist yet: its creation will trigger", e.t.Action, e.t.Path)
				}
			}
			w.paused.Store(false)
			w.baselines.Add(1)
			close(done)
		case evs, ok := <-events:
			if !ok {
				return
			}
			if relevant(evs, watches) && settle == nil {
				settle = time.NewTimer(touchSettle)
				settleC = settle.C
			}
		case <-settleC:
			settle, settleC = nil, nil
			if w.paused.Load() {
				continue // a reload runs: Apply takes a new baseline
			}
			// Watches first (a directory appeared, a symlink now leads
			// elsewhere), then the states: a change between the two is
			// in the stat, a change after it is an event on the new
			// watches (one that came on a removed watch is not lost).
			w.arm(entries, watches)
			w.check(entries)
		}
	}
}

// relevant says whether a batch of events may concern a watched file.
func relevant(evs []inotifyEvent, watches map[int32][]interest) bool {
	for _, ev := range evs {
		if ev.mask&unix.IN_Q_OVERFLOW != 0 {
			return true // events were lost: check everything
		}
		for _, in := range watches[ev.wd] {
			if in.name == "" || in.name == ev.name || ev.mask&(unix.IN_IGNORED|unix.IN_DELETE_SELF|unix.IN_MOVE_SELF|unix.IN_UNMOUNT) != 0 {
				return true
			}
		}
	}
	return false
}

// Watch masks: a directory on a path is watched for its entries coming and
// going and, for the last one, for the file changing; the file itself for
// its content and attributes.
const (
	touchDirMask  = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO | unix.IN_ATTRIB | unix.IN_CLOSE_WRITE | unix.IN_MODIFY | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF | unix.IN_ONLYDIR
	touchFileMask = unix.IN_ATTRIB | unix.IN_CLOSE_WRITE | unix.IN_MODIFY | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF
)

// arm sets the watches of entries again, from scratch. The caller stats
// the files after it (see run).
func (w *touchWatcher) arm(entries []*touchEntry, watches map[int32][]interest) {
	w.mu.Lock()
	fd := w.fd
	w.mu.Unlock()
	if fd == nil {
		return
	}
	ifd := int(fd.Fd())
	for wd := range watches {
		_, _ = unix.InotifyRmWatch(ifd, uint32(wd))
		delete(watches, wd)
	}
	for _, e := range entries {
		dir := "/"
		for _, name := range strings.Split(strings.TrimPrefix(e.abs, "/"), "/") {
			wd, err := addWatch(ifd, dir, touchDirMask)
			if err != nil {
				break // it does not exist (yet): its parent, watched, says when it appears
			}
			watches[wd] = append(watches[wd], interest{entry: e, name: name})
			dir = filepath.Join(dir, name)
		}
		if wd, err := addWatch(ifd, e.abs, touchFileMask); err == nil {
			watches[wd] = append(watches[wd], interest{entry: e})
		}
	}
}

// check stats every file and runs the action of each that changed. The
// reload actions ask for one reload however many of their files changed.
func (w *touchWatcher) check(entries []*touchEntry) {
	var reload []string
	reopen, rotate := "", ""
	for _, e := range entries {
		st := statTouch(e.abs)
		if st == e.state {
			continue
		}
		e.state = st
		what := e.t.Action + " " + e.t.Path
		switch e.t.Action {
		case "touch-reload", "touch-chain-reload", "touch-workers-reload":
			reload = append(reload, what)
		case "touch-logreopen":
			reopen = what
		case "touch-logrotate":
			rotate = what
		case "touch-exec":
			w.exec(e)
		}
	}
	if rotate != "" {
		w.v.rotateLog(rotate)
	} else if reopen != "" {
		w.v.reopenLog(reopen)
	}
	if len(reload) > 0 {
		w.v.RequestReload(strings.Join(reload, ", ") + " changed")
	}
}

// exec runs a touch-exec command, unless the last run of it still runs.
func (w *touchWatcher) exec(e *touchEntry) {
	key := e.t.Path + " " + e.t.Arg
	w.mu.Lock()
	defer w.mu.Unlock()
	if pid, busy := w.running[key]; busy {
		w.v.log.Warn("touch-exec: the last run still runs; not starting another", "touch-exec", e.t.Path, "pid", pid)
		return
	}
	log := w.v.log.With("touch-exec", shortCmd(e.t.Arg))
	pid, exit, err := w.proc.startShell(e.t.Arg, log)
	if err != nil {
		log.Error("touch-exec command did not start", "err", err)
		return
	}
	log.Info("touch-exec command started", "file", e.t.Path, "pid", pid)
	w.running[key] = pid
	w.execs.Add(1)
	go func() {
		defer w.execs.Done()
		ws := <-exit
		killProcessGroup(pid, unix.SIGKILL) // anything it left in its group
		w.mu.Lock()
		delete(w.running, key)
		w.mu.Unlock()
		logExit(log, pid, ws)
	}()
}

func logExit(log *slog.Logger, pid int, ws unix.WaitStatus) {
	if ws.Exited() && ws.ExitStatus() == 0 {
		log.Info("touch-exec command done", "pid", pid)
		return
	}
	log.Warn("touch-exec command failed", "pid", pid, "status", reexec.DescribeStatus(ws))
}

// inotifyEvent is one event, decoded.
type inotifyEvent struct {
	wd   int32
	mask uint32
	name string
}

// inotifyInit creates the inotify instance, non-blocking so that its reads
// park in the netpoller instead of pinning a thread. It counts against the
// user's fs.inotify.max_user_instances (128 by default), which is why a
// vassal without touch lines creates none.
func inotifyInit() (*os.File, error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("inotify_init1 for the touch-* options: %w (see fs.inotify.max_user_instances)", err)
	}
	return os.NewFile(uintptr(fd), "inotify"), nil
}

// addWatch watches path (symlinks followed: the watch is on what the path
// leads to now) and returns the watch descriptor. The path lookup may hang
// in a FUSE mount, so it runs where no signal for PID 1 can be caught
// (package nosignal).
func addWatch(fd int, path string, mask uint32) (int32, error) {
	var wd int
	var err error
	nosignal.Do(func() { wd, err = unix.InotifyAddWatch(fd, path, mask) })
	return int32(wd), err
}

// readInotify decodes events from fd into out until fd is closed.
func readInotify(fd *os.File, out chan<- []inotifyEvent) {
	defer close(out)
	buf := make([]byte, 64<<10)
	for {
		n, err := fd.Read(buf)
		if err != nil {
			return
		}
		var evs []inotifyEvent
		// struct inotify_event: wd, mask, cookie, len, then len bytes of
		// NUL-padded name.
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			wd := int32(binary.NativeEndian.Uint32(buf[off:]))
			mask := binary.NativeEndian.Uint32(buf[off+4:])
			end := off + unix.SizeofInotifyEvent + int(binary.NativeEndian.Uint32(buf[off+12:]))
			if end > n {
				break
			}
			name := strings.TrimRight(string(buf[off+unix.SizeofInotifyEvent:end]), "\x00")
			evs = append(evs, inotifyEvent{wd: wd, mask: mask, name: name})
			off = end
		}
		out <- evs
	}
}
