// Package mountcheck watches a vassal's mounts. A FUSE daemon that dies
// leaves its mount answering ENOTCONN; one that hangs (SIGSTOP, deadlock)
// leaves statfs(2) blocked forever. Either way the vassal must be destroyed
// so the kernel drops the namespace and the emperor restarts it clean.
package mountcheck

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/emperor-dev/emperor/mountinfo"
	"github.com/emperor-dev/emperor/nosignal"
	"golang.org/x/sys/unix"
)

// Failure says which path failed and why.
type Failure struct {
	Path   string
	Reason string // "ENOTCONN", "timeout after 3s", "no longer a mount point", ...
	Err    error
}

func (f *Failure) Error() string { return fmt.Sprintf("mountpoint-check %s: %s", f.Path, f.Reason) }
func (f *Failure) Unwrap() error { return f.Err }

// ErrTimeout is a statfs that did not return in time: a hung FUSE daemon.
var ErrTimeout = errors.New("statfs timed out")

// Checker checks a fixed set of paths.
type Checker struct {
	paths   []string
	timeout time.Duration
	// wasMount records which paths were mount points when the checker
	// started: such a path that stops being one has been unmounted under
	// us (uWSGI only statfs()es and misses that case).
	wasMount map[string]bool

	// sysStatfs is statfs(2); the tests replace it with one that blocks.
	sysStatfs func(path string, st *unix.Statfs_t) error

	mu       sync.Mutex
	inflight map[string]*call // a statfs still running, possibly blocked
	stopped  bool             // Stop was called: no statfs starts any more
	quit     chan struct{}    // closed by Stop
}

// call is one statfs(2) on its own goroutine; done closes when it returns.
type call struct {
	done chan struct{}
	err  error
}

// ErrStopped is a check asked for after Stop.
var ErrStopped = errors.New("mountpoint-check stopped")

// New records the current mount state of paths.
func New(paths []string, timeout time.Duration) *Checker {
	c := &Checker{paths: paths, timeout: timeout, wasMount: map[string]bool{}, inflight: map[string]*call{}, quit: make(chan struct{}), sysStatfs: unix.Statfs}
	mounts, _ := mountinfo.Set()
	for _, p := range paths {
		c.wasMount[p] = mounts[p]
	}
	return c
}

// Carry keeps prev's knowledge of which paths were mount points: a path
// that was one at the vassal's first start and is not one after a reload was
// unmounted, and must fail.
func (c *Checker) Carry(prev *Checker) {
	if prev == nil {
		return
	}
	for p, was := range prev.wasMount {
		if was {
			if _, ok := c.wasMount[p]; ok {
				c.wasMount[p] = true
			}
		}
	}
}

// Check checks every path once and returns the first failure.
func (c *Checker) Check() *Failure {
	var mounts map[string]bool
	for _, p := range c.paths {
		if err := c.statfs(p); err != nil {
			return describe(p, err)
		}
		if c.wasMount[p] {
			if mounts == nil {
				var err error
				if mounts, err = mountinfo.Set(); err != nil {
					return &Failure{Path: p, Reason: "cannot read /proc/self/mountinfo", Err: err}
				}
			}
			if !mounts[p] {
				return &Failure{Path: p, Reason: "no longer a mount point (unmounted)"}
			}
		}
	}
	return nil
}

func describe(p string, err error) *Failure {
	switch {
	case errors.Is(err, ErrTimeout):
		return &Failure{Path: p, Reason: err.Error(), Err: err}
	case errors.Is(err, unix.ENOTCONN):
		return &Failure{Path: p, Reason: "ENOTCONN (its FUSE daemon is gone)", Err: err}
	}
	var errno unix.Errno
	if errors.As(err, &errno) {
		return &Failure{Path: p, Reason: unix.ErrnoName(errno) + " (" + errno.Error() + ")", Err: err}
	}
	return &Failure{Path: p, Reason: err.Error(), Err: err}
}

