package main

import (
	"context"
	"fmt"
	"os/signal"
	"syscall"
	"time"

	"github.com/emperor-dev/emperor/vassalfile"
)

// checkBounded runs checkFile off the calling goroutine and waits at most
// timeout, or until ctx ends (SIGTERM, SIGINT). Checking a file touches the
// filesystem, and a path into a hung mount blocks the checking thread in the
// kernel with no way to cancel it: the check is then left behind (it ends
// with the process) and reported as a timeout.
func checkBounded(ctx context.Context, path string, timeout time.Duration) ([]vassalfile.Diag, error) {
	done := make(chan []vassalfile.Diag, 1)
	go func() { done <- checkFile(path) }()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case d := <-done:
		return d, nil
	case <-t.C:
		return []vassalfile.Diag{{File: path, Message: fmt.Sprintf("the check did not finish within %v: a path it looks into may be on a hung mount (if-exists, if-file, if-dir, for-glob, @(file) and uid/gid lookups touch the filesystem)", timeout)}}, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("check of %s interrupted", path)
	}
}

// interruptContext ends at SIGTERM or SIGINT: `emperor check` stops at
// once, even with a check stuck in a hung mount.
func interruptContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
}
