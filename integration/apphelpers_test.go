package integration

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// uwsgiGet sends one request in the uwsgi protocol (uWSGI's
// "The uwsgi protocol" page; core/protocol.c, uwsgi_parse_vars): a 4-byte
// header (modifier1 0 for WSGI, the little-endian uint16 size of the vars,
// modifier2 0), then each var as a little-endian uint16 key length, the
// key, a uint16 value length, the value. The app server answers with an
// HTTP-style status line, headers and the body, and closes the connection.
func uwsgiGet(addr, path string) (int, string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, "", err
	}
	uri, query, _ := strings.Cut(path, "?")
	vars := [][2]string{
		{"REQUEST_METHOD", "GET"},
		{"REQUEST_URI", path},
		{"PATH_INFO", uri},
		{"QUERY_STRING", query},
		{"SERVER_PROTOCOL", "HTTP/1.1"},
		{"SERVER_NAME", host},
		{"SERVER_PORT", port},
		{"REMOTE_ADDR", "127.0.0.1"},
		{"REMOTE_PORT", "0"},
		{"HTTP_HOST", addr},
	}
	var body []byte
	for _, kv := range vars {
		for _, s := range kv {
			body = binary.LittleEndian.AppendUint16(body, uint16(len(s)))
			body = append(body, s...)
		}
	}
	if len(body) > 0xffff {
		return 0, "", fmt.Errorf("uwsgi vars too large: %d bytes", len(body))
	}
	pkt := []byte{0, 0, 0, 0}
	binary.LittleEndian.PutUint16(pkt[1:3], uint16(len(body)))
	pkt = append(pkt, body...)

	c, err := net.DialTimeout("tcp", addr, hangTimeout)
	if err != nil {
		return 0, "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(hangTimeout))
	if _, err := c.Write(pkt); err != nil {
		return 0, "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, "", fmt.Errorf("uwsgi response from %s: %w", addr, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// startLoadWith runs do from 4 clients until the load ends, counting each
// error as a failed request: startLoad for a protocol other than HTTP.
func startLoadWith(do func() error) *load {
	l := &load{stop: make(chan struct{})}
	for i := 0; i < 4; i++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			deadline := time.Now().Add(10 * hangTimeout)
			for time.Now().Before(deadline) {
				select {
				case <-l.stop:
					return
				default:
				}
				if err := do(); err != nil {
					l.failed.Add(1)
					l.last.Store(err.Error())
					continue
				}
				l.ok.Add(1)
			}
		}()
	}
	return l
}

// tcpListeners lists the inodes of the TCP sockets listening on
// 127.0.0.1:port or *:port (IPv4), from /proc/net/tcp: the identity of a
// listening socket, to tell a socket kept across a reload from a new one.
func tcpListeners(t *testing.T, port int) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 10 || f[3] != "0A" { // TCP_LISTEN
			continue
		}
		ip, p, ok := strings.Cut(f[1], ":")
		if !ok || (ip != "0100007F" && ip != "00000000") {
			continue
		}
		if n, err := strconv.ParseUint(p, 16, 16); err == nil && int(n) == port {
			out = append(out, f[9])
		}
	}
	return out
}

// requirePortFreed checks that nothing listens on 127.0.0.1:port any more
// and that the port can be bound again.
func requirePortFreed(t *testing.T, port int) {
	t.Helper()
	if l := tcpListeners(t, port); len(l) != 0 {
		t.Fatalf("port %d: still listening (socket inodes %v)", port, l)
	}
	l, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatalf("port %d not free: %v", port, err)
	}
	l.Close()
}

// appMaster is the uWSGI master of the vassal whose PID 1 is pid1: the
// uwsgi child of PID 1.
func appMaster(t *testing.T, pid1 int) int {
	t.Helper()
	var m []int
	for _, p := range descendants(pid1) {
		if p.ppid == pid1 && p.comm == "uwsgi" && !strings.HasPrefix(p.state, "Z") {
			m = append(m, p.pid)
		}
	}
	if len(m) != 1 {
		t.Fatalf("uwsgi children of PID 1 %d: %v, want one master", pid1, m)
	}
	return m[0]
}

// waitWorkersAccepting waits until the uWSGI master has exactly n live
// children, each asleep in its accept loop (epoll_wait, or accept in the
// kernel), which a worker enters only after it has installed its signal
// handlers: a SIGHUP before that is lost (see docs/appserver.md, "A limit
// that is uWSGI's"), so a test of the reload itself waits for it. A
// gateway (the http router) is a child of the master too and counts in n.
func waitWorkersAccepting(t *testing.T, master, n int) []int {
	t.Helper()
	inAccept := func(p int) bool {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/wchan", p))
		w := string(b)
		return err == nil && (w == "do_epoll_wait" || w == "ep_poll" || w == "inet_csk_accept")
	}
	var workers []int
	waitFor(t, hangTimeout, fmt.Sprintf("%d children of uWSGI master %d in their accept loop", n, master), func() bool {
		workers = workers[:0]
		for _, p := range allProcs() {
			if p.ppid == master && !strings.HasPrefix(p.state, "Z") {
				if !inAccept(p.pid) {
					return false
				}
				workers = append(workers, p.pid)
			}
		}
		return len(workers) == n
	})
	return workers
}

// waitPidsGone waits until none of pids is alive (a zombie counts as gone).
func waitPidsGone(t *testing.T, what string, pids []int) {
	t.Helper()
	waitFor(t, hangTimeout, what, func() bool {
		for _, pid := range pids {
			if p, ok := readProc(pid); ok && !strings.HasPrefix(p.state, "Z") {
				return false
			}
		}
		return true
	})
}
