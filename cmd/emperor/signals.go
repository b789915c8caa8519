package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// signalContext is the foreground process's signal handling, shared by the
// daemon and `emperor run`: the context ends at SIGTERM or SIGINT (the
// caller then stops its vassals with mercy), and every SIGHUP calls reload
// (uWSGI's "reload every vassal"). stop releases both.
func signalContext(reload func()) (ctx context.Context, stop context.CancelFunc) {
	ctx, stopTerm := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				reload()
			}
		}
	}()
	return ctx, func() {
		signal.Stop(hup)
		stopTerm()
	}
}
