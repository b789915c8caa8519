package emperor

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/emperor-dev/emperor/control"
	"github.com/emperor-dev/emperor/sdnotify"
	"github.com/emperor-dev/emperor/vassalfile"
	"github.com/fsnotify/fsnotify"
)

// Emperor watches a vassal directory and keeps one supervisor per vassal
// file. Run owns the directory state; Status and Reload may be called from
// any goroutine (the control socket, a signal handler).
type Emperor struct {
	cfg Config
	dir string
	exe string
	log *slog.Logger

	mu      sync.Mutex
	vassals map[string]*supervisor // the vassal table
	leaving map[string]bool        // file gone, vassal stopping
	held    map[string]bool        // stopped by the operator (ops.go)
	paused  bool                   // reaction to file changes paused (ops.go)
	// deferred are the files that changed while paused.
	deferred map[string]bool
	// mtimes are the vassal files' mtimes as last checked (emperor-stats'
	// last_mod, without a lookup into the directory).
	mtimes map[string]time.Time
	since  time.Time

	// Owned by Run.
	sentStatus string  // the last STATUS= sent to systemd
	ops        chan op // the operator's actions (ops.go)
	metrics    *metrics
	files      map[string]fileState
	settling   map[string]*settling
	settled    chan string
	gone       chan string
	// The checks of vassal files in flight (one per file at most), and
	// the files waiting for a free slot.
	checks        map[string]*checking
	queue         []string
	queued        map[string]bool
	verdicts      chan verdict
	checkTimeouts chan verdict
	quit          chan struct{}
	watcher       *fsnotify.Watcher
	watching      bool
}

type settling struct {
	first time.Time
	timer *time.Timer
}

// New checks cfg and returns an emperor that is not running yet.
func New(cfg Config) (*Emperor, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(cfg.VassalsDir)
	if err != nil {
		return nil, fmt.Errorf("vassal directory %s: %w", cfg.VassalsDir, err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("vassal directory: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("vassal directory %s is not a directory", dir)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find our own binary to re-execute as vassal init: %w", err)
	}
	e := &Emperor{
		cfg: cfg, dir: dir, exe: exe, log: cfg.Logger,
		vassals: map[string]*supervisor{}, leaving: map[string]bool{}, held: map[string]bool{},
		ops: make(chan op), deferred: map[string]bool{}, mtimes: map[string]time.Time{},
		files: map[string]fileState{}, settling: map[string]*settling{},
		settled: make(chan string, 64), gone: make(chan string, 64), quit: make(chan struct{}),
		checks: map[string]*checking{}, queued: map[string]bool{},
		verdicts: make(chan verdict, 64), checkTimeouts: make(chan verdict, 16),
	}
	e.metrics = newMetrics(e)
	return e, nil
}

// Run serves until ctx is done, then stops every vassal (in parallel, each
// with its mercy) and returns nil. It fails only if it cannot start: the
// control socket is taken, or the directory cannot be watched.
func (e *Emperor) Run(ctx context.Context) error {
	ln, err := listenControl(e.cfg.ControlPath)
	if err != nil {
		return err
	}
	defer os.Remove(e.cfg.ControlPath)
	defer ln.Close()
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("inotify: %w", err)
	}
	defer w.Close()
	closeStats, err := e.listenStats()
	if err != nil {
		return err
	}
	defer closeStats()
	e.watcher = w
	e.mu.Lock()
	e.since = time.Now()
	e.mu.Unlock()
	e.watch()
	e.rescan()
	go e.serveControl(ln)
	e.log.Info("emperor started", "vassals", e.dir, "pid", os.Getpid(), "namespaces", e.cfg.Namespaces.String(), "control", e.cfg.ControlPath, "rescan", e.cfg.Rescan)
	// Ready once the first scan has taken every file in (each vassal then
	// starts on its own) and the control socket answers.
	e.sentStatus = e.statusLine()
	e.notify("READY=1", e.sentStatus)
	tick := time.NewTicker(e.cfg.Rescan)
	defer tick.Stop()
	// The watchdog is fed from this loop, at half of WatchdogSec: a loop
	// that no longer turns stops feeding it, and systemd restarts us.
	var watchdog <-chan time.Time
	if d := e.cfg.Notifier.Watchdog(); d > 0 {
		wt := time.NewTicker(d / 2)
		defer wt.Stop()
		watchdog = wt.C
	}
	events, errs := w.Events, w.Errors
	for {
		e.updateStatus()
		select {
		case <-watchdog:
			e.notify("WATCHDOG=1")
		case o := <-e.ops:
			o.reply <- o.do()
		case <-ctx.Done():
			e.shutdown()
			return nil
		case ev, ok := <-events:
			if !ok {
				e.log.Error("inotify stopped; relying on the rescan", "rescan", e.cfg.Rescan)
				events = nil
				continue
			}
			e.event(ev)
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			// An overflowed inotify queue lost events: rescan now rather
			// than at the next tick.
			e.log.Warn("inotify", "err", err)
			e.rescan()
		case name := <-e.settled:
			if p := e.settling[name]; p != nil {
				p.timer.Stop()
				delete(e.settling, name)
			}
			e.sync(name)
		case name := <-e.gone:
			e.forget(name)
		case r := <-e.verdicts:
			e.judge(r)
		case r := <-e.checkTimeouts:
			e.timedOut(r.name, r.c)
		case <-tick.C:
			e.rescan()
		}
	}
}

