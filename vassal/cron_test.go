package vassal

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emperor-dev/emperor/control"
	"github.com/emperor-dev/emperor/cron"
	"golang.org/x/sys/unix"
)

// fakeClock is a clock that moves only when the test says; its timers fire
// in Advance. Nothing in these tests sleeps.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	timers  []fakeTimer
	changed chan struct{} // closed and replaced when a timer is added
}

type fakeTimer struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock(now string) *fakeClock {
	return &fakeClock{now: at(now), changed: make(chan struct{})}
}

func at(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04:05", s)
	if err != nil {
		panic(err)
	}
	return t
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.timers = append(c.timers, fakeTimer{at: c.now.Add(d), ch: ch})
	close(c.changed)
	c.changed = make(chan struct{})
	return ch
}

// Advance moves the clock by d and fires the timers due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	keep := c.timers[:0]
	for _, tm := range c.timers {
		if tm.at.After(c.now) {
			keep = append(keep, tm)
		} else {
			tm.ch <- c.now
		}
	}
	c.timers = keep
}

// waitTimer waits until a timer for when is pending: the scheduler has
// finished what it did before arming it.
func (c *fakeClock) waitTimer(t *testing.T, when string) {
	t.Helper()
	w := at(when)
	deadline := time.After(hang)
	for {
		c.mu.Lock()
		for _, tm := range c.timers {
			if tm.at.Equal(w) {
				c.mu.Unlock()
				return
			}
		}
		changed := c.changed
		c.mu.Unlock()
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("no timer for %s (now %s)", when, c.Now().Format(time.TimeOnly))
		}
	}
}

// fakeJobs starts fake processes: each start is reported on started, and
// a process ends when the test ends it or when it is signalled.
type fakeJobs struct {
	mu      sync.Mutex
	next    int
	exits   map[int]chan unix.WaitStatus
	signals []string
	started chan fakeStart
	// dieOn is the signal a fake process dies of (0: it ignores signals).
	dieOn map[syscall.Signal]bool
}

type fakeStart struct {
	cmd string
	pid int
	at  time.Time
}

func newFakeJobs() *fakeJobs {
	return &fakeJobs{next: 100, exits: map[int]chan unix.WaitStatus{}, started: make(chan fakeStart, 100),
		dieOn: map[syscall.Signal]bool{syscall.SIGTERM: true, syscall.SIGKILL: true}}
}

func (f *fakeJobs) starter(c clock) cronStarter {
	return func(cmd string, _ *slog.Logger) (int, <-chan unix.WaitStatus, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.next++
		ch := make(chan unix.WaitStatus, 1)
		f.exits[f.next] = ch
		f.started <- fakeStart{cmd: cmd, pid: f.next, at: c.Now()}
		return f.next, ch, nil
	}
}

// exit ends pid with status code.
func (f *fakeJobs) exit(pid, code int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ch, ok := f.exits[pid]; ok {
		delete(f.exits, pid)
		ch <- unix.WaitStatus(code << 8)
	}
}

func (f *fakeJobs) signal(pgid int, sig syscall.Signal) {
	f.mu.Lock()
	f.signals = append(f.signals, fmt.Sprintf("%d:%s", pgid, unix.SignalName(sig)))
	ch, ok := f.exits[pgid]
	if ok && f.dieOn[sig] {
		delete(f.exits, pgid)
		ch <- unix.WaitStatus(sig)
	}
	f.mu.Unlock()
}

func (f *fakeJobs) signalled() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.signals, " ")
}

// next waits for the next start.
func (f *fakeJobs) next1(t *testing.T) fakeStart {
	t.Helper()
	select {
	case s := <-f.started:
		return s
	case <-time.After(hang):
		t.Fatal("no job started")
	}
	return fakeStart{}
}

// none says that nothing started (every start happens before the
// scheduler arms its next timer, which the caller has waited for).
func (f *fakeJobs) none(t *testing.T) {
	t.Helper()
	select {
	case s := <-f.started:
		t.Fatalf("unexpected start of %q at %s", s.cmd, s.at.Format(time.TimeOnly))
	default:
	}
}

