package vassal

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/emperor-dev/emperor/nosignal"
	"github.com/emperor-dev/emperor/procstat"
	"github.com/emperor-dev/emperor/reexec"
	"github.com/emperor-dev/emperor/restart"
	"github.com/emperor-dev/emperor/vassalfile"
	"golang.org/x/sys/unix"
)

// Respawns follow the emperor's restart policy (package restart, sent in
// the start message). A daemon counts as ready once it has run for
// restart.DaemonReadyAfter; a smart daemon once its pidfile names a live
// process.
const (
	smartPollInterval = time.Second
	smartPidfileWait  = 10 * time.Second
)

// proc runs shell commands for the vassal: as its user (PID 1 has already
// dropped privileges), in its directory, with its environment and its
// shared sockets, each in its own process group.
type proc struct {
	reaper  *Reaper
	log     *slog.Logger
	env     []string
	dir     string
	sockets []*os.File
}

// startShell starts cmd as /bin/sh -c would (see commandArgv), with the
// vassal's shared sockets from fd 3 on (LISTEN_FDS says how many).
func (p *proc) startShell(cmd string, log *slog.Logger) (int, <-chan unix.WaitStatus, error) {
	env := p.env
	if len(p.sockets) > 0 {
		env = append(append([]string(nil), env...), "LISTEN_FDS="+strconv.Itoa(len(p.sockets)))
	}
	path, argv := commandArgv(cmd, env, p.dir)
	return p.start(path, argv, env, p.sockets, log)
}

// start starts path with argv and env in proc's directory: stdin
// /dev/null, stdout and stderr a pipe logged line by line (logLines),
// extra from fd 3 on; in its own process group, so that a stop reaches
// the processes it forks.
func (p *proc) start(path string, argv, env []string, extra []*os.File, log *slog.Logger) (int, <-chan unix.WaitStatus, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return 0, nil, err
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		r.Close()
		w.Close()
		return 0, nil, err
	}
	files := []uintptr{devnull.Fd(), w.Fd(), w.Fd()}
	for _, f := range extra {
		files = append(files, f.Fd())
	}
	attr := &syscall.ProcAttr{
		Dir:   p.dir,
		Env:   env,
		Files: files,
		// Pdeathsig: a vassal without a PID namespace (emperor-use-clone
		// = none) has no kernel to kill its children when PID 1 dies by
		// SIGKILL (the emperor's own death). The signal follows the thread
		// that forked, and nothing in the vassal locks and retires a
		// thread, so it fires only when PID 1 dies. It reaches the direct
		// child only; a PID namespace (the fs,pid default) takes all.
		Sys: &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL},
	}
	pid, ch, err := p.reaper.Start(path, argv, attr)
	w.Close()
	devnull.Close()
	if err != nil {
		r.Close()
		return 0, nil, err
	}
	go logLines(r, log.With("pid", pid))
	return pid, ch, nil
}

// logRecordMax bounds one log record of a daemon's output.
const logRecordMax = 64 << 10

// logLines logs a daemon's output line by line (marked as output: the
// vassal's log file gets the raw lines, logfile.go) until the daemon and its
// children have all closed the pipe. A line longer than logRecordMax is
// logged in pieces of that size, each record saying which part it is. The
// pipe is never closed early: a daemon whose reader went away dies of
// SIGPIPE at its next write.
func logLines(r *os.File, log *slog.Logger) {
	defer r.Close()
	br := bufio.NewReaderSize(r, logRecordMax)
	// A full part is held back until the next read says whether the line
	// ends right after it, so that its record can say it is the last.
	var pending []byte
	held, part := false, 0
	emit := func(text string, last bool) {
		part++
		log.InfoContext(outputCtx, text, "line_part", part, "line_continues", !last)
	}
	for {
		chunk, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			if held {
				emit(string(pending), false)
			}
			pending, held = append(pending[:0], chunk...), true
			continue
		}
		text := strings.TrimSuffix(strings.TrimSuffix(string(chunk), "\n"), "\r")
		switch {
		case held && text == "":
			emit(strings.TrimSuffix(string(pending), "\r"), true)
		case held:
			emit(string(pending), false)
			emit(text, true)
		case len(chunk) > 0:
			log.InfoContext(outputCtx, text)
		}
		held, part = false, 0
		if err != nil {
			// EOF: every writer is gone. Nothing can be read past any
			// other error (EIO) either.
			return
		}
	}
}