// watch (re)arms inotify on the directory; a directory that was removed and
// created again is watched again at the next rescan.
func (e *Emperor) watch() {
	if e.watching {
		return
	}
	if err := e.watcher.Add(e.dir); err != nil {
		e.log.Error("cannot watch the vassal directory; relying on the rescan", "dir", e.dir, "err", err, "rescan", e.cfg.Rescan)
		return
	}
	e.watching = true
	e.log.Info("watching the vassal directory", "dir", e.dir)
}

func (e *Emperor) event(ev fsnotify.Event) {
	e.metrics.events.Inc()
	if filepath.Clean(ev.Name) == e.dir {
		if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
			e.watching = false
			_ = e.watcher.Remove(e.dir)
			e.log.Warn("the vassal directory went away; the vassals are left as they are", "dir", e.dir)
		}
		return
	}
	base := filepath.Base(ev.Name)
	if filepath.Dir(ev.Name) != e.dir || !isVassalFile(base) {
		return
	}
	name := vassalfile.NameOf(base)
	now := time.Now()
	if p := e.settling[name]; p != nil {
		p.timer.Reset(settleWait(p.first, now))
		return
	}
	e.settling[name] = &settling{first: now, timer: time.AfterFunc(settleDelay, func() {
		select {
		case e.settled <- name:
		case <-e.quit:
		}
	})}
}

func (e *Emperor) pathOf(name string) string { return filepath.Join(e.dir, name+".ini") }

// rescan is the safety net under inotify: it finds files whose events were
// lost, files changed behind a symlink, and files that went away.
func (e *Emperor) rescan() {
	e.metrics.rescans.Inc()
	e.watch()
	ents, err := os.ReadDir(e.dir)
	if err != nil {
		// Not "every file is gone": a directory that cannot be read (an
		// unmounted share, a permission slip) must not stop every tenant.
		e.log.Error("cannot read the vassal directory; the vassals are left as they are", "dir", e.dir, "err", err)
		return
	}
	present := map[string]bool{}
	for _, ent := range ents {
		if isVassalFile(ent.Name()) {
			name := vassalfile.NameOf(ent.Name())
			present[name] = true
			e.sync(name)
		}
	}
	e.mu.Lock()
	var missing []string
	for name := range e.vassals {
		if !present[name] && !e.leaving[name] {
			missing = append(missing, name)
		}
	}
	e.mu.Unlock()
	for _, name := range missing {
		e.sync(name)
	}
}

