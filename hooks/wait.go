package hooks

import (
	"context"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// waitPoll is how often wait_for_* look again (uWSGI: every second).
const waitPoll = 50 * time.Millisecond

// poll runs check until it returns nil, every waitPoll, up to ctx's
// deadline (hook-timeout, or the wait-for-*-timeout of a wait-for option).
// Each check runs off the hook's goroutine: a path into a hung FUSE mount
// blocks stat(2) in the kernel, and the timeout must still fire. Only one
// check is ever outstanding. After the first failed check it logs that it
// waits, as uWSGI does.
func poll(ctx context.Context, h *Hook, r *runner, what string, check func() error) error {
	var last error
	for try := 0; ; try++ {
		if try == 1 {
			r.log.Info("waiting for "+what, "phase", string(h.Phase), "last", last.Error())
		}
		ch := make(chan error, 1)
		go func() { ch <- check() }()
		select {
		case err := <-ch:
			if err == nil {
				return nil
			}
			last = err
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("%s did not come (last: %v): %w", what, last, ctx.Err())
			}
			return fmt.Errorf("%s did not come (its first check is still blocked: a hung mount?): %w", what, ctx.Err())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not come (last: %v): %w", what, last, ctx.Err())
		case <-time.After(waitPoll):
		}
	}
}

// runWaitFor is wait_for_fs (anything), wait_for_file (a regular file) and
// wait_for_dir (a directory), up to hook-timeout (uWSGI: wait-for-fs-timeout,
// 60 s).
func runWaitFor(ctx context.Context, h *Hook, r *runner) error {
	want := map[string]string{"wait_for_fs": "", "wait_for_file": "regular file", "wait_for_dir": "directory"}[h.Action]
	return poll(ctx, h, r, h.Args, func() error {
		st, err := os.Stat(h.Args)
		switch {
		case err != nil:
			return err
		case want == "regular file" && !st.Mode().IsRegular(), want == "directory" && !st.IsDir():
			return fmt.Errorf("%s is a %s, not a %s", h.Args, kindOf(st), want)
		}
		return nil
	})
}

// runWaitMountpoint waits until a directory is a mount point: its device
// differs from its parent's, as uWSGI's uwsgi_wait_for_mountpoint checks
// (wait-for-mountpoint).
func runWaitMountpoint(ctx context.Context, h *Hook, r *runner) error {
	return poll(ctx, h, r, h.Args+" to be mounted", func() error {
		var st, parent unix.Stat_t
		if err := unix.Stat(h.Args, &st); err != nil {
			return &fs.PathError{Op: "stat", Path: h.Args, Err: err}
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return fmt.Errorf("%s is not a directory", h.Args)
		}
		if err := unix.Stat(h.Args+"/..", &parent); err != nil {
			return &fs.PathError{Op: "stat", Path: h.Args + "/..", Err: err}
		}
		if st.Dev == parent.Dev {
			return fmt.Errorf("%s is not a mount point (same device as its parent)", h.Args)
		}
		return nil
	})
}

// runWaitInterface waits until a network interface exists (uWSGI:
// if_nametoindex, wait-for-interface); in a vassal with the net namespace,
// someone must move it in.
func runWaitInterface(ctx context.Context, h *Hook, r *runner) error {
	return poll(ctx, h, r, "interface "+h.Args, func() error {
		_, err := net.InterfaceByName(h.Args)
		return err
	})
}

func kindOf(st fs.FileInfo) string {
	switch {
	case st.IsDir():
		return "directory"
	case st.Mode().IsRegular():
		return "regular file"
	case st.Mode()&fs.ModeSymlink != 0:
		return "symlink"
	case st.Mode()&fs.ModeNamedPipe != 0:
		return "FIFO"
	case st.Mode()&fs.ModeSocket != 0:
		return "socket"
	}
	return "special file"
}

// runWaitSocket waits (up to hook-timeout) until a connection to the
// socket succeeds, then closes it: HOST:PORT is TCP, anything else a unix
// socket (as uWSGI's uwsgi_connect reads it).
func runWaitSocket(ctx context.Context, h *Hook, _ *runner) error {
	network := "unix"
	if strings.Contains(h.Args, ":") {
		network = "tcp"
	}
	var d net.Dialer
	var last error
	for {
		actx, cancel := context.WithTimeout(ctx, time.Second)
		c, err := d.DialContext(actx, network, h.Args)
		cancel()
		if err == nil {
			return c.Close()
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s %s never accepted a connection (last: %v): %w", network, h.Args, last, ctx.Err())
		case <-time.After(waitPoll):
		}
	}
}
