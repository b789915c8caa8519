package emperor

import (
	"fmt"
	"log/slog"
	"sync"
	"syscall"
	"time"

	"github.com/emperor-dev/emperor/control"
	"github.com/emperor-dev/emperor/reexec"
	"github.com/emperor-dev/emperor/restart"
)

// The states of a vassal, as `emperor status` shows them.
//
//	            file valid                 ready
//	(new) ───────────────► starting ───────────────► running ◄──┐
//	  │                      ▲  │                      │  │      │ ready
//	  │ file invalid         │  │ died                 │  │ file  │
//	  ▼                      │  ▼                      │  ▼ changed
//	failed-config ──fixed──► backoff ◄────died─────────┘ reloading
//	                                                         │ refused: uid, gid, sockets...
//	stopping: file deleted, emperor stopping, or a full restart
const (
	StateStarting     = "starting"
	StateRunning      = "running"
	StateReloading    = "reloading"
	StateStopping     = "stopping"
	StateBackoff      = "backoff"
	StateFailedConfig = "failed-config"
)

// phase is the supervisor's state: the one variable every decision reads,
// from which `status` is derived.
type phase int

const (
	phaseNew          phase = iota // no file handled yet
	phaseFailedConfig              // the file was never valid: nothing to run
	phaseStarting                  // PID 1 spawned, not ready yet
	phaseRunning                   // ready, serving
	phaseReloading                 // a reload sent, not answered yet
	phaseRestarting                // SIGTERM sent for a full restart: start again once gone
	phaseStopping                  // SIGTERM sent to stop for good
	phaseBackoff                   // dead; the timer starts it again
	phaseStopped                   // stopped for good, no process: run returns
)

// state is the name `emperor status` shows for p.
func (p phase) state() string {
	switch p {
	case phaseFailedConfig:
		return StateFailedConfig
	case phaseRunning:
		return StateRunning
	case phaseReloading:
		return StateReloading
	case phaseRestarting, phaseStopping, phaseStopped:
		return StateStopping
	case phaseBackoff:
		return StateBackoff
	}
	return StateStarting
}

// final says the vassal is being stopped for good: commands are ignored.
func (p phase) final() bool { return p == phaseStopping || p == phaseStopped }

// killGrace is how long after reload-mercy the emperor SIGKILLs a vassal's
// PID 1 that has not exited. The vassal SIGKILLs its own daemons at
// reload-mercy; the grace lets it run its as-user-atexit hooks after that.
const killGrace = 2 * time.Second

// reloadSpacing is the least time between two in-place reloads of one
// vassal. A reload restarts the vassal's daemons; one sent as soon as the
// last landed would stop daemons that are still starting. A storm of
// changes thus costs at most one reload per reloadSpacing, and the last
// change is always applied; a lone change is applied at once.
const reloadSpacing = 200 * time.Millisecond

// drainTimeout bounds the wait for a dead vassal's last messages.
const drainTimeout = time.Second

// Mailbox commands.
type (
	cmdUpdate struct{ v *Loaded } // the file is valid (new or changed)
	cmdBroken struct{ err error } // the file is invalid
	cmdReload struct{}            // SIGHUP or control reload: reload in place with the current file
	cmdStop   struct{}            // stop for good
)

// supervisor owns one vassal: its configuration, its current process and
// its restart policy. One goroutine (run) makes every decision; others talk
// to it through post, which never blocks, and read its status through
// status, which is derived from what run publishes.
type supervisor struct {
	name   string
	cfg    *Config
	policy restart.Policy
	exe    string
	log    *slog.Logger
	// once is `emperor run`: the vassal is not restarted when it dies, and
	// err says why it ended.
	once bool
	err  error

	wake chan struct{}
	done chan struct{} // closed when the vassal is stopped for good

	mu    sync.Mutex
	inbox []any
	view  view // what status derives from, published by run

	// Owned by run.
	phase phase
	// reloadQueued is the one pending reload: one more asked for while a
	// start or a reload is in flight. Any number of requests coalesce
	// into it, and it sends the newest good file when the flight lands.
	reloadQueued bool
	// timer is the phase's deadline: in backoff the next start, in
	// stopping and restarting the SIGKILL, in running the queued reload
	// (reloadSpacing after the last one).
	timer *time.Timer
	// lastReload is when the last in-place reload was sent.
	lastReload time.Time
	tracker    restart.Tracker
	good       *Loaded // the last valid file
	proc       *process
	// msgsClosed: the current process's message channel is at EOF.
	msgsClosed bool
	// What the current or last process said or did, for status and logs.
	fatal       string // what the current process said before dying
	file        string
	configError string
	lastExit    string
	restarts    int
	nextAttempt time.Time
	namespaces  string
	mounts      []control.MountStatus
	// onReady gets how long a new PID 1 took from clone to ready (the
	// emperor's spawn histogram); nil for `emperor run`.
	onReady func(seconds float64)
}

