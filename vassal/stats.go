package vassal

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/emperor-dev/emperor/statsock"
	"github.com/emperor-dev/emperor/vassalfile"
)

// statsServer is the stats component of a vassal without an app (with one,
// the stats lines go to uWSGI): on `stats = ADDR` it answers every
// connection with one JSON document of the vassal's status, then closes it,
// as uWSGI's stats server does; stats-http frames it as an HTTP response.
// It listens after the privilege drop and the chdir, as the tenant.
type statsServer struct {
	v       *vassal
	daemons *daemons
	cron    *crontab
	started time.Time

	mu       sync.Mutex
	cur      *config
	loadedAt time.Time
	ln       net.Listener
	addr     string
	unixPath string // the socket file to remove at close
}

func newStatsServer(v *vassal, d *daemons, c *crontab) *statsServer {
	return &statsServer{v: v, daemons: d, cron: c}
}

// StatsError is a stats address that could not be listened on.
type StatsError struct {
	Addr string
	Err  error
}

func (e *StatsError) Error() string { return fmt.Sprintf("stats %s: %v", e.Addr, e.Err) }
func (e *StatsError) Unwrap() error { return e.Err }

func (s *statsServer) Start(c *config) error {
	s.started = time.Now()
	return s.Apply(c, c)
}

// Apply listens on new's address when it differs from the running one,
// before it closes the old listener, so a failure leaves the old one. The
// framing options apply from the next connection.
func (s *statsServer) Apply(old, new *config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	addr := new.spec.Stats
	if abs, err := filepath.Abs(addr); err == nil && s.unixPath != "" && abs == s.unixPath {
		addr = s.addr // the same socket file, written another way
	}
	if addr != s.addr {
		var ln net.Listener
		var path string
		if addr != "" {
			var err error
			if ln, path, err = statsock.Listen(addr); err != nil {
				return &StatsError{Addr: addr, Err: err}
			}
		}
		s.closeLocked()
		s.ln, s.addr, s.unixPath = ln, addr, path
		if ln != nil {
			s.v.log.Info("stats server listening", "addr", ln.Addr().String())
			go statsock.Serve(ln, s.v.log, s.answer)
		}
	}
	s.cur, s.loadedAt = new, time.Now()
	return nil
}

func (s *statsServer) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeLocked()
	s.addr = ""
}

func (s *statsServer) closeLocked() {
	if s.ln == nil {
		return
	}
	s.ln.Close()
	if s.unixPath != "" {
		_ = os.Remove(s.unixPath)
	}
	s.ln, s.unixPath = nil, ""
}

// answer writes one stats document on conn (statsock closes it).
func (s *statsServer) answer(conn net.Conn) {
	s.mu.Lock()
	c := s.cur
	s.mu.Unlock()
	if c == nil {
		return
	}
	body, err := s.document(c)
	if err != nil {
		s.v.log.Error("stats document", "err", err)
		return
	}
	statsock.Write(conn, body, c.spec.StatsHTTP)
}

// vassalStats is the stats document of a vassal without an app
// (docs/stats.md describes each field).
type vassalStats struct {
	Vassal           string        `json:"vassal"`
	File             string        `json:"file"`
	PID              int           `json:"pid"`
	UID              int           `json:"uid"`
	GID              int           `json:"gid"`
	CWD              string        `json:"cwd"`
	Namespaces       string        `json:"namespaces"`
	StartedAt        int64         `json:"started_at"`
	LoadedAt         int64         `json:"loaded_at"`
	Now              int64         `json:"now"`
	HTTPSockets      []string      `json:"http_sockets"`
	SharedSockets    []string      `json:"shared_sockets"`
	MountpointChecks []string      `json:"mountpoint_checks"`
	Daemons          []daemonStats `json:"daemons"`
	Crons            []cronStats   `json:"crons"`
}

type daemonStats struct {
	Command   string `json:"command"`
	Smart     bool   `json:"smart"`
	Pidfile   string `json:"pidfile,omitempty"`
	Line      int    `json:"line"`
	File      string `json:"file,omitempty"` // the included file of the line; none: the vassal file
	PID       int    `json:"pid"`
	Running   bool   `json:"running"`
	StartedAt int64  `json:"started_at"`
	Starts    int    `json:"starts"`
}

func (s *statsServer) document(c *config) ([]byte, error) {
	spec := c.spec
	cwd, _ := os.Getwd()
	s.mu.Lock()
	loaded := s.loadedAt
	s.mu.Unlock()
	d := vassalStats{
		Vassal: s.v.name, File: s.v.path, PID: os.Getpid(), UID: os.Getuid(), GID: os.Getgid(), CWD: cwd,
		Namespaces: s.v.ns.String(), StartedAt: s.started.Unix(), LoadedAt: loaded.Unix(), Now: time.Now().Unix(),
		HTTPSockets: nonNil(spec.HTTPSockets), SharedSockets: nonNil(spec.SharedSockets),
		MountpointChecks: nonNil(spec.MountChecks), Daemons: s.daemons.stats(spec), Crons: s.cron.stats(spec),
	}
	if c.spec.StatsMinified {
		return json.Marshal(d)
	}
	b, err := json.MarshalIndent(d, "", "\t")
	return append(b, '\n'), err
}

func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// stats describes the running daemons.
func (d *daemons) stats(spec *vassalfile.Spec) []daemonStats {
	d.set.mu.Lock()
	list := append([]*daemon(nil), d.set.list...)
	d.set.mu.Unlock()
	out := make([]daemonStats, 0, len(list))
	for _, dm := range list {
		pid, since, starts := dm.state.get()
		ds := daemonStats{Command: dm.spec.Command, Smart: dm.spec.Smart, Pidfile: dm.spec.Pidfile,
			PID: pid, Running: pid != 0, Starts: starts}
		ds.File, ds.Line = spec.Position(dm.spec.Line)
		if !since.IsZero() {
			ds.StartedAt = since.Unix()
		}
		out = append(out, ds)
	}
	return out
}
