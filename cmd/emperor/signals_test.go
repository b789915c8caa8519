package main

import (
	"syscall"
	"testing"
	"time"
)

func TestSignalContext(t *testing.T) {
	reloads := make(chan struct{}, 4)
	ctx, stop := signalContext(func() { reloads <- struct{}{} })
	defer stop()
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case <-reloads:
	case <-time.After(time.Minute):
		t.Fatal("SIGHUP did not call reload")
	}
	if ctx.Err() != nil {
		t.Fatal("SIGHUP ended the context")
	}
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(time.Minute):
		t.Fatal("SIGTERM did not end the context")
	}
}
