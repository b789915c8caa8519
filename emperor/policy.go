package emperor

import "time"

// backoff decides how long a dead vassal waits before its next start.
//
// The first death after a healthy run (or the first death at all) restarts
// at once: a FUSE daemon that died under a vassal that served for hours
// should cost milliseconds, not a throttle step. Each further death before
// the vassal was healthy again doubles the wait, from throttle up to max.
type backoff struct {
	throttle, max, healthy time.Duration
	// fails counts the deaths since the vassal was last healthy.
	fails int
}

// died records a death of a vassal that became ready at readyAt (zero if it
// never did) and returns how long to wait before starting it again.
func (b *backoff) died(readyAt, now time.Time) time.Duration {
	if !readyAt.IsZero() && now.Sub(readyAt) >= b.healthy {
		b.fails = 0
	}
	d := b.delay(b.fails)
	b.fails++
	return d
}

// delay is the wait after n deaths in a row that each followed a restart.
func (b *backoff) delay(n int) time.Duration {
	if n == 0 {
		return 0
	}
	d := b.throttle
	for i := 1; i < n && d < b.max; i++ {
		d *= 2
	}
	return min(d, b.max)
}

// reset forgets past deaths: an operator touched or fixed the file.
func (b *backoff) reset() { b.fails = 0 }