type cronTest struct {
	t    *testing.T
	clk  *fakeClock
	jobs *fakeJobs
	tab  *crontab
	log  *cronLog
}

func newCronTest(t *testing.T, now string, harakiri time.Duration, lines ...string) *cronTest {
	ct := &cronTest{t: t, clk: newFakeClock(now), jobs: newFakeJobs(), log: newCronLog()}
	ct.tab = &crontab{clock: ct.clk, loc: time.UTC, signal: ct.jobs.signal,
		log: slog.New(slog.NewTextHandler(ct.log, nil)).With("vassal", "test")}
	ct.tab.set(ct.specs(lines...), ct.jobs.starter(ct.clk), harakiri, 5*time.Second)
	ct.tab.begin()
	t.Cleanup(func() {
		select {
		case <-ct.tab.done:
		default:
			ct.tab.end()
		}
	})
	return ct
}

// specs parses option lines ("cron = ...") as the vassal file would.
func (ct *cronTest) specs(lines ...string) []cron.Job {
	var out []cron.Job
	for i, l := range lines {
		k, v, _ := strings.Cut(l, " = ")
		var j cron.Job
		var err error
		if k == "cron2" {
			j, err = cron.ParseCron2(v)
		} else {
			j, err = cron.ParseCron(k, v)
		}
		if err != nil {
			ct.t.Fatal(err)
		}
		j.Line = i + 2
		out = append(out, j)
	}
	return out
}

// minute moves the clock to the next minute and waits for the scheduler
// to be done with it (it armed the timer of the minute after).
func (ct *cronTest) minute() {
	ct.t.Helper()
	now := ct.clk.Now()
	next := now.Truncate(time.Minute).Add(time.Minute)
	ct.clk.waitTimer(ct.t, next.Format(time.DateTime))
	ct.clk.Advance(next.Sub(now))
	ct.clk.waitTimer(ct.t, next.Add(time.Minute).Format(time.DateTime))
}

// TestCronEveryN: minute -5 runs at minutes 0, 5, 10 (the minute it
// starts in counts, as in uWSGI), at second 0, and not in between.
func TestCronEveryN(t *testing.T) {
	ct := newCronTest(t, "2026-12-02 12:00:30", 0, "cron = -5 -1 -1 -1 -1 poll")
	s := ct.jobs.next1(t)
	if s.cmd != "poll" || !s.at.Equal(at("2026-12-02 12:00:30")) {
		t.Fatalf("first start: %+v", s)
	}
	ct.jobs.exit(s.pid, 0)
	var starts []string
	for i := 0; i < 10; i++ {
		ct.minute()
		select {
		case s := <-ct.jobs.started:
			starts = append(starts, s.at.Format(time.TimeOnly))
			ct.jobs.exit(s.pid, 0)
		default:
		}
	}
	if got := strings.Join(starts, " "); got != "12:05:00 12:10:00" {
		t.Fatalf("starts after the first: %s", got)
	}
}

// TestCronOncePerMinute: a timer that fires twice in one minute (a wall
// clock stepped back) does not run a job twice in that minute.
func TestCronOncePerMinute(t *testing.T) {
	ct := newCronTest(t, "2026-12-02 12:00:00", 0, "cron = -1 -1 -1 -1 -1 tick")
	ct.jobs.next1(t)
	ct.tab.tick()
	ct.jobs.none(t)
	ct.minute()
	ct.jobs.next1(t)
}

