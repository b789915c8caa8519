package emperor

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/emperor-dev/emperor/control"
)

// controlIdle is how long a control connection may sit without a request.
const controlIdle = 10 * time.Second

// MaxControlConns caps the open control connections: each costs a
// descriptor, and 20,000 idle ones once exhausted the emperor's, so that
// vassal files could not be read and vassals not spawned. At the cap a new
// connection closes the one idle the longest (so `emperor status` still
// gets through a flood of idle ones); if none is idle, the new one is
// closed at once.
const MaxControlConns = 64

// controlReport is the least time between two log lines about the cap or
// a failing accept.
const controlReport = 10 * time.Second

// ctlConn is one open control connection.
type ctlConn struct {
	c         net.Conn
	idleSince time.Time // zero while a request is being answered
}

// ctlConns is the set of open control connections.
type ctlConns struct {
	mu               sync.Mutex
	open             map[*ctlConn]struct{}
	evicted, refused int
	reported         time.Time
}

// admit registers c, making room at the cap; it returns nil if c was
// refused (and closed).
func (cs *ctlConns) admit(c net.Conn, log *slog.Logger) *ctlConn {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	now := time.Now()
	if len(cs.open) >= MaxControlConns {
		var oldest *ctlConn
		for k := range cs.open {
			if !k.idleSince.IsZero() && (oldest == nil || k.idleSince.Before(oldest.idleSince)) {
				oldest = k
			}
		}
		if oldest == nil {
			cs.refused++
			cs.report(now, log)
			c.Close()
			return nil
		}
		delete(cs.open, oldest)
		oldest.c.Close()
		cs.evicted++
		cs.report(now, log)
	}
	cc := &ctlConn{c: c, idleSince: now}
	cs.open[cc] = struct{}{}
	return cc
}

// report logs what the cap did, at most once per controlReport.
func (cs *ctlConns) report(now time.Time, log *slog.Logger) {
	if now.Sub(cs.reported) < controlReport {
		return
	}
	log.Warn("control connections at the limit: closed the longest-idle ones, refused new ones when none was idle",
		"limit", MaxControlConns, "closed_idle", cs.evicted, "refused", cs.refused)
	cs.reported, cs.evicted, cs.refused = now, 0, 0
}

func (cs *ctlConns) idle(cc *ctlConn, idle bool) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if idle {
		cc.idleSince = time.Now()
	} else {
		cc.idleSince = time.Time{}
	}
}

func (cs *ctlConns) drop(cc *ctlConn) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	delete(cs.open, cc)
}

// listenControl binds the control socket. A live socket at path means
// another emperor serves there: refuse, rather than steal it. A stale one
// (its emperor died) is replaced. Anything else at path is left alone.
func listenControl(path string) (net.Listener, error) {
	return ListenUnix(path, "control socket", "--control")
}

// ListenUnix listens on the unix socket path for what (a name for errors),
// mode 0660: owner and group only, since it drives every vassal. A stale
// socket (nobody answers) is replaced; a live one means another emperor
// runs there, and flag is the option that chooses another path.
func ListenUnix(path, what, flag string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("%s directory: %w", what, err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("%s %s: something that is not a socket is there; remove it or choose another %s", what, path, flag)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("%s %s: another emperor is running there (choose another %s)", what, path, flag)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("%s %s: remove the stale socket: %w", what, path, err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("%s %s: chmod 0660: %w", what, path, err)
	}
	return ln, nil
}

func (e *Emperor) serveControl(ln net.Listener) {
	cs := &ctlConns{open: map[*ctlConn]struct{}{}}
	var reported time.Time
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE and the like: try again soon, say so now and then.
			if time.Since(reported) >= controlReport {
				e.log.Warn("control socket accept", "err", err)
				reported = time.Now()
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if cc := cs.admit(c, e.log); cc != nil {
			go e.serveConn(cs, cc)
		}
	}
}

// serveConn answers one JSON request per line until the client hangs up,
// is idle for controlIdle, or is closed to make room (see MaxControlConns).
func (e *Emperor) serveConn(cs *ctlConns, cc *ctlConn) {
	c := cc.c
	defer c.Close()
	defer cs.drop(cc)
	conn := control.NewConn(c)
	for {
		cs.idle(cc, true)
		_ = c.SetDeadline(time.Now().Add(controlIdle))
		var req control.Request
		err := conn.Recv(&req)
		cs.idle(cc, false)
		if err != nil {
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