// statfs runs statfs(2) on a separate goroutine, because on a hung FUSE mount
// it blocks in the kernel until the daemon answers, possibly forever. Only
// one call per path is ever outstanding: a path whose previous call is still
// blocked fails at once instead of piling up blocked threads.
func (c *Checker) statfs(p string) error {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return ErrStopped
	}
	cl, busy := c.inflight[p]
	if !busy {
		cl = &call{done: make(chan struct{})}
		c.inflight[p] = cl
		go func() {
			// On a thread that takes no signal while it may hang: a
			// hung FUSE mount would otherwise swallow a SIGTERM meant
			// for PID 1 (see package nosignal).
			var st unix.Statfs_t
			var err error
			nosignal.Do(func() { err = c.sysStatfs(p, &st) })
			if err != nil {
				cl.err = &os.PathError{Op: "statfs", Path: p, Err: err}
			}
			c.mu.Lock()
			delete(c.inflight, p)
			c.mu.Unlock()
			close(cl.done)
		}()
	}
	c.mu.Unlock()
	if busy {
		select {
		case <-cl.done:
			return cl.err // it finished just now
		default:
			return fmt.Errorf("%w: an earlier statfs is still blocked", ErrTimeout)
		}
	}
	t := time.NewTimer(c.timeout)
	defer t.Stop()
	select {
	case <-cl.done:
		return cl.err
	case <-t.C:
		return fmt.Errorf("%w after %v", ErrTimeout, c.timeout)
	}
}

// Timeout is the check timeout: how long a statfs may take.
func (c *Checker) Timeout() time.Duration { return c.timeout }

// InFlight lists the paths whose statfs(2) has not returned yet, sorted.
func (c *Checker) InFlight() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ps []string
	for p := range c.inflight {
		ps = append(ps, p)
	}
	sort.Strings(ps)
	return ps
}

// StillBlockedError is a Stop that gave up on statfs calls that had not
// returned within the check timeout: their paths are hung mounts, which stay
// busy (an unmount of them fails with EBUSY) until the calls return.
type StillBlockedError struct {
	Paths   []string
	Timeout time.Duration
}

func (e *StillBlockedError) Error() string {
	return fmt.Sprintf("mountpoint-check stop: statfs of %s still blocked after %v", strings.Join(e.Paths, ", "), e.Timeout)
}

// Stop ends the checker before the tenant unmounts its filesystems (the
// as-user-atexit hooks' fusermount -u). A statfs(2) in flight holds a
// reference to the mount for as long as it runs, and umount(2) fails with
// EBUSY on a mount with references. So after Stop no statfs starts, Run
// returns and reports no failure any more (an unmount from now on is
// expected), and Stop waits, at most the check timeout, for the calls in
// flight to return. It is idempotent.
func (c *Checker) Stop() error {
	c.mu.Lock()
	if !c.stopped {
		c.stopped = true
		close(c.quit)
	}
	pending := make(map[string]*call, len(c.inflight))
	for p, cl := range c.inflight {
		pending[p] = cl
	}
	c.mu.Unlock()
	// One deadline for all: the calls run in parallel.
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	var blocked []string
	for p, cl := range pending {
		select {
		case <-cl.done:
		case <-ctx.Done():
			select {
			case <-cl.done:
			default:
				blocked = append(blocked, p)
			}
		}
	}
	if len(blocked) > 0 {
		sort.Strings(blocked)
		return &StillBlockedError{Paths: blocked, Timeout: c.timeout}
	}
	return nil
}

// Run checks every interval and whenever trigger fires (the vassal fires it
// when any child exits, so a FUSE daemon's death is seen in milliseconds).
// It returns the first failure, or nil when ctx is done or Stop was called:
// a failure seen after Stop (the tenant's own unmount) is not one.
func (c *Checker) Run(ctx context.Context, interval time.Duration, trigger <-chan struct{}) *Failure {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.quit:
			return nil
		case <-t.C:
		case <-trigger:
		}
		if f := c.Check(); f != nil {
			select {
			case <-c.quit:
				return nil
			default:
				return f
			}
		}
	}
}