// remove stops the vassal of a file that is gone. The entry stays in the
// table, as stopping, until its PID 1 has been reaped, which is when the
// kernel has killed everything in its namespace.
func (e *Emperor) remove(name string) {
	delete(e.files, name)
	e.mu.Lock()
	delete(e.mtimes, name)
	sup := e.vassals[name]
	if sup == nil || e.leaving[name] {
		e.mu.Unlock()
		return
	}
	e.leaving[name] = true
	e.mu.Unlock()
	sup.log.Info("vassal file removed: stopping the vassal")
	sup.post(cmdStop{})
	go func() {
		<-sup.done
		select {
		case e.gone <- name:
		case <-e.quit:
		}
	}()
}

// forget drops a stopped vassal from the table; if its file is back, a new
// vassal starts for it.
func (e *Emperor) forget(name string) {
	e.mu.Lock()
	delete(e.vassals, name)
	delete(e.leaving, name)
	e.mu.Unlock()
	e.log.Info("vassal removed", "vassal", name)
	e.sync(name)
}

// shutdown stops every vassal in parallel and waits for all of them.
func (e *Emperor) shutdown() {
	e.mu.Lock()
	sups := make([]*supervisor, 0, len(e.vassals))
	for _, s := range e.vassals {
		sups = append(sups, s)
	}
	e.mu.Unlock()
	e.log.Info("emperor stopping", "vassals", len(sups))
	e.notify("STOPPING=1", fmt.Sprintf("STATUS=stopping %d vassals", len(sups)))
	start := time.Now()
	for _, s := range sups {
		s.post(cmdStop{})
	}
	for _, s := range sups {
		<-s.done
	}
	close(e.quit)
	for _, p := range e.settling {
		p.timer.Stop()
	}
	e.log.Info("emperor stopped", "took", time.Since(start).Round(time.Millisecond))
}

// Status returns the vassal table, sorted by name.
func (e *Emperor) Status() []control.VassalStatus {
	e.mu.Lock()
	sups := make([]*supervisor, 0, len(e.vassals))
	for _, s := range e.vassals {
		sups = append(sups, s)
	}
	e.mu.Unlock()
	out := make([]control.VassalStatus, 0, len(sups))
	for _, s := range sups {
		out = append(out, s.status())
	}
	e.mu.Lock()
	for name := range e.held {
		if _, ok := e.vassals[name]; !ok {
			out = append(out, e.heldStatus(name))
		}
	}
	e.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Reload reloads one vassal in place (name), or every vassal (""), with its
// current file. A vassal in backoff or failed-config is retried at once. It
// returns how many vassals were asked.
func (e *Emperor) Reload(name string) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if name != "" {
		s, ok := e.vassals[name]
		if !ok || e.leaving[name] {
			return 0, fmt.Errorf("no vassal named %q", name)
		}
		s.post(cmdReload{})
		return 1, nil
	}
	e.notify(sdnotify.Reloading()...)
	n := 0
	for name, s := range e.vassals {
		if !e.leaving[name] {
			s.post(cmdReload{})
			n++
		}
	}
	// Each vassal reloads on its own from here, as uWSGI's Emperor does
	// on SIGHUP: the emperor itself is ready again at once.
	e.notify("READY=1", e.statusLineLocked())
	return n, nil
}

// notify sends states to systemd, when it started us (Config.Notifier).
// A failure is logged, never fatal: the vassals do not depend on it.
func (e *Emperor) notify(states ...string) {
	if err := e.cfg.Notifier.Notify(states...); err != nil {
		e.log.Warn("systemd notification not sent", "states", strings.Join(states, " "), "err", err)
	}
}

// statusLine is systemd's STATUS= of the emperor: how many vassals it
// governs (the files it took in, whatever their state).
func (e *Emperor) statusLine() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.statusLineLocked()
}

func (e *Emperor) statusLineLocked() string {
	return fmt.Sprintf("STATUS=governing %d vassals", len(e.vassals))
}

// updateStatus sends STATUS= when the count of vassals changed since the
// last one sent.
func (e *Emperor) updateStatus() {
	if e.cfg.Notifier == nil {
		return
	}
	line := e.statusLine()
	if line != e.sentStatus {
		e.sentStatus = line
		e.notify(line)
	}
}