// view is a copy of what status shows, taken by run after each event.
type view struct {
	phase                                   phase
	tracker                                 restart.Tracker
	pid                                     int
	startedAt, nextAttempt                  time.Time
	restarts                                int
	file, configError, lastExit, namespaces string
	mounts                                  []control.MountStatus
	reads                                   []string
}

func newSupervisor(name, path string, cfg *Config, exe string, once bool) *supervisor {
	s := &supervisor{
		name: name, cfg: cfg, policy: cfg.Policy(), exe: exe, once: once,
		log:  cfg.Logger.With("vassal", name),
		wake: make(chan struct{}, 1),
		done: make(chan struct{}),
		file: path,
	}
	s.publish()
	return s
}

// post queues a command; it never blocks the caller.
func (s *supervisor) post(c any) {
	s.mu.Lock()
	s.inbox = append(s.inbox, c)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// publish copies what status shows; run calls it after each event.
func (s *supervisor) publish() {
	v := view{
		phase: s.phase, tracker: s.tracker, restarts: s.restarts, nextAttempt: s.nextAttempt,
		file: s.file, configError: s.configError, lastExit: s.lastExit, namespaces: s.namespaces,
		mounts: s.mounts, reads: s.good.reads(),
	}
	if s.proc != nil {
		v.pid, v.startedAt = s.proc.pid, s.proc.started
	}
	s.mu.Lock()
	s.view = v
	s.mu.Unlock()
}

// status derives the vassal's row from the published state.
func (s *supervisor) status() control.VassalStatus {
	s.mu.Lock()
	v := s.view
	s.mu.Unlock()
	st := control.VassalStatus{
		Name: s.name, File: v.file, State: v.phase.state(), PID: v.pid, StartedAt: v.startedAt,
		ReadyAt: v.tracker.ReadyAt(), Restarts: v.restarts, LastExit: v.lastExit,
		ConfigError: v.configError, Namespaces: v.namespaces,
		Failures: v.tracker.Failures(s.policy, time.Now()),
		Mounts:   append([]control.MountStatus(nil), v.mounts...),
		Reads:    v.reads,
	}
	if v.phase == phaseBackoff {
		st.NextAttempt = v.nextAttempt
	}
	return st
}

func timerC(t *time.Timer) <-chan time.Time {
	if t == nil {
		return nil
	}
	return t.C
}

func (s *supervisor) setTimer(d time.Duration) {
	s.stopTimer()
	s.timer = time.NewTimer(d)
}

func (s *supervisor) stopTimer() {
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
}

func (s *supervisor) run() {
	defer close(s.done)
	for s.phase != phaseStopped {
		var msgs <-chan control.Message
		var exit <-chan exitResult
		if s.proc != nil {
			exit = s.proc.exit
			if !s.msgsClosed {
				msgs = s.proc.msgs
			}
		}
		select {
		case <-s.wake:
			s.mu.Lock()
			inbox := s.inbox
			s.inbox = nil
			s.mu.Unlock()
			for _, c := range inbox {
				s.handle(c)
			}
		case m, ok := <-msgs:
			if !ok {
				s.msgsClosed = true
				continue
			}
			s.message(m)
		case r := <-exit:
			s.exited(r)
		case <-timerC(s.timer):
			s.timer = nil
			s.deadline()
		}
		s.publish()
	}
}

// deadline is the phase's timer firing.
func (s *supervisor) deadline() {
	switch s.phase {
	case phaseBackoff:
		s.start()
	case phaseRunning:
		if s.reloadQueued {
			s.reloadInPlace()
		}
	case phaseStopping, phaseRestarting:
		if s.proc != nil {
			s.log.Warn("vassal still running after reload-mercy: SIGKILL", "pid", s.proc.pid, "mercy", s.mercy())
			if err := s.proc.signal(syscall.SIGKILL); err != nil {
				s.log.Error("SIGKILL failed", "pid", s.proc.pid, "err", err)
			}
		}
	}
}

func (s *supervisor) handle(c any) {
	if s.phase.final() {
		return
	}
	switch c := c.(type) {
	case cmdUpdate:
		s.update(c.v)
	case cmdBroken:
		s.broken(c.err)
	case cmdReload:
		s.reload()
	case cmdStop:
		if s.proc != nil {
			s.terminate(phaseStopping)
		} else {
			s.stopTimer()
			s.phase = phaseStopped
		}
	}
}

// update takes a valid (new or changed) file.
func (s *supervisor) update(v *Loaded) {
	for _, w := range v.Warnings {
		s.log.Warn(w.String())
	}
	s.good = v
	s.file, s.configError = v.Path, ""
	s.reload()
}

// broken takes an invalid file. A running vassal keeps running on its last
// good file; so does one in backoff when it restarts.
func (s *supervisor) broken(err error) {
	s.configError = err.Error()
	switch {
	case s.proc != nil:
		s.log.Error("vassal file rejected; the vassal keeps running on its last good file", "err", err)
	case s.good != nil:
		s.log.Error("vassal file rejected; the vassal will restart on its last good file", "err", err)
	default:
		s.log.Error("vassal file rejected", "err", err)
		s.phase = phaseFailedConfig
	}
}

// reload applies the current good file: in place when the vassal runs (at
// most one reload per reloadSpacing); at once (and with the failure count
// reset) when it is new, in backoff or failed-config, since an operator
// asked; once the start or reload in flight has landed otherwise; and at
// the next start when the vassal is restarting. At most one reload is in
// flight and one is queued: every request meanwhile coalesces into the
// queued one, which sends the newest good file.
func (s *supervisor) reload() {
	if s.good == nil {
		return
	}
	switch s.phase {
	case phaseNew, phaseFailedConfig, phaseBackoff:
		s.tracker.Reset()
		s.start()
	case phaseStarting, phaseReloading:
		s.reloadQueued = true
	case phaseRunning:
		s.reloadSpaced()
	}
}

// reloadSpaced reloads in place now, or queues the reload for
// reloadSpacing after the last one.
func (s *supervisor) reloadSpaced() {
	wait := time.Until(s.lastReload.Add(reloadSpacing))
	if wait <= 0 {
		s.reloadInPlace()
		return
	}
	s.reloadQueued = true
	if s.timer == nil {
		s.setTimer(wait)
	}
}

// reloadInPlace sends the current file to the vassal, which applies it with
// the same PID 1, namespaces and mounts, or refuses when it cannot.
func (s *supervisor) reloadInPlace() {
	s.stopTimer()
	s.phase, s.reloadQueued, s.lastReload = phaseReloading, false, time.Now()
	s.log.Info("reloading vassal in place", "pid", s.proc.pid)
	if err := s.proc.send(control.Message{Type: control.MsgReload, Content: s.good.Content, Files: s.good.Files, Owner: s.good.controlOwner(), Mercy: s.cfg.Mercy}); err != nil {
		s.restart(fmt.Sprintf("the reload could not be sent: %v", err))
	}
}

// landed is a start or a reload in flight that landed (ready or refused):
// the queued reload, if any, goes now or after reloadSpacing.
func (s *supervisor) landed() {
	s.phase = phaseRunning
	if s.reloadQueued {
		s.reloadSpaced()
	}
}

func (s *supervisor) mercy() time.Duration {
	if s.good != nil && s.good.Spec.ReloadMercy > 0 {
		return s.good.Spec.ReloadMercy
	}
	return s.cfg.Mercy
}

// start spawns a new PID 1 for the current good file.
func (s *supervisor) start() {
	s.stopTimer()
	v := s.good
	ns := s.cfg.Namespaces | v.Spec.Unshare
	s.fatal, s.reloadQueued, s.mounts = "", false, nil
	p, err := startProcess(s.exe, s.name, ns)
	s.tracker.Started(time.Now())
	if err != nil {
		s.log.Error("vassal spawn failed", "err", err)
		s.died(0, err.Error(), "spawn failed")
		return
	}
	s.proc, s.msgsClosed, s.phase, s.namespaces = p, false, phaseStarting, ns.String()
	s.log.Info("vassal spawned", "pid", p.pid, "namespaces", ns.String())
	policy := s.policy
	err = p.send(control.Message{
		Type: control.MsgStart, Name: s.name, Path: v.Path, Content: v.Content, Files: v.Files, Owner: v.controlOwner(), Mercy: s.cfg.Mercy,
		Namespaces: ns,
		Policy:     &policy,
		LogFormat:  s.cfg.LogFormat,
	})
	if err != nil {
		s.fatal = fmt.Sprintf("the start message could not be sent: %v", err)
		s.log.Error("killing the vassal", "pid", p.pid, "err", s.fatal)
		_ = p.signal(syscall.SIGKILL)
	}
}

// terminate asks the current process to stop (SIGTERM), with SIGKILL after
// mercy, and moves to next: phaseStopping (for good) or phaseRestarting.
// A stop asked for during a restart turns it into a stop for good.
func (s *supervisor) terminate(next phase) {
	if s.proc == nil {
		return
	}
	already := s.phase == phaseStopping || s.phase == phaseRestarting
	s.phase, s.reloadQueued = next, false
	if already {
		return
	}
	// The message first: it cannot be lost. The signal can be, while the
	// thread of PID 1 the kernel picks for it sleeps in a hung FUSE mount
	// (package nosignal), but it is what stops a PID 1 whose control
	// channel is stuck, and what uWSGI's Emperor sends.
	if err := s.proc.send(control.Message{Type: control.MsgStop}); err != nil {
		s.log.Warn("stop message not sent; SIGTERM only", "pid", s.proc.pid, "err", err)
	}
	if err := s.proc.signal(syscall.SIGTERM); err != nil {
		s.log.Error("SIGTERM failed", "pid", s.proc.pid, "err", err)
	}
	s.setTimer(s.mercy() + killGrace)
}

// restart stops the vassal and starts it again at once, without backoff:
// not a failure, but a file that a running vassal cannot apply in place.
func (s *supervisor) restart(reason string) {
	s.log.Warn("vassal needs a full restart", "pid", s.proc.pid, "reason", reason)
	s.terminate(phaseRestarting)
}

func (s *supervisor) message(m control.Message) {
	switch m.Type {
	case control.MsgReady:
		switch {
		case !m.Reload && s.phase == phaseStarting:
			now := time.Now()
			s.tracker.Ready(now)
			s.log.Info("vassal ready", "pid", s.proc.pid, "startup", now.Sub(s.proc.started).Round(time.Millisecond))
			if s.onReady != nil {
				s.onReady(now.Sub(s.proc.started).Seconds())
			}
			s.landed()
		case m.Reload && s.phase == phaseReloading:
			s.log.Info("reload applied", "pid", s.proc.pid)
			s.landed()
		}
	case control.MsgFatal:
		s.fatal = m.Reason
	case control.MsgRefuse:
		if s.phase != phaseReloading {
			return
		}
		if m.Restart {
			s.restart(m.Reason)
			return
		}
		s.log.Error("the vassal rejected its file on reload; it keeps running on its last good file", "err", m.Reason)
		s.configError = m.Reason
		s.landed()
	case control.MsgMounts:
		s.mounts = m.Mounts
	case control.MsgAskReload:
		// touch-reload and friends: the reload a touch of the vassal file
		// gets (spaced, coalesced, with the current good file). A vassal
		// that is stopping or restarting is not reloaded.
		if s.phase != phaseRunning && s.phase != phaseStarting && s.phase != phaseReloading {
			return
		}
		s.log.Info("the vassal asks for a reload", "pid", s.proc.pid, "reason", m.Reason)
		s.reload()
	default:
		s.log.Warn("unknown message from the vassal", "type", m.Type)
	}
}

// exited handles the death of the current process.
func (s *supervisor) exited(r exitResult) {
	p := s.proc
	if !s.msgsClosed {
		for _, m := range p.drain(drainTimeout) {
			if m.Type == control.MsgAskReload {
				continue // a dead vassal's wish: it restarts anyway
			}
			s.message(m)
		}
	}
	p.release()
	s.proc = nil
	s.stopTimer()
	status := reexec.DescribeStatus(r.ws)
	if r.err != nil {
		status = r.err.Error()
	}
	uptime := time.Since(p.started).Round(time.Millisecond)
	switch s.phase {
	case phaseStopping:
		s.log.Info("vassal stopped", "pid", p.pid, "status", status, "uptime", uptime)
		s.tracker.Stopped(s.policy, time.Now())
		s.lastExit, s.phase = "stopped: "+status, phaseStopped
	case phaseRestarting:
		s.log.Info("vassal stopped for a full restart", "pid", p.pid, "status", status)
		s.tracker.Stopped(s.policy, time.Now())
		s.tracker.Reset()
		s.start()
	default:
		s.died(p.pid, s.fatal, status)
	}
}

// died records a failure of pid (0: a failed spawn) and schedules the next
// start as the restart policy says.
func (s *supervisor) died(pid int, reason, status string) {
	last := reason
	attrs := []any{"pid", pid, "status", status}
	if reason != "" {
		attrs = append(attrs, "reason", reason)
	} else {
		last = status
	}
	s.lastExit = last
	now := time.Now()
	if s.once {
		s.tracker.Stopped(s.policy, now)
		s.phase = phaseStopped
		s.err = fmt.Errorf("vassal %s exited: %s", s.name, last)
		s.log.Error("vassal died", attrs...)
		return
	}
	delay := s.tracker.Failed(s.policy, now)
	s.log.Warn("vassal died", append(attrs, "failures", fmt.Sprintf("%.2f", s.tracker.Failures(s.policy, now)), "restart_in", delay)...)
	s.restarts++
	s.phase, s.nextAttempt = phaseBackoff, now.Add(delay)
	// Even a zero delay goes through the timer: a spawn that fails at once
	// must not recurse, and a stop that arrives meanwhile cancels it.
	s.setTimer(delay)
}