// TestUniqueCronNeverOverlaps: a unique job still running at its next
// minute is skipped and logged; it starts when the run ends, if that
// minute still matches. A plain cron job with the same schedule overlaps.
func TestUniqueCronNeverOverlaps(t *testing.T) {
	ct := newCronTest(t, "2026-12-02 12:00:10", 0,
		"unique-cron = -1 -1 -1 -1 -1 slow-unique",
		"cron = -1 -1 -1 -1 -1 slow-plain")
	first := map[string]fakeStart{}
	for i := 0; i < 2; i++ {
		s := ct.jobs.next1(t)
		first[s.cmd] = s
	}
	ct.minute() // 12:01: the plain job starts again, the unique one not
	s := ct.jobs.next1(t)
	if s.cmd != "slow-plain" {
		t.Fatalf("started %q at 12:01 while the unique run goes on", s.cmd)
	}
	ct.jobs.none(t)
	if !strings.Contains(ct.log.String(), "unique cron job still running") {
		t.Fatalf("the skip is not logged:\n%s", ct.log)
	}
	// The run ends at 12:01:20: the unique job starts at once, in the
	// minute it missed.
	ct.clk.Advance(20 * time.Second)
	ct.jobs.exit(first["slow-unique"].pid, 0)
	u := ct.jobs.next1(t)
	if u.cmd != "slow-unique" || !u.at.Equal(at("2026-12-02 12:01:20")) {
		t.Fatalf("unique job after its run ended: %+v", u)
	}
	// It ends in the same minute: it does not start again in it.
	ct.jobs.exit(u.pid, 0)
	ct.clk.waitTimer(t, "2026-12-02 12:02:00")
	ct.jobs.none(t)
	ct.minute()
	got := map[string]bool{}
	for i := 0; i < 2; i++ {
		got[ct.jobs.next1(t).cmd] = true
	}
	if !got["slow-unique"] || !got["slow-plain"] {
		t.Fatalf("12:02 started %v", got)
	}
}

// TestCronHarakiri: a run past its harakiri is reported with its line and
// runtime and its process group is SIGKILLed; cron2's harakiri= overrides
// cron-harakiri, harakiri=0 has no bound.
func TestCronHarakiri(t *testing.T) {
	ct := newCronTest(t, "2026-12-02 00:00:00", time.Hour,
		"cron2 = hour=0,minute=0,harakiri=90 hangs",
		"cron = 0 0 -1 -1 -1 hangs-too",
		"cron2 = hour=0,minute=0,harakiri=0 unbounded")
	pids := map[string]int{}
	for i := 0; i < 3; i++ {
		s := ct.jobs.next1(t)
		pids[s.cmd] = s.pid
	}
	ct.clk.waitTimer(t, "2026-12-02 00:01:30")
	ct.clk.waitTimer(t, "2026-12-02 01:00:00")
	ct.clk.Advance(90 * time.Second)
	waitCronLog(t, ct.log, "killed")
	if got := ct.jobs.signalled(); got != fmt.Sprintf("%d:SIGKILL", pids["hangs"]) {
		t.Fatalf("signals: %s", got)
	}
	logs := ct.log.String()
	if !strings.Contains(logs, `msg="cron job ran past its harakiri: killing its process group" vassal=test cron2=hangs line=2 pid=`+fmt.Sprint(pids["hangs"])+` ran=1m30s harakiri=1m30s`) {
		t.Fatalf("harakiri report:\n%s", logs)
	}
	ct.clk.Advance(time.Hour)
	waitCronLog(t, ct.log, "cron=hangs-too line=3 pid="+fmt.Sprint(pids["hangs-too"])+" ran=1h1m30s")
	waitCronLog(t, ct.log, `msg="cron job killed" vassal=test cron=hangs-too`)
	ct.tab.end()
	// Only the unbounded job was still running: the stop ended it.
	want := fmt.Sprintf("%d:SIGKILL %d:SIGKILL %d:SIGTERM", pids["hangs"], pids["hangs-too"], pids["unbounded"])
	if got := ct.jobs.signalled(); got != want {
		t.Fatalf("signals: %s, want %s", got, want)
	}
}

