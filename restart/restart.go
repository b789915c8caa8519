// Package restart is the one restart policy of the emperor: it decides how
// long a vassal (in the emperor) or an attached daemon (in a vassal's PID 1)
// waits after a failure before it is started again.
//
// The rule, in two parts:
//
//   - Something that became ready is restarted at once for its first
//     failures. Failures are counted with decay: the count halves every
//     HalfLife of running time. While the count, this failure included, is
//     at most Burst, the restart is immediate; above it the wait is
//     Throttle × 2ⁿ, where n+1 is how far the count is above Burst (rounded
//     up), capped at MaxThrottle. A vassal that served for minutes between
//     crashes is thus restarted at once every time, while one that becomes
//     ready and dies at once runs into the throttle after Burst failures.
//   - Something that never became ready backs off from its second failure
//     in a row: the first is restarted at once, the k-th waits
//     Throttle × 2^(k-2), capped at MaxThrottle (uWSGI's emperor throttle).
//
// The longer of the two waits applies. The count decays only while the
// supervised thing runs: time spent waiting in backoff earns no
// forgiveness, so a crash loop climbs to MaxThrottle rather than settling
// where the decay balances the doubling.
//
// The package is pure: every method takes the time it happens at, so the
// policy is tested with an injected clock and no sleeps.
package restart

import (
	"fmt"
	"math"
	"time"
)

// The defaults, in one place: the emperor's options and the vassal's
// attached daemons take them from here.
const (
	// DefaultThrottle is emperor-throttle: the first backoff step.
	DefaultThrottle = time.Second
	// DefaultMaxThrottle is emperor-max-throttle: the cap on the backoff.
	DefaultMaxThrottle = 180 * time.Second
	// DefaultBurst is emperor-restart-burst: how many failures in a row a
	// ready vassal or daemon is restarted at once for.
	DefaultBurst = 5
	// DefaultHalfLife is emperor-restart-half-life: the running time after
	// which the failure count has halved.
	DefaultHalfLife = 30 * time.Second
	// DaemonReadyAfter is when an attached daemon counts as ready: it was
	// started (its exec succeeded) and it has run this long without dying.
	// A daemon has no readiness signal of its own; one that dies within
	// this time is failing at start, and backs off from its second failure.
	DaemonReadyAfter = time.Second
)

// maxShift bounds the doubling: 2^40 times any positive throttle is past any
// sensible MaxThrottle, and a larger shift would overflow.
const maxShift = 40

// Policy is the restart policy's parameters.
type Policy struct {
	// Throttle is the first backoff step (emperor-throttle); 0 restarts
	// always at once.
	Throttle time.Duration
	// MaxThrottle caps the backoff (emperor-max-throttle).
	MaxThrottle time.Duration
	// Burst is how many failures a ready vassal or daemon is restarted at
	// once for (emperor-restart-burst); 0 backs off from the first
	// failure.
	Burst int
	// HalfLife is the running time after which the failure count has
	// halved (emperor-restart-half-life); 0 forgets past failures as soon
	// as a run has lasted any time at all.
	HalfLife time.Duration
}

// Default returns the documented defaults.
func Default() Policy {
	return Policy{Throttle: DefaultThrottle, MaxThrottle: DefaultMaxThrottle, Burst: DefaultBurst, HalfLife: DefaultHalfLife}
}

// Check says what is wrong with p, if anything, naming the options.
func (p Policy) Check() error {
	switch {
	case p.Throttle < 0:
		return fmt.Errorf("emperor-throttle (%v) is negative", p.Throttle)
	case p.MaxThrottle < p.Throttle:
		return fmt.Errorf("emperor-max-throttle (%v) is below emperor-throttle (%v)", p.MaxThrottle, p.Throttle)
	case p.Burst < 0:
		return fmt.Errorf("emperor-restart-burst (%d) is negative", p.Burst)
	case p.HalfLife < 0:
		return fmt.Errorf("emperor-restart-half-life (%v) is negative", p.HalfLife)
	}
	return nil
}

