package hooks

import (
	"context"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
	"time"
)

// waitPoll is how often wait_for_* look again (uWSGI: every second).
const waitPoll = 50 * time.Millisecond

// runWaitFor is wait_for_fs (anything), wait_for_file (a regular file) and
// wait_for_dir (a directory), up to hook-timeout (uWSGI: wait-for-fs-timeout,
// 60 s). Each stat(2) runs off the hook's goroutine: a path into a hung FUSE
// mount blocks stat in the kernel, and the timeout must still fire. Only
// one stat is ever outstanding.
func runWaitFor(ctx context.Context, h *Hook, r *runner) error {
	want := map[string]string{"wait_for_fs": "", "wait_for_file": "regular file", "wait_for_dir": "directory"}[h.Action]
	type result struct {
		st  fs.FileInfo
		err error
	}
	var last error
	for try := 0; ; try++ {
		if try == 1 {
			r.log.Info("waiting for "+h.Args, "phase", string(h.Phase), "last", last.Error())
		}
		ch := make(chan result, 1)
		go func() {
			st, err := os.Stat(h.Args)
			ch <- result{st, err}
		}()
		select {
		case r := <-ch:
			switch {
			case r.err != nil:
				last = r.err
			case want == "regular file" && !r.st.Mode().IsRegular(), want == "directory" && !r.st.IsDir():
				last = fmt.Errorf("%s is a %s, not a %s", h.Args, kindOf(r.st), want)
			default:
				return nil
			}
		case <-ctx.Done():
			return fmt.Errorf("%s did not appear (stat still blocked: a hung mount?): %w", h.Args, ctx.Err())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not appear (last: %v): %w", h.Args, last, ctx.Err())
		case <-time.After(waitPoll):
		}
	}
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
