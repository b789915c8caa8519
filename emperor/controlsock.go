package emperor

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/emperor-dev/emperor/control"
)

// controlIdle is how long a control connection may sit without a request.
const controlIdle = 30 * time.Second

// listenControl binds the control socket. A live socket at path means
// another emperor serves there: refuse, rather than steal it. A stale one
// (its emperor died) is replaced. Anything else at path is left alone.
func listenControl(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("control socket directory: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("control socket %s: something that is not a socket is there; remove it or choose another --control", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("control socket %s: another emperor is running there (choose another --control)", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("control socket %s: remove the stale socket: %w", path, err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	// Owner and group only: the socket can reload every vassal.
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket %s: chmod 0660: %w", path, err)
	}
	return ln, nil
}

func (e *Emperor) serveControl(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			e.log.Warn("control socket accept", "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go e.serveConn(c)
	}
}

// serveConn answers one JSON request per line until the client hangs up.
func (e *Emperor) serveConn(c net.Conn) {
	defer c.Close()
	conn := control.NewConn(c)
	for {
		_ = c.SetDeadline(time.Now().Add(controlIdle))
		var req control.Request
		if err := conn.Recv(&req); err != nil {
			var syn *json.SyntaxError
			var typ *json.UnmarshalTypeError
			if errors.As(err, &syn) || errors.As(err, &typ) {
				_ = conn.Send(control.Response{Error: fmt.Sprintf("bad request: %v", err)})
			}
			return
		}
		if err := conn.Send(e.answer(req)); err != nil {
			return
		}
	}
}

func (e *Emperor) answer(req control.Request) control.Response {
	switch req.Cmd {
	case "status":
		e.mu.Lock()
		since := e.since
		e.mu.Unlock()
		return control.Response{OK: true, PID: os.Getpid(), Since: since, Vassals: e.Status()}
	case "reload":
		n, err := e.Reload(req.Name)
		if err != nil {
			return control.Response{Error: err.Error()}
		}
		return control.Response{OK: true, PID: os.Getpid(), Reloaded: n}
	}
	return control.Response{Error: fmt.Sprintf("unknown command %q (known: status, reload)", req.Cmd)}
}