// daemon supervises one attach-daemon or smart-attach-daemon line.
type daemon struct {
	spec   vassalfile.Daemon
	p      *proc
	policy restart.Policy
	log    *slog.Logger
	stop   chan time.Duration // mercy
	done   chan struct{}
	wake   chan struct{} // a child was reaped: smart daemons re-check at once
	state  daemonState   // for the stats server (stats.go)
}

func newDaemon(spec vassalfile.Daemon, p *proc, policy restart.Policy) *daemon {
	kind := "attach-daemon"
	if spec.Smart {
		kind = "smart-attach-daemon"
	}
	return &daemon{
		spec: spec, p: p, policy: policy,
		log:  p.log.With(kind, shortCmd(spec.Command)),
		stop: make(chan time.Duration, 1),
		done: make(chan struct{}),
		wake: make(chan struct{}, 1),
	}
}

func shortCmd(c string) string {
	if len(c) > 60 {
		return c[:57] + "..."
	}
	return c
}

// Stop ends the daemon: SIGTERM to its process group, SIGKILL after mercy.
// It returns when the daemon is gone.
func (d *daemon) Stop(mercy time.Duration) {
	select {
	case d.stop <- mercy:
	default:
	}
	<-d.done
}

func (d *daemon) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *daemon) run() {
	defer close(d.done)
	if d.spec.Smart {
		d.runSmart()
		return
	}
	var tr restart.Tracker
	for {
		started := time.Now()
		tr.Started(started)
		pid, exit, err := d.p.startShell(d.spec.Command, d.log)
		if err != nil {
			d.log.Error("daemon did not start", "err", err)
		} else {
			d.log.Info("daemon started", "pid", pid)
			d.state.running(pid, started)
			mercy, stopped := d.wait(pid, exit, started, &tr)
			if stopped {
				terminate(pid, exit, mercy, d.log)
			}
			d.state.running(0, started)
			if stopped {
				return
			}
		}
		if !d.respawnWait(&tr) {
			return
		}
	}
}

// wait waits for the daemon pid to exit, marking it ready once it has run
// for restart.DaemonReadyAfter, or for a stop (then it returns the mercy and
// true).
func (d *daemon) wait(pid int, exit <-chan unix.WaitStatus, started time.Time, tr *restart.Tracker) (time.Duration, bool) {
	ready := time.NewTimer(restart.DaemonReadyAfter)
	defer ready.Stop()
	for {
		select {
		case <-ready.C:
			tr.Ready(time.Now())
			d.log.Info("daemon ready", "pid", pid, "ran", restart.DaemonReadyAfter)
		case ws := <-exit:
			killProcessGroup(pid, syscall.SIGKILL) // anything it left in its group
			d.log.Warn("daemon exited", "pid", pid, "status", reexec.DescribeStatus(ws), "ran", time.Since(started).Round(time.Millisecond))
			return 0, false
		case mercy := <-d.stop:
			return mercy, true
		}
	}
}

// respawnWait records a failure and waits as the restart policy says. It
// returns false when a stop came meanwhile.
func (d *daemon) respawnWait(tr *restart.Tracker) bool {
	now := time.Now()
	delay := tr.Failed(d.policy, now)
	if delay <= 0 {
		select {
		case <-d.stop:
			return false
		default:
			return true
		}
	}
	d.log.Info("respawning daemon", "in", delay, "failures", fmt.Sprintf("%.2f", tr.Failures(d.policy, now)))
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-d.stop:
		return false
	}
}