// TestCronReloadKeepsRuns: a reload keeps the unchanged jobs with their
// runs and last minute (a unique job is not started twice), lets the runs
// of a removed job finish without a signal, and starts a new job due in
// the current minute. The stop then ends every run, removed job's too.
func TestCronReloadKeepsRuns(t *testing.T) {
	ct := newCronTest(t, "2026-12-02 12:00:00", 0,
		"unique-cron = -1 -1 -1 -1 -1 keep",
		"cron = -1 -1 -1 -1 -1 removed")
	pids := map[string]int{}
	for i := 0; i < 2; i++ {
		s := ct.jobs.next1(t)
		pids[s.cmd] = s.pid
	}
	ct.clk.Advance(10 * time.Second)
	ct.tab.set(ct.specs("cron = -1 -1 -1 -1 -1 added", "unique-cron = -1 -1 -1 -1 -1 keep"),
		ct.jobs.starter(ct.clk), 0, 5*time.Second)
	ct.tab.kick <- struct{}{}
	if s := ct.jobs.next1(t); s.cmd != "added" {
		t.Fatalf("after the reload: %+v", s)
	} else {
		pids["added"] = s.pid
	}
	ct.clk.waitTimer(t, "2026-12-02 12:01:00")
	ct.jobs.none(t)
	if ct.jobs.signalled() != "" {
		t.Fatalf("the reload signalled a run: %s", ct.jobs.signalled())
	}
	if !strings.Contains(ct.log.String(), "cron job removed by the reload") {
		t.Fatalf("log:\n%s", ct.log)
	}
	// The kept job moved to line 3 and says so in its log lines.
	ct.jobs.exit(pids["added"], 0)
	ct.jobs.exit(pids["keep"], 0)
	waitCronLog(t, ct.log, `unique-cron=keep line=3 pid=`+fmt.Sprint(pids["keep"]))
	ct.minute() // 12:01: both configured jobs, not the removed one
	got := map[string]bool{}
	for i := 0; i < 2; i++ {
		s := ct.jobs.next1(t)
		got[s.cmd] = true
		pids[s.cmd] = s.pid
	}
	ct.jobs.none(t)
	if !got["added"] || !got["keep"] {
		t.Fatalf("12:01 started %v", got)
	}
	ct.tab.end()
	sig := ct.jobs.signalled()
	for _, c := range []string{"removed", "added", "keep"} {
		if !strings.Contains(sig, fmt.Sprintf("%d:SIGTERM", pids[c])) {
			t.Errorf("stop did not SIGTERM %s (pid %d): %s", c, pids[c], sig)
		}
	}
}

// TestCronStopKillsAfterMercy: a run that ignores SIGTERM is SIGKILLed.
func TestCronStopKillsAfterMercy(t *testing.T) {
	ct := newCronTest(t, "2026-12-02 12:00:00", 0, "cron = -1 -1 -1 -1 -1 stubborn")
	s := ct.jobs.next1(t)
	ct.jobs.mu.Lock()
	ct.jobs.dieOn[syscall.SIGTERM] = false
	ct.jobs.mu.Unlock()
	ct.tab.mu.Lock()
	ct.tab.mercy = time.Millisecond
	ct.tab.mu.Unlock()
	ct.tab.end()
	if got, want := ct.jobs.signalled(), fmt.Sprintf("%d:SIGTERM %d:SIGKILL", s.pid, s.pid); got != want {
		t.Fatalf("signals %s, want %s", got, want)
	}
	if !strings.Contains(ct.log.String(), "cron job ignored SIGTERM, killed") {
		t.Fatalf("log:\n%s", ct.log)
	}
	// Nothing runs after a stop.
	ct.tab.tick()
	ct.jobs.none(t)
}

// TestCronLocalTime: the fields are read in the crontab's zone.
func TestCronLocalTime(t *testing.T) {
	ct := &cronTest{t: t, clk: newFakeClock("2026-12-02 12:00:00"), jobs: newFakeJobs(), log: newCronLog()}
	tab := &crontab{clock: ct.clk, loc: time.FixedZone("UTC+2", 2*3600), signal: ct.jobs.signal,
		log: slog.New(slog.NewTextHandler(ct.log, nil))}
	tab.set(ct.specs("cron = 0 14 -1 -1 -1 at-two", "cron = 0 12 -1 -1 -1 at-noon"), ct.jobs.starter(ct.clk), 0, time.Second)
	tab.begin()
	defer tab.end()
	if s := ct.jobs.next1(t); s.cmd != "at-two" {
		t.Fatalf("started %q", s.cmd)
	}
	ct.jobs.none(t)
}

// cronLog is a log that tells a waiting test of every write.
type cronLog struct {
	mu      sync.Mutex
	b       strings.Builder
	changed chan struct{}
}

