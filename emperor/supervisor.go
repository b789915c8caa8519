package emperor

import (
	"fmt"
	"log/slog"
	"sync"
	"syscall"
	"time"

	"github.com/emperor-dev/emperor/control"
	"github.com/emperor-dev/emperor/reexec"
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

// killGrace is how long after reload-mercy the emperor SIGKILLs a vassal's
// PID 1 that has not exited. The vassal SIGKILLs its own daemons at
// reload-mercy; the grace lets it run its as-user-atexit hooks after that.
const killGrace = 2 * time.Second

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
// status.
type supervisor struct {
	name string
	cfg  *Config
	exe  string
	log  *slog.Logger
	// once is `emperor run`: the vassal is not restarted when it dies, and
	// err says why it ended.
	once bool
	err  error

	wake chan struct{}
	done chan struct{} // closed when the vassal is stopped for good

	mu    sync.Mutex
	inbox []any
	st    control.VassalStatus

	// Owned by run.
	good          *Loaded // the last valid file
	proc          *process
	msgsClosed    bool
	readyAt       time.Time // zero until the current process is ready
	fatal         string    // what the current process said before dying
	pendingReload bool      // a reload asked for before the vassal was ready
	stopping      bool      // SIGTERM sent to the current process
	final         bool      // stopped for good once the process is gone
	restartReason string    // start again at once when the process is gone
	backoff       backoff
	retry         *time.Timer
	kill          *time.Timer
}

func newSupervisor(name, path string, cfg *Config, exe string, once bool) *supervisor {
	return &supervisor{
		name: name, cfg: cfg, exe: exe, once: once,
		log:     cfg.Logger.With("vassal", name),
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
		st:      control.VassalStatus{Name: name, File: path},
		backoff: backoff{throttle: cfg.Throttle, max: cfg.MaxThrottle, healthy: cfg.HealthyTime},
	}
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

func (s *supervisor) status() control.VassalStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	st.Mounts = append([]control.MountStatus(nil), s.st.Mounts...)
	return st
}

func (s *supervisor) setStatus(f func(st *control.VassalStatus)) {
	s.mu.Lock()
	f(&s.st)
	s.mu.Unlock()
}

func (s *supervisor) setState(state string) {
	s.setStatus(func(st *control.VassalStatus) { st.State = state })
}

func timerC(t *time.Timer) <-chan time.Time {
	if t == nil {
		return nil
	}
	return t.C
}

func (s *supervisor) run() {
	defer close(s.done)
	for !(s.final && s.proc == nil) {
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
		case <-timerC(s.retry):
			s.retry = nil
			s.start()
		case <-timerC(s.kill):
			s.kill = nil
			if s.proc != nil {
				s.log.Warn("vassal still running after reload-mercy: SIGKILL", "pid", s.proc.pid, "mercy", s.mercy())
				if err := s.proc.signal(syscall.SIGKILL); err != nil {
					s.log.Error("SIGKILL failed", "pid", s.proc.pid, "err", err)
				}
			}
		}
	}
	s.setState(StateStopping)
}

func (s *supervisor) handle(c any) {
	if s.final {
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
		s.final = true
		s.stopRetry()
		s.terminate()
	}
}

// update takes a valid (new or changed) file.
func (s *supervisor) update(v *Loaded) {
	for _, w := range v.Warnings {
		s.log.Warn(w.String())
	}
	s.good = v
	s.setStatus(func(st *control.VassalStatus) { st.File = v.Path; st.ConfigError = "" })
	s.reload()
}

// broken takes an invalid file. A running vassal keeps running on its last
// good file; so does one in backoff when it restarts.
func (s *supervisor) broken(err error) {
	s.setStatus(func(st *control.VassalStatus) { st.ConfigError = err.Error() })
	switch {
	case s.proc != nil:
		s.log.Error("vassal file rejected; the vassal keeps running on its last good file", "err", err)
	case s.good != nil:
		s.log.Error("vassal file rejected; the vassal will restart on its last good file", "err", err)
	default:
		s.log.Error("vassal file rejected", "err", err)
		s.setState(StateFailedConfig)
	}
}

// reload applies the current good file: in place when the vassal runs, at
// once (and with the backoff reset) when it is new, in backoff or
// failed-config, since an operator asked; after the current start or stop
// otherwise.
func (s *supervisor) reload() {
	switch {
	case s.good == nil:
	case s.proc == nil:
		s.backoff.reset()
		s.start()
	case s.stopping:
		// The next start uses the current file.
	case s.readyAt.IsZero():
		s.pendingReload = true
	default:
		s.reloadInPlace()
	}
}

