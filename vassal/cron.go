package vassal

import (
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/emperor-dev/emperor/cron"
	"github.com/emperor-dev/emperor/reexec"
	"github.com/emperor-dev/emperor/vassalfile"
	"golang.org/x/sys/unix"
)

// clock is the wall clock of the cron scheduler; the tests use a fake one
// and never sleep.
type clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type wallClock struct{}

func (wallClock) Now() time.Time                         { return time.Now() }
func (wallClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// cronStarter starts a job's command, logging its output with log; in PID 1
// it is proc.startShell (the job runs as the tenant, in the vassal's jail,
// directory and environment, in a process group of its own, reaped by the
// reaper).
type cronStarter func(cmd string, log *slog.Logger) (int, <-chan unix.WaitStatus, error)

// crontab is the cron component: the jobs of cron, unique-cron and cron2.
// It checks the jobs at second 0 of every wall-clock minute, and when it
// starts or a reload changed its jobs it checks the current minute (uWSGI
// runs the jobs due in the current minute when its master starts). A job
// runs at most once per minute.
//
// A reload keeps every job whose line did not change (same option, fields
// and command, wherever the line moved to), with its running runs and the
// minute it last ran, so a touch neither runs a job twice in a minute nor
// starts a unique job that is still running. A run of a job that the reload
// removed or changed is not killed: it runs to its end (its harakiri still
// applies) and the job is not started again. New runs get the new file's
// environment, directory and harakiri; a run keeps the harakiri it started
// with. A stop ends every run: SIGTERM to its process group, SIGKILL after
// the reload-mercy.
type crontab struct {
	v     *vassal // nil in unit tests
	clock clock
	loc   *time.Location // the zone the fields are read in: local time
	log   *slog.Logger
	// signal signals a run's process group (killProcessGroup).
	signal func(pgid int, sig syscall.Signal)

	mu       sync.Mutex
	jobs     []*cronJob
	runs     map[*cronRun]struct{} // every run still going, of any job
	start    cronStarter
	harakiri time.Duration // cron-harakiri; 0: no bound
	mercy    time.Duration
	stopped  bool
	runners  sync.WaitGroup

	kick chan struct{} // the jobs changed: check the current minute
	quit chan struct{}
	done chan struct{} // the loop has returned
}

// cronJob is one job and its state across runs and reloads.
type cronJob struct {
	spec    cron.Job
	log     *slog.Logger
	last    time.Time // the minute of its last start; zero: never
	lastAt  time.Time // its last start
	running int
	started int    // runs started, for stats
	lastRan string // how the last run that ended went, for stats
}

// cronRun is one run of a job.
type cronRun struct {
	job     *cronJob
	pid     int
	started time.Time
	stop    chan time.Duration // mercy
}

func newCrontab(v *vassal) *crontab {
	// The fields are local time, as uWSGI's localtime(). Go loads the
	// zone (TZ, /etc/localtime) at its first use: load it now, in the
	// host's view, and not after a chroot or pivot_root, where the jail's
	// /etc/localtime (or none, UTC) would be read.
	_ = time.Local.String()
	return &crontab{v: v, clock: wallClock{}, loc: time.Local, log: v.log,
		signal: killProcessGroup}
}

func (t *crontab) jobLog(j cron.Job) *slog.Logger {
	ref := j.Ref
	if ref == "" {
		ref = strconv.Itoa(j.Line)
	}
	return t.log.With(j.Option, shortCmd(j.Command), "line", ref)
}

// set replaces the jobs with specs, keeping the state of those that did not
// change, and sets how new runs start.
func (t *crontab) set(specs []cron.Job, start cronStarter, harakiri, mercy time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := map[string][]*cronJob{}
	for _, j := range t.jobs {
		old[j.spec.Key()] = append(old[j.spec.Key()], j)
	}
	jobs := make([]*cronJob, 0, len(specs))
	for _, sp := range specs {
		k := sp.Key()
		if same := old[k]; len(same) > 0 {
			j := same[0]
			old[k] = same[1:]
			if j.spec.Line != sp.Line {
				j.spec.Line, j.spec.Ref = sp.Line, sp.Ref
				j.log = t.jobLog(sp)
			}
			jobs = append(jobs, j)
			continue
		}
		jobs = append(jobs, &cronJob{spec: sp, log: t.jobLog(sp)})
	}
	for _, gone := range old {
		for _, j := range gone {
			if j.running > 0 {
				j.log.Info("cron job removed by the reload: its running runs go on to their end, it is not started again", "running", j.running)
			}
		}
	}
	t.jobs, t.start, t.harakiri, t.mercy = jobs, start, harakiri, mercy
}

// begin checks the current minute and starts the minute loop.
func (t *crontab) begin() {
	t.runs = map[*cronRun]struct{}{}
	t.kick = make(chan struct{}, 1)
	t.quit = make(chan struct{})
	t.done = make(chan struct{})
	t.tick()
	go t.loop()
}

// loop wakes at second 0 of every minute while there are jobs, and when a
// reload changed them.
func (t *crontab) loop() {
	defer close(t.done)
	var minute <-chan time.Time // armed for the next minute
	for {
		t.mu.Lock()
		has := len(t.jobs) > 0
		t.mu.Unlock()
		if has && minute == nil {
			// A timer that fires early (the wall clock was stepped)
			// finds the minute done and waits again; one that fires
			// late checks the minute it fires in.
			now := t.clock.Now()
			minute = t.clock.After(now.Truncate(time.Minute).Add(time.Minute).Sub(now))
		}
		select {
		case <-minute:
			minute = nil
		case <-t.kick:
		case <-t.quit:
			return
		}
		t.tick()
	}
}

// tick starts the jobs due in the current minute that have not run in it.
func (t *crontab) tick() {
	minute := t.clock.Now().Truncate(time.Minute)
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, j := range t.jobs {
		t.due(j, minute, true)
	}
}

// due starts j if it is due in minute and has not started in it. A unique
// job that still runs is skipped (logged when report is set); it starts as
// soon as that run ends, if the minute still matches (as in uWSGI, whose
// master checks every second). Called with t.mu held.
func (t *crontab) due(j *cronJob, minute time.Time, report bool) {
	if t.stopped || j.last.Equal(minute) || !j.spec.Schedule.Matches(minute.In(t.loc)) {
		return
	}
	if j.spec.Unique && j.running > 0 {
		if report {
			j.log.Info("unique cron job still running: not starting another; it starts when that run ends if this minute still matches")
		}
		return
	}
	j.last, j.lastAt = minute, t.clock.Now()
	j.started++
	pid, exit, err := t.start(j.spec.Command, j.log)
	if err != nil {
		j.lastRan = "did not start: " + err.Error()
		j.log.Error("cron job did not start", "err", err)
		return
	}
	r := &cronRun{job: j, pid: pid, started: t.clock.Now(), stop: make(chan time.Duration, 1)}
	harakiri := t.harakiri
	switch {
	case j.spec.NoHarakiri:
		harakiri = 0
	case j.spec.Harakiri > 0:
		harakiri = j.spec.Harakiri
	}
	j.running++
	t.runs[r] = struct{}{}
	t.runners.Add(1)
	j.log.Info("cron job started", "pid", pid, "harakiri", harakiri)
	go t.watch(r, exit, harakiri)
}

// watch waits for a run to end, kills it when it passes its harakiri, or
// stops it for a stop of the vassal.
func (t *crontab) watch(r *cronRun, exit <-chan unix.WaitStatus, harakiri time.Duration) {
	defer t.runners.Done()
	j := r.job
	var ws unix.WaitStatus
	gone := reaped(exit, &ws)
	var deadline <-chan time.Time
	if harakiri > 0 {
		deadline = t.clock.After(harakiri)
	}
	signal := func(sig syscall.Signal) { t.signal(r.pid, sig) }
	status := func() string { return reexec.DescribeStatus(ws) }
	var how string
	select {
	case <-gone:
		how = status()
		ran := t.clock.Now().Sub(r.started).Round(time.Millisecond)
		if ws.Exited() && ws.ExitStatus() == 0 {
			j.log.Info("cron job exited", "pid", r.pid, "status", how, "ran", ran)
		} else {
			j.log.Warn("cron job failed", "pid", r.pid, "status", how, "ran", ran)
		}
	case <-deadline:
		// uWSGI's "HARAKIRI ON CRON": SIGKILL to the job's process group.
		j.log.Error("cron job ran past its harakiri: killing its process group", "pid", r.pid,
			"ran", t.clock.Now().Sub(r.started).Round(time.Millisecond), "harakiri", harakiri)
		_, ended := stopAndWait(signal, gone, 0)
		how = "killed at its harakiri"
		if !ended {
			how += ", still there after SIGKILL"
			j.log.Error("cron job still there after SIGKILL (uninterruptible sleep?)", "pid", r.pid, "waited", killWait)
		} else {
			j.log.Warn("cron job killed", "pid", r.pid, "status", status())
		}
	case mercy := <-r.stop:
		killed, ended := stopAndWait(signal, gone, mercy)
		how = "stopped with the vassal"
		switch {
		case !ended:
			j.log.Error("cron job still there after SIGKILL (uninterruptible sleep?)", "pid", r.pid, "waited", killWait)
		case killed:
			j.log.Warn("cron job ignored SIGTERM, killed", "pid", r.pid, "mercy", mercy, "status", status())
		default:
			j.log.Info("cron job stopped", "pid", r.pid, "status", status())
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.runs, r)
	j.running--
	j.lastRan = how
	if j.spec.Unique && j.running == 0 && t.isJob(j) {
		t.due(j, t.clock.Now().Truncate(time.Minute), false)
	}
}

// isJob says whether j is still one of the configured jobs (a reload may
// have removed it). Called with t.mu held.
func (t *crontab) isJob(j *cronJob) bool {
	for _, c := range t.jobs {
		if c == j {
			return true
		}
	}
	return false
}

// end stops the loop, then every run, in parallel, and waits for them.
func (t *crontab) end() {
	close(t.quit)
	<-t.done
	t.mu.Lock()
	t.stopped = true
	for r := range t.runs {
		r.stop <- t.mercy
	}
	t.mu.Unlock()
	t.runners.Wait()
}

// Start, Apply and Stop make the crontab a component.

func (t *crontab) Start(c *config) error {
	t.set(c.spec.Crons, t.v.newProc(c, nil).startShell, c.spec.CronHarakiri, t.v.mercyFor(c.spec))
	t.begin()
	return nil
}

// Apply moves to new's jobs (see crontab) and checks the current minute
// for the jobs it added. It cannot fail.
func (t *crontab) Apply(old, new *config) error {
	t.set(new.spec.Crons, t.v.newProc(new, nil).startShell, new.spec.CronHarakiri, t.v.mercyFor(new.spec))
	select {
	case t.kick <- struct{}{}:
	default:
	}
	return nil
}

func (t *crontab) Stop() { t.end() }

// cronStats is one job in the stats document. Its first fields are those
// of uWSGI's "crons" entries (pid -1 and started_at 0 when no run goes on;
// legion always ""); the others are ours.
type cronStats struct {
	Minute    int    `json:"minute"`
	Hour      int    `json:"hour"`
	Day       int    `json:"day"`
	Month     int    `json:"month"`
	Week      int    `json:"week"`
	Command   string `json:"command"`
	Unique    int    `json:"unique"`
	Legion    string `json:"legion"`
	PID       int    `json:"pid"`
	StartedAt int64  `json:"started_at"`

	Option     string  `json:"option"`
	Line       int     `json:"line"`
	File       string  `json:"file,omitempty"` // the included file of the line; none: the vassal file
	Harakiri   float64 `json:"harakiri"`       // seconds; 0: no bound
	Running    []int   `json:"running"`
	Runs       int     `json:"runs"`
	LastStart  int64   `json:"last_start"`
	LastResult string  `json:"last_result"`
}

// stats describes the configured jobs and their runs.
func (t *crontab) stats(spec *vassalfile.Spec) []cronStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]cronStats, 0, len(t.jobs))
	for _, j := range t.jobs {
		s := j.spec.Schedule
		c := cronStats{Minute: s.Minute, Hour: s.Hour, Day: s.Day, Month: s.Month, Week: s.Week,
			Command: j.spec.Command, PID: -1, Option: j.spec.Option,
			Running: []int{}, Runs: j.started, LastResult: j.lastRan}
		c.File, c.Line = spec.Position(j.spec.Line)
		if j.spec.Unique {
			c.Unique = 1
		}
		switch {
		case j.spec.NoHarakiri:
		case j.spec.Harakiri > 0:
			c.Harakiri = j.spec.Harakiri.Seconds()
		default:
			c.Harakiri = t.harakiri.Seconds()
		}
		if !j.lastAt.IsZero() {
			c.LastStart = j.lastAt.Unix()
		}
		var latest *cronRun
		for r := range t.runs {
			if r.job == j {
				c.Running = append(c.Running, r.pid)
				if latest == nil || r.started.After(latest.started) {
					latest = r
				}
			}
		}
		sort.Ints(c.Running)
		if latest != nil {
			c.PID, c.StartedAt = latest.pid, latest.started.Unix()
		}
		out = append(out, c)
	}
	return out
}
