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
	"sync"
	"time"

	"github.com/emperor-dev/emperor/mountinfo"
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

	mu       sync.Mutex
	inflight map[string]chan error // a statfs still blocked from an earlier check
}

// New records the current mount state of paths.
func New(paths []string, timeout time.Duration) *Checker {
	c := &Checker{paths: paths, timeout: timeout, wasMount: map[string]bool{}, inflight: map[string]chan error{}}
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
	ch, busy := c.inflight[p]
	if !busy {
		ch = make(chan error, 1)
		c.inflight[p] = ch
		go func() {
			var st unix.Statfs_t
			err := unix.Statfs(p, &st)
			if err != nil {
				err = &os.PathError{Op: "statfs", Path: p, Err: err}
			}
			ch <- err
			c.mu.Lock()
			delete(c.inflight, p)
			c.mu.Unlock()
		}()
	}
	c.mu.Unlock()
	if busy {
		select {
		case err := <-ch:
			return err // it finished just now
		default:
			return fmt.Errorf("%w: an earlier statfs is still blocked", ErrTimeout)
		}
	}
	t := time.NewTimer(c.timeout)
	defer t.Stop()
	select {
	case err := <-ch:
		return err
	case <-t.C:
		return fmt.Errorf("%w after %v", ErrTimeout, c.timeout)
	}
}

// Run checks every interval and whenever trigger fires (the vassal fires it
// when any child exits, so a FUSE daemon's death is seen in milliseconds).
// It returns the first failure, or nil when ctx is done.
func (c *Checker) Run(ctx context.Context, interval time.Duration, trigger <-chan struct{}) *Failure {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-trigger:
		}
		if f := c.Check(); f != nil {
			return f
		}
	}
}