// reloadInPlace sends the current file to the vassal, which applies it with
// the same PID 1, namespaces and mounts, or refuses when it cannot.
func (s *supervisor) reloadInPlace() {
	s.setState(StateReloading)
	s.log.Info("reloading vassal in place", "pid", s.proc.pid)
	if err := s.proc.send(control.Message{Type: control.MsgReload, Content: s.good.Content, Mercy: s.cfg.Mercy}); err != nil {
		s.restart(fmt.Sprintf("the reload could not be sent: %v", err))
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
	s.stopRetry()
	v := s.good
	ns := s.cfg.Namespaces | v.Spec.Unshare
	s.readyAt, s.fatal, s.pendingReload, s.stopping = time.Time{}, "", false, false
	p, err := startProcess(s.exe, s.name, ns)
	if err != nil {
		s.log.Error("vassal spawn failed", "err", err)
		s.died(0, time.Time{}, err.Error(), "spawn failed")
		return
	}
	s.proc, s.msgsClosed = p, false
	s.setStatus(func(st *control.VassalStatus) {
		st.State, st.PID, st.StartedAt, st.ReadyAt, st.NextAttempt = StateStarting, p.pid, p.started, time.Time{}, time.Time{}
		st.Namespaces, st.Mounts = ns.String(), nil
	})
	s.log.Info("vassal spawned", "pid", p.pid, "namespaces", ns.String())
	err = p.send(control.Message{
		Type: control.MsgStart, Name: s.name, Path: v.Path, Content: v.Content, Mercy: s.cfg.Mercy,
		Namespaces: ns,
	})
	if err != nil {
		s.fatal = fmt.Sprintf("the start message could not be sent: %v", err)
		s.log.Error("killing the vassal", "pid", p.pid, "err", s.fatal)
		_ = p.signal(syscall.SIGKILL)
	}
}

// terminate asks the current process to stop (SIGTERM), with SIGKILL after
// mercy.
func (s *supervisor) terminate() {
	if s.proc == nil || s.stopping {
		return
	}
	s.stopping = true
	s.setState(StateStopping)
	if err := s.proc.signal(syscall.SIGTERM); err != nil {
		s.log.Error("SIGTERM failed", "pid", s.proc.pid, "err", err)
	}
	s.kill = time.NewTimer(s.mercy() + killGrace)
}

// restart stops the vassal and starts it again at once, without backoff.
func (s *supervisor) restart(reason string) {
	s.log.Warn("vassal needs a full restart", "pid", s.proc.pid, "reason", reason)
	s.restartReason = reason
	s.terminate()
}

func (s *supervisor) message(m control.Message) {
	switch m.Type {
	case control.MsgReady:
		if s.stopping {
			return
		}
		now := time.Now()
		if !m.Reload {
			s.readyAt = now
			s.setStatus(func(st *control.VassalStatus) { st.State, st.ReadyAt = StateRunning, now })
			s.log.Info("vassal ready", "pid", s.proc.pid, "startup", now.Sub(s.proc.started).Round(time.Millisecond))
		} else {
			s.setState(StateRunning)
			s.log.Info("reload applied", "pid", s.proc.pid)
		}
		if s.pendingReload {
			s.pendingReload = false
			s.reloadInPlace()
		}
	case control.MsgFatal:
		s.fatal = m.Reason
	case control.MsgRefuse:
		if m.Restart {
			s.restart(m.Reason)
			return
		}
		s.log.Error("the vassal rejected its file on reload; it keeps running on its last good file", "err", m.Reason)
		s.setStatus(func(st *control.VassalStatus) { st.State, st.ConfigError = StateRunning, m.Reason })
	case control.MsgMounts:
		s.setStatus(func(st *control.VassalStatus) { st.Mounts = m.Mounts })
	default:
		s.log.Warn("unknown message from the vassal", "type", m.Type)
	}
}

// exited handles the death of the current process.
func (s *supervisor) exited(r exitResult) {
	p := s.proc
	if !s.msgsClosed {
		for _, m := range p.drain(drainTimeout) {
			s.message(m)
		}
	}
	p.release()
	s.proc = nil
	if s.kill != nil {
		s.kill.Stop()
		s.kill = nil
	}
	status := reexec.DescribeStatus(r.ws)
	if r.err != nil {
		status = r.err.Error()
	}
	uptime := time.Since(p.started).Round(time.Millisecond)
	switch {
	case s.final:
		s.log.Info("vassal stopped", "pid", p.pid, "status", status, "uptime", uptime)
		s.setStatus(func(st *control.VassalStatus) { st.PID, st.LastExit = 0, "stopped: "+status })
	case s.restartReason != "":
		s.log.Info("vassal stopped for a full restart", "pid", p.pid, "status", status, "reason", s.restartReason)
		s.restartReason = ""
		s.backoff.reset()
		s.start()
	default:
		s.died(p.pid, s.readyAt, s.fatal, status)
	}
}

// died records a death of pid (0: a failed spawn) and schedules the next
// start.
func (s *supervisor) died(pid int, readyAt time.Time, reason, status string) {
	last := reason
	attrs := []any{"pid", pid, "status", status}
	if reason != "" {
		attrs = append(attrs, "reason", reason)
	} else {
		last = status
	}
	if s.once {
		s.final = true
		s.err = fmt.Errorf("vassal %s exited: %s", s.name, last)
		s.log.Error("vassal died", attrs...)
		s.setStatus(func(st *control.VassalStatus) { st.PID, st.LastExit = 0, last })
		return
	}
	now := time.Now()
	delay := s.backoff.died(readyAt, now)
	s.log.Warn("vassal died", append(attrs, "restart_in", delay)...)
	s.setStatus(func(st *control.VassalStatus) {
		st.PID, st.LastExit, st.ReadyAt = 0, last, time.Time{}
		st.Restarts++
		st.State, st.NextAttempt = StateBackoff, now.Add(delay)
	})
	// Even a zero delay goes through the timer: a spawn that fails at once
	// must not recurse, and a stop that arrives meanwhile cancels it.
	s.retry = time.NewTimer(delay)
}

func (s *supervisor) stopRetry() {
	if s.retry != nil {
		s.retry.Stop()
		s.retry = nil
	}
}
