package restart

import (
	"math"
	"testing"
	"time"
)

const ms = time.Millisecond

// clock is the injected clock: tests move it by hand.
type clock struct{ now time.Time }

func (c *clock) tick(d time.Duration) time.Time { c.now = c.now.Add(d); return c.now }

func newClock() *clock { return &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func testPolicy() Policy {
	return Policy{Throttle: 200 * ms, MaxThrottle: 1600 * ms, Burst: 5, HalfLife: 30 * time.Second}
}

// run starts a run, makes it ready after ready (if ready >= 0), lets it run
// for ran in all, then fails it and returns the wait.
func run(t *Tracker, p Policy, c *clock, ready, ran time.Duration) time.Duration {
	t.Started(c.now)
	if ready >= 0 {
		t.Ready(c.now.Add(ready))
	}
	return t.Failed(p, c.tick(ran))
}

func TestNeverReadyBacksOffFromTheSecondFailure(t *testing.T) {
	p, c, tr := testPolicy(), newClock(), &Tracker{}
	var got []time.Duration
	for range 7 {
		d := run(tr, p, c, -1, 10*ms)
		got = append(got, d)
		c.tick(d)
	}
	want := []time.Duration{0, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 1600 * ms, 1600 * ms}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("schedule %v, want %v", got, want)
		}
	}
}

func TestReadyRestartsAtOnceForTheBurst(t *testing.T) {
	p, c, tr := testPolicy(), newClock(), &Tracker{}
	// Ready, then dead almost at once, over and over: 5 immediate
	// restarts, then the throttle doubles to its cap.
	var got []time.Duration
	for range 9 {
		d := run(tr, p, c, 1*ms, 2*ms)
		got = append(got, d)
		c.tick(d)
	}
	want := []time.Duration{0, 0, 0, 0, 0, 200 * ms, 400 * ms, 800 * ms, 1600 * ms}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("schedule %v, want %v", got, want)
		}
	}
}

// The case: a FUSE daemon killed five times, 3 s apart, under a
// vassal that serves in between: every restart is immediate. Failing every
// 3 s for good is a crash loop all the same: the count climbs towards
// 1/(1-2^(-3/30)) = 14.9, so the sixth kill is throttled.
func TestKilledEvery3s(t *testing.T) {
	p, c, tr := Default(), newClock(), &Tracker{}
	for i := range 5 {
		if d := run(tr, p, c, 100*ms, 3*time.Second); d != 0 {
			t.Fatalf("kill %d: wait %v (failures %.2f)", i+1, d, tr.Failures(p, c.now))
		}
	}
	if d := run(tr, p, c, 100*ms, 3*time.Second); d != p.Throttle {
		t.Fatalf("kill 6: wait %v (failures %.2f), want the throttle", d, tr.Failures(p, c.now))
	}
}

func TestDecayForgives(t *testing.T) {
	p, c, tr := testPolicy(), newClock(), &Tracker{}
	for range 6 {
		c.tick(run(tr, p, c, 1*ms, 1*ms))
	}
	if f := tr.Failures(p, c.now); f < 5.9 || f > 6 {
		t.Fatalf("failures %.3f, want just under 6", f)
	}
	// A run of two half-lives divides the count by 4: 6 -> 1.5, +1.
	tr.Started(c.now)
	tr.Ready(c.tick(ms))
	if f := tr.Failures(p, c.tick(60*time.Second-ms)); math.Abs(f-1.5) > 0.01 {
		t.Fatalf("failures while running %.3f, want 1.5", f)
	}
	if d := tr.Failed(p, c.now); d != 0 {
		t.Fatalf("after a long run: wait %v", d)
	}
	if f := tr.Failures(p, c.now); math.Abs(f-2.5) > 0.01 {
		t.Fatalf("failures %.3f, want 2.5", f)
	}
}

func TestBackoffTimeEarnsNoForgiveness(t *testing.T) {
	p, c, tr := testPolicy(), newClock(), &Tracker{}
	for range 6 {
		c.tick(run(tr, p, c, 1*ms, 1*ms))
	}
	before := tr.Failures(p, c.now)
	c.tick(time.Hour) // waiting, not running
	if f := tr.Failures(p, c.now); f != before {
		t.Fatalf("failures decayed from %.3f to %.3f while not running", before, f)
	}
}