// terminate stops a daemon we started and its process group (see
// stopAndWait), then kills whatever it left in its group.
func terminate(pid int, exit <-chan unix.WaitStatus, mercy time.Duration, log *slog.Logger) {
	var ws unix.WaitStatus
	killed, ended := stopAndWait(groupSignal(pid), reaped(exit, &ws), mercy)
	killProcessGroup(pid, syscall.SIGKILL)
	logStopped(log, pid, mercy, killed, ended, func() string { return reexec.DescribeStatus(ws) })
}

// logStopped says how a stop went; status is read only when the process ended.
func logStopped(log *slog.Logger, pid int, mercy time.Duration, killed, ended bool, status func() string) {
	switch {
	case !ended:
		log.Error("daemon still there after SIGKILL (uninterruptible sleep?)", "pid", pid, "waited", killWait)
	case killed:
		log.Warn("daemon ignored SIGTERM, killed", "pid", pid, "mercy", mercy, "status", status())
	default:
		log.Info("daemon stopped", "pid", pid, "status", status())
	}
}

// runSmart keeps a pidfile-governed daemon alive: it starts the command only
// when the pid in the pidfile is not running, so the daemon survives
// reloads of the vassal.
func (d *daemon) runSmart() {
	var tr restart.Tracker
	for {
		if pid, ok := pidfileAlive(d.spec.Pidfile); ok {
			now := time.Now()
			tr.Started(now)
			tr.Ready(now)
			d.state.running(pid, now)
			mercy, stopped := d.watchSmart(pid)
			if stopped {
				terminateForeign(pid, mercy, d.log)
			}
			d.state.running(0, now)
			if stopped {
				return
			}
			d.log.Warn("smart daemon is gone", "pid", pid, "pidfile", d.spec.Pidfile)
		} else {
			started := time.Now()
			tr.Started(started)
			spid, exit, err := d.p.startShell(d.spec.Command, d.log)
			if err != nil {
				d.log.Error("daemon did not start", "err", err)
			} else {
				select {
				case <-exit:
				case mercy := <-d.stop:
					terminate(spid, exit, mercy, d.log)
					return
				}
				if d.awaitPidfile(started) {
					continue
				}
				d.log.Warn("smart daemon wrote no live pid", "pidfile", d.spec.Pidfile)
			}
		}
		if !d.respawnWait(&tr) {
			return
		}
	}
}

func (d *daemon) awaitPidfile(since time.Time) bool {
	deadline := time.Now().Add(smartPidfileWait)
	for time.Now().Before(deadline) {
		if pid, ok := pidfileAlive(d.spec.Pidfile); ok {
			d.log.Info("smart daemon running", "pid", pid, "pidfile", d.spec.Pidfile)
			return true
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-d.wake:
		}
	}
	return false
}

// watchSmart waits until pid dies (checked on every reaped child and every
// second) or a stop arrives.
func (d *daemon) watchSmart(pid int) (time.Duration, bool) {
	t := time.NewTicker(smartPollInterval)
	defer t.Stop()
	for {
		select {
		case mercy := <-d.stop:
			return mercy, true
		case <-d.wake:
		case <-t.C:
		}
		if !pidAlive(pid) {
			return 0, false
		}
	}
}

// terminateForeign stops a process that is not our direct child (a smart
// daemon reparented to PID 1): its exit is reaped by the reaper, so its
// end is seen by polling (see vanished).
func terminateForeign(pid int, mercy time.Duration, log *slog.Logger) {
	quit := make(chan struct{})
	defer close(quit)
	killed, ended := stopAndWait(func(sig syscall.Signal) { _ = syscall.Kill(pid, sig) }, vanished(pid, quit), mercy)
	logStopped(log, pid, mercy, killed, ended, func() string { return "gone" })
}

func pidfileAlive(path string) (int, bool) {
	// The tenant's pidfile may be in a FUSE mount that hangs: read it where
	// no signal for PID 1 can be caught (package nosignal).
	var b []byte
	var err error
	nosignal.Do(func() { b, err = os.ReadFile(path) })
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, pidAlive(pid)
}