func newCronLog() *cronLog { return &cronLog{changed: make(chan struct{})} }

func (l *cronLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Write(p)
	close(l.changed)
	l.changed = make(chan struct{})
	return len(p), nil
}

func (l *cronLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitCronLog waits for s to be logged.
func waitCronLog(t *testing.T, l *cronLog, s string) {
	t.Helper()
	deadline := time.After(hang)
	for {
		l.mu.Lock()
		ok, changed := strings.Contains(l.b.String(), s), l.changed
		l.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("no %q in the log:\n%s", s, l)
		}
	}
}

// With real processes in a real PID 1: a run past its harakiri is killed
// with its process group (the shell's child too) and reaped; a stop ends a
// run that is still going. Nothing here waits for the wall clock's minute:
// the jobs are due in the minute PID 1 starts in.
func TestCronRealRunsHarakiriAndStop(t *testing.T) {
	dir := t.TempDir()
	p := startPID1(t, "[uwsgi]\nchdir = "+dir+"\n"+
		"cron2 = harakiri=1 sh -c 'sleep 1000 & echo $! > child.pid; wait'\n"+
		"unique-cron = -1 -1 -1 -1 -1 exec sleep 1001\n")
	shell := p.waitLog(`msg="cron job started" vassal=t cron2="sh -c 'sleep 1000 & echo \$! > child.pid; wait'" line=3 pid=(\d+) harakiri=1s`)[1]
	sleeper := p.waitLog(`msg="cron job started" vassal=t unique-cron="exec sleep 1001" line=4 pid=(\d+)`)[1]
	p.waitLog(`level=ERROR msg="cron job ran past its harakiri: killing its process group" vassal=t cron2="[^"]*" line=3 pid=` + shell + ` ran=[0-9.]+s harakiri=1s`)
	p.waitLog(`msg="cron job killed" vassal=t cron2="[^"]*" line=3 pid=` + shell + ` status="killed by killed"`)
	b, err := os.ReadFile(filepath.Join(dir, "child.pid"))
	if err != nil {
		t.Fatal(err)
	}
	child, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	waitGone(t, child)
	syscall.Kill(p.pid, syscall.SIGTERM)
	<-p.done
	if !regexp.MustCompile(`msg="cron job stopped" vassal=t unique-cron="exec sleep 1001" line=4 pid=` + sleeper + ` status="killed by terminated"`).MatchString(p.log.String()) {
		t.Fatalf("no stop of the unique job:\n%s", p.log)
	}
	pid, _ := strconv.Atoi(sleeper)
	waitGone(t, pid)
}

// waitGone waits for pid to be gone or a zombie of someone else's.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(hang)
	for pidAlive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d is still there", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A reload with real processes: the run of an unchanged job and the run of
// a removed job both go on (neither is signalled), and the unchanged unique
// job is not started again in the same minute.
func TestCronReloadKeepsRealRuns(t *testing.T) {
	p := startPID1(t, "[uwsgi]\nunique-cron = -1 -1 -1 -1 -1 exec sleep 1001\ncron = -1 -1 -1 -1 -1 exec sleep 1002\n")
	kept := p.waitLog(`msg="cron job started" vassal=t unique-cron="exec sleep 1001" line=2 pid=(\d+)`)[1]
	removed := p.waitLog(`msg="cron job started" vassal=t cron="exec sleep 1002" line=3 pid=(\d+)`)[1]
	p.reload("[uwsgi]\nenv = X=1\nunique-cron = -1 -1 -1 -1 -1 exec sleep 1001\n")
	p.await(control.MsgReady, true)
	p.waitLog(`msg="cron job removed by the reload: its running runs go on to their end, it is not started again" vassal=t cron="exec sleep 1002" line=3 running=\d+`)
	for _, s := range []string{kept, removed} {
		pid, _ := strconv.Atoi(s)
		if !pidAlive(pid) {
			t.Errorf("run %d ended with the reload", pid)
		}
	}
	if n := strings.Count(p.log.String(), `msg="cron job started" vassal=t unique-cron=`); n != 1 {
		t.Fatalf("the unique job started %d times:\n%s", n, p.log)
	}
}
