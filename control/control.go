// Package control holds the two wire protocols of the emperor: the channel
// between the emperor and each vassal's PID 1 (a socketpair inherited as
// fd 3), and the unix control socket that `emperor status` and later tools
// (an HTTP API, tyrant mode) talk to. Both carry one JSON object per line.
package control

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/emperor-dev/emperor/reexec"
	"github.com/emperor-dev/emperor/restart"
)

// Message types on the emperor <-> vassal channel.
const (
	// emperor -> vassal
	MsgStart  = "start"  // first message: the vassal file to run
	MsgReload = "reload" // re-read this content with if-reload true, restart daemons
	// MsgStop stops the vassal, as SIGTERM does; the emperor sends both.
	// The message cannot be lost: a process-directed signal can be, for
	// as long as the thread the kernel picked for it sleeps in a hung
	// FUSE mount (package nosignal).
	MsgStop = "stop"
	// vassal -> emperor
	MsgReady  = "ready"  // set up and serving (after start or reload)
	MsgFatal  = "fatal"  // about to exit because of Reason
	MsgRefuse = "refuse" // a reload not applied (Reason); with Restart the emperor restarts the vassal
	MsgMounts = "mounts" // the state of the vassal's served mounts changed (Mounts)
	// MsgAskReload asks the emperor for the reload a touch of the vassal
	// file gets (Reason says why: touch-reload and friends). The emperor
	// answers with a MsgReload when it sends one, as for any reload.
	MsgAskReload = "ask-reload"
)

// MountStatus is one served mount of a vassal.
type MountStatus struct {
	Prefix string `json:"prefix"`
	Kind   string `json:"kind"`             // glusterfs, static-map
	Source string `json:"source"`           // volume name or folder
	State  string `json:"state"`            // connecting, connected, serving
	Detail string `json:"detail,omitempty"` // the last connection error
}

// Message is one line on the emperor <-> vassal channel.
type Message struct {
	Type    string `json:"type"`
	Name    string `json:"name,omitempty"`
	Path    string `json:"path,omitempty"`
	Content []byte `json:"content,omitempty"`
	// Files, with Content, are the files the vassal file named (included
	// files, @(file), for-readline) as the emperor read them, with the
	// file owner's credentials: PID 1 reads no other.
	Files map[string][]byte `json:"files,omitempty"`
	// Owner, with Content, is the owner of the vassal file, whose
	// credentials PID 1 takes for the paths the file tests (if-exists,
	// for-glob), as the emperor's check did.
	Owner  *Owner        `json:"owner,omitempty"`
	Mercy  time.Duration `json:"mercy,omitempty"`
	Reason string        `json:"reason,omitempty"`
	Reload bool          `json:"reload,omitempty"`
	// Restart, on a refuse, says the new file is valid but changes what a
	// running vassal cannot change (uid, namespaces, sockets): the emperor
	// stops it and starts it afresh. Without it the file was rejected, and
	// the vassal keeps running on its last good one.
	Restart bool `json:"restart,omitempty"`
	// Namespaces, on a start, is the set the vassal was cloned into: the
	// one place PID 1 learns it from (argv carries only the name).
	Namespaces reexec.Namespaces `json:"namespaces,omitempty"`
	// LogFormat, on a start, is the emperor's log format, which PID 1
	// writes its lines in (they share stderr).
	LogFormat reexec.LogFormat `json:"log_format,omitempty"`
	Mounts    []MountStatus    `json:"mounts,omitempty"`
	// Policy, on a start, is the restart policy the vassal applies to its
	// attached daemons: the emperor's own (emperor-throttle and friends).
	Policy *restart.Policy `json:"policy,omitempty"`
}

// Owner is the owner of a vassal file.
type Owner struct {
	UID int `json:"uid"`
	GID int `json:"gid"`
}

// Conn is a message stream. Send is safe for concurrent use.
type Conn struct {
	mu sync.Mutex
	w  io.Writer
	r  *bufio.Reader
}

// NewConn wraps rw. Closing rw is its owner's business.
func NewConn(rw io.ReadWriter) *Conn {
	return &Conn{w: rw, r: bufio.NewReaderSize(rw, 64<<10)}
}

// Send writes one message.
func (c *Conn) Send(m any) error {
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("control: encode: %w", err)
	}
	b = append(b, '\n')
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := c.w.Write(b); err != nil {
		return fmt.Errorf("control: send: %w", err)
	}
	return nil
}

// MaxLine bounds one message: a vassal file and the files it includes are
// at most 1 MiB together, the files it reads with @(file) and for-readline
// at most about 2 MiB per parse (its expansion limit), for a first start
// and for a reload; JSON's base64 makes that about 7 MiB.
const MaxLine = 16 << 20

// Recv reads one message into m.
func (c *Conn) Recv(m any) error {
	line, err := c.readLine()
	if err != nil {
		return err
	}
	if err := json.Unmarshal(line, m); err != nil {
		return fmt.Errorf("control: decode: %w", err)
	}
	return nil
}

func (c *Conn) readLine() ([]byte, error) {
	var buf []byte
	for {
		part, isPrefix, err := c.r.ReadLine()
		if err != nil {
			return nil, err
		}
		buf = append(buf, part...)
		if len(buf) > MaxLine {
			return nil, fmt.Errorf("control: message over %d bytes", MaxLine)
		}
		if !isPrefix {
			return buf, nil
		}
	}
}

// Request is one call on the control socket.
type Request struct {
	Cmd  string `json:"cmd"`            // status, reload
	Name string `json:"name,omitempty"` // vassal, for reload; empty = all
}

// VassalStatus is one row of `emperor status`.
type VassalStatus struct {
	Name        string        `json:"name"`
	File        string        `json:"file"`
	State       string        `json:"state"`
	PID         int           `json:"pid,omitempty"`
	StartedAt   time.Time     `json:"started_at,omitzero"`
	ReadyAt     time.Time     `json:"ready_at,omitzero"`
	Restarts    int           `json:"restarts"`
	Failures    float64       `json:"failures"` // the restart policy's decayed failure count (package restart)
	LastExit    string        `json:"last_exit,omitempty"`
	NextAttempt time.Time     `json:"next_attempt,omitzero"`
	ConfigError string        `json:"config_error,omitempty"`
	Namespaces  string        `json:"namespaces,omitempty"`
	Mounts      []MountStatus `json:"mounts,omitempty"`
	// Reads are the files the vassal's running config read besides its
	// own: included files (ini, include, inherit; FILE:SECTION when a
	// section was asked), then @(file) and for-readline files. A change to
	// one reloads the vassal.
	Reads []string `json:"reads,omitempty"`
}

// Response answers a Request.
type Response struct {
	OK    bool      `json:"ok"`
	Error string    `json:"error,omitempty"`
	PID   int       `json:"pid,omitempty"`
	Since time.Time `json:"since,omitzero"`
	// Reloaded is how many vassals a reload request reached.
	Reloaded int            `json:"reloaded,omitempty"`
	Vassals  []VassalStatus `json:"vassals,omitempty"`
}

// Call sends one request to the control socket at path and reads the answer.
func Call(path string, req Request, timeout time.Duration) (*Response, error) {
	conn, err := net.DialTimeout("unix", path, timeout)
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w (is the emperor running? see --control)", path, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	c := NewConn(conn)
	if err := c.Send(req); err != nil {
		return nil, err
	}
	var resp Response
	if err := c.Recv(&resp); err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	if !resp.OK {
		return &resp, fmt.Errorf("control socket %s: %s", path, resp.Error)
	}
	return &resp, nil
}