// pidAlive says whether pid exists and is not a zombie (an exited process
// its parent has not reaped yet is dead for a smart daemon's purposes).
func pidAlive(pid int) bool {
	s, err := procstat.Read(pid)
	return err == nil && !s.Zombie()
}

// daemonSet is the running daemons of a vassal.
type daemonSet struct {
	// policy is the emperor's restart policy; set before the first start.
	policy restart.Policy
	mu     sync.Mutex
	list   []*daemon
}

func (s *daemonSet) start(specs []vassalfile.Daemon, p *proc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sp := range specs {
		d := newDaemon(sp, p, s.policy)
		s.list = append(s.list, d)
		go d.run()
	}
}

// stopWhere stops, in parallel, the daemons for which pick is true.
func (s *daemonSet) stopWhere(mercy time.Duration, pick func(*daemon) bool) {
	s.mu.Lock()
	var keep, stop []*daemon
	for _, d := range s.list {
		if pick(d) {
			stop = append(stop, d)
		} else {
			keep = append(keep, d)
		}
	}
	s.list = keep
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, d := range stop {
		wg.Add(1)
		go func() { defer wg.Done(); d.Stop(mercy) }()
	}
	wg.Wait()
}

func (s *daemonSet) wakeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.list {
		d.Wake()
	}
}

func (s *daemonSet) has(sp vassalfile.Daemon) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.list {
		if d.spec.Smart == sp.Smart && d.spec.Command == sp.Command && d.spec.Pidfile == sp.Pidfile {
			return true
		}
	}
	return false
}

// daemons is the daemons component: attach-daemons and
// smart-attach-daemons. A reload restarts the attached daemons and keeps a
// smart daemon that is still configured, which is the point of governing it
// by pidfile.
type daemons struct {
	v     *vassal
	socks *sockets
	set   daemonSet
	cur   *config
}

func (d *daemons) Start(c *config) error {
	d.set.start(c.spec.Daemons, d.v.newProc(c, d.socks.shared))
	d.cur = c
	return nil
}

// Release stops the attached daemons, and the smart daemons that new no
// longer has, before the as-user-atexit hooks run.
func (d *daemons) Release(old, new *config) {
	d.set.stopWhere(d.v.mercyFor(old.spec), func(dm *daemon) bool {
		return !dm.spec.Smart || !hasSmart(new.spec.Daemons, dm.spec)
	})
}

// Apply starts new's attached daemons and its smart daemons that are not
// running yet.
func (d *daemons) Apply(old, new *config) error {
	var fresh []vassalfile.Daemon
	for _, sp := range new.spec.Daemons {
		if sp.Smart && d.set.has(sp) {
			continue
		}
		fresh = append(fresh, sp)
	}
	d.set.start(fresh, d.v.newProc(new, d.socks.shared))
	d.cur = new
	return nil
}

func (d *daemons) Stop() {
	if d.cur != nil {
		d.set.stopWhere(d.v.mercyFor(d.cur.spec), func(*daemon) bool { return true })
	}
}

func (d *daemons) childExited() { d.set.wakeAll() }

func hasSmart(specs []vassalfile.Daemon, sp vassalfile.Daemon) bool {
	for _, s := range specs {
		if s.Smart && s.Command == sp.Command && s.Pidfile == sp.Pidfile {
			return true
		}
	}
	return false
}

// daemonState is what the stats server shows of a daemon: its pid while it
// runs, when it last started, how many times it started.
type daemonState struct {
	mu     sync.Mutex
	pid    int
	since  time.Time
	starts int
}

// running records pid as the daemon's process since when (a new start), or
// that it ended (pid 0).
func (s *daemonState) running(pid int, since time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pid != 0 && s.pid == 0 {
		s.starts++
	}
	s.pid, s.since = pid, since
}

func (s *daemonState) get() (pid int, since time.Time, starts int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pid, s.since, s.starts
}
