package emperor

import (
	"context"
	"fmt"
	"os"
	"time"
)

// RunOne runs the vassal of one file in the foreground, without a vassal
// directory or control socket: `emperor run`, for debugging. A receive on
// reload re-reads the file and reloads the vassal in place. It returns nil
// when ctx ends (after stopping the vassal with mercy), and an error saying
// why when the vassal dies: it is not restarted, so its failure stays on
// screen.
func RunOne(ctx context.Context, cfg Config, path string, reload <-chan struct{}) error {
	cfg.normalize()
	v, err := loadBounded(ctx, path, cfg.CheckTimeout)
	if err != nil || v == nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find our own binary to re-execute as vassal init: %w", err)
	}
	s := newSupervisor(v.Name, path, &cfg, exe, true)
	go s.run()
	s.post(cmdUpdate{v})
	for {
		select {
		case <-ctx.Done():
			s.post(cmdStop{})
			<-s.done
			return nil
		case <-reload:
			nv, err := loadBounded(ctx, path, cfg.CheckTimeout)
			switch {
			case err != nil:
				s.post(cmdBroken{err})
			case nv != nil:
				s.post(cmdUpdate{nv})
			}
		case <-s.done:
			return s.err
		}
	}
}

// loadBounded is LoadVassal off the calling goroutine, given at most
// timeout (a path into a hung mount blocks its thread for good) and
// abandoned when ctx ends, with nil and no error.
func loadBounded(ctx context.Context, path string, timeout time.Duration) (*Loaded, error) {
	type result struct {
		v   *Loaded
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := LoadVassal(path)
		ch <- result{v, err}
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-t.C:
		return nil, fmt.Errorf("%s: the check of this file did not finish within %v: a path it looks into may be on a hung mount (if-exists, if-file, if-dir, for-glob, @(file) and uid/gid lookups touch the filesystem)", path, timeout)
	case <-ctx.Done():
		return nil, nil
	}
}