// step is Throttle × 2ⁿ, capped at MaxThrottle.
func (p Policy) step(n int) time.Duration {
	if p.Throttle <= 0 {
		return 0
	}
	d := p.Throttle
	for i := 0; i < min(n, maxShift) && d < p.MaxThrottle; i++ {
		d *= 2
	}
	return min(d, p.MaxThrottle)
}

// burstDelay is the wait after a failure that brought the decayed count to
// count: none while count is at most Burst, then Throttle × 2ⁿ with n+1 =
// count - Burst rounded up.
func (p Policy) burstDelay(count float64) time.Duration {
	over := count - float64(p.Burst)
	// The tolerance keeps a count that is Burst up to rounding (a run of
	// a few nanoseconds decays it by that much) within the burst.
	if over <= 1e-9 {
		return 0
	}
	return p.step(int(math.Ceil(over-1e-9)) - 1)
}

// startDelay is the wait after the k-th failure in a row of runs that never
// became ready: none for the first, then Throttle × 2^(k-2).
func (p Policy) startDelay(k int) time.Duration {
	if k <= 1 {
		return 0
	}
	return p.step(k - 2)
}

// Decay returns count after running for d: halved every HalfLife.
func (p Policy) Decay(count float64, d time.Duration) float64 {
	if d <= 0 || count == 0 {
		return count
	}
	if p.HalfLife <= 0 {
		return 0
	}
	return count * math.Exp2(-d.Seconds()/p.HalfLife.Seconds())
}

// Tracker is the restart state of one vassal or daemon: its decayed failure
// count and its current run. The zero value is a thing that has never run.
// It is not safe for concurrent use; its owner copies it to publish it.
type Tracker struct {
	count   float64   // the failure count, decayed up to since (or to the end of the last run)
	running bool      // a run is in progress: the count decays
	since   time.Time // when the current run started, or the count was last decayed in it
	readyAt time.Time // when the current run became ready; zero if it has not
	unready int       // failures in a row of runs that never became ready
}

// Started records that a run began at now.
func (t *Tracker) Started(now time.Time) {
	t.running, t.since, t.readyAt = true, now, time.Time{}
}

// Ready records that the current run became ready at now.
func (t *Tracker) Ready(now time.Time) {
	if t.running && t.readyAt.IsZero() {
		t.readyAt = now
	}
}

// ReadyAt is when the current run became ready; zero if it has not (or no
// run is in progress).
func (t *Tracker) ReadyAt() time.Time {
	if !t.running {
		return time.Time{}
	}
	return t.readyAt
}

// settle ends the current run at now: the count stops decaying.
func (t *Tracker) settle(p Policy, now time.Time) {
	if t.running {
		t.count = p.Decay(t.count, now.Sub(t.since))
	}
	t.running, t.since = false, now
}

// Failed records that the current run failed (died, or could not start) at
// now, and returns how long to wait before the next start.
func (t *Tracker) Failed(p Policy, now time.Time) time.Duration {
	ready := t.running && !t.readyAt.IsZero()
	t.settle(p, now)
	t.readyAt = time.Time{}
	t.count++
	if ready {
		t.unready = 0
	} else {
		t.unready++
	}
	return max(p.burstDelay(t.count), p.startDelay(t.unready))
}

// Stopped records that the current run ended at now without a failure (an
// operator's stop, a restart for a changed file): nothing is counted.
func (t *Tracker) Stopped(p Policy, now time.Time) {
	t.settle(p, now)
	t.readyAt = time.Time{}
}

// Reset forgets every failure: an operator touched or fixed the file.
func (t *Tracker) Reset() {
	t.count, t.unready = 0, 0
}

// Failures is the decayed failure count at now.
func (t *Tracker) Failures(p Policy, now time.Time) float64 {
	if t.running {
		return p.Decay(t.count, now.Sub(t.since))
	}
	return t.count
}