func TestReadyRunAfterUnreadyStreak(t *testing.T) {
	p, c, tr := testPolicy(), newClock(), &Tracker{}
	c.tick(run(tr, p, c, -1, ms))
	c.tick(run(tr, p, c, -1, ms))
	if d := run(tr, p, c, -1, ms); d != 400*ms {
		t.Fatalf("third unready failure: %v", d)
	}
	// A run that became ready ends the streak: immediate again (the
	// count, 4, is within the burst).
	if d := run(tr, p, c, ms, time.Second); d != 0 {
		t.Fatalf("ready run: %v", d)
	}
	if d := run(tr, p, c, -1, ms); d != 0 {
		t.Fatalf("first unready failure after a ready run: %v", d)
	}
	// The second unready failure in a row backs off; the count (6, barely
	// decayed) is one above the burst: both rules give the first step.
	if d := run(tr, p, c, -1, ms); d != 200*ms {
		t.Fatalf("second unready failure after a ready run: %v", d)
	}
}

func TestStoppedAndReset(t *testing.T) {
	p, c, tr := testPolicy(), newClock(), &Tracker{}
	c.tick(run(tr, p, c, -1, ms))
	c.tick(run(tr, p, c, -1, ms))
	// An operator's stop counts nothing.
	tr.Started(c.now)
	tr.Stopped(p, c.tick(ms))
	if f := tr.Failures(p, c.now); f < 1.99 || f > 2 {
		t.Fatalf("failures %.3f after a stop", f)
	}
	if !tr.ReadyAt().IsZero() {
		t.Fatal("ready after a stop")
	}
	tr.Reset()
	if f := tr.Failures(p, c.now); f != 0 {
		t.Fatalf("failures %.3f after reset", f)
	}
	if d := run(tr, p, c, -1, ms); d != 0 {
		t.Fatalf("first failure after reset: %v", d)
	}
}

func TestReadyAt(t *testing.T) {
	c, tr := newClock(), &Tracker{}
	if !tr.ReadyAt().IsZero() {
		t.Fatal("never ran")
	}
	tr.Started(c.now)
	at := c.tick(ms)
	tr.Ready(at)
	tr.Ready(c.tick(ms)) // the first ready counts
	if !tr.ReadyAt().Equal(at) {
		t.Fatalf("ready at %v, want %v", tr.ReadyAt(), at)
	}
	tr.Failed(testPolicy(), c.now)
	if !tr.ReadyAt().IsZero() {
		t.Fatal("ready after a failure")
	}
	tr.Ready(c.now) // no run in progress: ignored
	if !tr.ReadyAt().IsZero() {
		t.Fatal("ready without a run")
	}
}

func TestEdges(t *testing.T) {
	c := newClock()
	// No throttle: always at once.
	p := Policy{MaxThrottle: time.Second, Burst: 0, HalfLife: time.Second}
	tr := &Tracker{}
	for range 50 {
		if d := run(tr, p, c, -1, ms); d != 0 {
			t.Fatal(d)
		}
	}
	// A huge count does not overflow the doubling.
	p = Policy{Throttle: time.Second, MaxThrottle: 180 * time.Second, Burst: 5, HalfLife: time.Hour}
	if d := p.burstDelay(1e6); d != 180*time.Second {
		t.Fatal(d)
	}
	if d := p.startDelay(1 << 30); d != 180*time.Second {
		t.Fatal(d)
	}
	// Burst 0: a ready run backs off from its first failure.
	p.Burst = 0
	tr = &Tracker{}
	if d := run(tr, p, c, ms, ms); d != time.Second {
		t.Fatal(d)
	}
	// Half-life 0: any run forgets the past.
	p = Policy{Throttle: time.Second, MaxThrottle: 8 * time.Second, Burst: 1, HalfLife: 0}
	tr = &Tracker{}
	for range 10 {
		if d := run(tr, p, c, ms, ms); d != 0 {
			t.Fatal(d)
		}
	}
}

func TestCheck(t *testing.T) {
	if err := Default().Check(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []Policy{
		{Throttle: -1},
		{Throttle: 2, MaxThrottle: 1},
		{Burst: -1},
		{HalfLife: -1},
	} {
		if p.Check() == nil {
			t.Errorf("%+v accepted", p)
		}
	}
}
