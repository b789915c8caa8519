package vassal

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emperor-dev/emperor/control"
)

func readStats(t *testing.T, network, addr string) (vassalStats, string) {
	t.Helper()
	c, err := net.DialTimeout(network, addr, hang)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(hang))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	var s vassalStats
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("%v in %q", err, b)
	}
	return s, string(b)
}

// TestStatsServer: without an app, stats answers each connection with one
// JSON document of the vassal (its daemons and cron runs with their pids)
// and closes it; a reload moves it to a TCP address with HTTP framing and
// minified JSON, listening on the new address before it removes the old
// socket; the stop removes the socket file.
func TestStatsServer(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "stats.sock")
	first := "[uwsgi]\nstats = " + sock + "\nattach-daemon = exec sleep 1000\nunique-cron = -1 -1 -1 -1 -1 exec sleep 1001\n"
	p := startPID1(t, first)
	dpid := p.waitLog(`msg="daemon started" vassal=t attach-daemon="exec sleep 1000" pid=(\d+)`)[1]
	cpid := p.waitLog(`msg="cron job started" vassal=t unique-cron="exec sleep 1001" line=4 pid=(\d+)`)[1]
	p.waitLog(`msg="stats server listening" vassal=t addr=` + sock)
	s, raw := readStats(t, "unix", sock)
	if !strings.Contains(raw, "\n\t\"vassal\": \"t\",") {
		t.Errorf("not indented:\n%s", raw)
	}
	if s.Vassal != "t" || s.PID != p.pid || s.UID != os.Getuid() || s.StartedAt == 0 || s.LoadedAt < s.StartedAt {
		t.Errorf("vassal fields: %+v", s)
	}
	if len(s.Daemons) != 1 || !s.Daemons[0].Running || strconv.Itoa(s.Daemons[0].PID) != dpid ||
		s.Daemons[0].Starts != 1 || s.Daemons[0].Line != 3 || s.Daemons[0].Command != "exec sleep 1000" {
		t.Errorf("daemons: %+v (pid %s)", s.Daemons, dpid)
	}
	if len(s.Crons) != 1 {
		t.Fatalf("crons: %+v", s.Crons)
	}
	c := s.Crons[0]
	if c.Minute != -1 || c.Week != -1 || c.Unique != 1 || c.Legion != "" || strconv.Itoa(c.PID) != cpid ||
		c.StartedAt == 0 || len(c.Running) != 1 || c.Runs != 1 || c.Line != 4 || c.Option != "unique-cron" || c.Harakiri != 3600 {
		t.Errorf("crons: %+v (pid %s)", c, cpid)
	}

	p.reload("[uwsgi]\nstats = 127.0.0.1:0\nstats-http = true\nstats-min = true\nattach-daemon = exec sleep 1000\nunique-cron = -1 -1 -1 -1 -1 exec sleep 1001\n")
	p.await(control.MsgReady, true)
	addr := p.waitLog(`msg="stats server listening" vassal=t addr=(127\.0\.0\.1:\d+)`)[1]
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("the old socket file is still there: %v", err)
	}
	resp, err := (&http.Client{Timeout: hang}).Get("http://" + addr + "/anything")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("%d %v", resp.StatusCode, resp.Header)
	}
	var s2 vassalStats
	if err := json.Unmarshal(body, &s2); err != nil || strings.Contains(string(body), "\n") {
		t.Fatalf("minified JSON: %v %q", err, body)
	}
	// The reload kept the unique cron job's run and restarted the daemon.
	if len(s2.Crons) != 1 || strconv.Itoa(s2.Crons[0].PID) != cpid || s2.LoadedAt < s.LoadedAt {
		t.Errorf("after the reload: %+v", s2)
	}
	// A raw client gets the HTTP answer too once it sent its request.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(hang))
	conn.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
	status, _ := bufio.NewReader(conn).ReadString('\n')
	conn.Close()
	if status != "HTTP/1.0 200 OK\r\n" {
		t.Errorf("status line %q", status)
	}

	// Back to the unix socket, then stop: the file goes with the vassal.
	p.reload(first)
	p.await(control.MsgReady, true)
	readStats(t, "unix", sock)
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Error("the TCP stats address still accepts after the reload")
	}
	syscall.Kill(p.pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(hang):
		t.Fatal("the vassal did not stop")
	}
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("the socket file outlived the vassal: %v", err)
	}
}

// A stats address that cannot be listened on fails the start, naming it;
// a reload to one is refused and the old address keeps answering.
func TestStatsBadAddress(t *testing.T) {
	dir := t.TempDir()
	notSock := filepath.Join(dir, "file")
	os.WriteFile(notSock, nil, 0o644)
	sock := filepath.Join(dir, "s.sock")
	p := startPID1(t, "[uwsgi]\nstats = "+sock+"\n")
	p.reload("[uwsgi]\nstats = " + notSock + "\n")
	m := p.await(control.MsgRefuse, false)
	if !strings.Contains(m.Reason, "stats "+notSock+": "+notSock+" exists and is not a socket") {
		t.Fatalf("%+v", m)
	}
	readStats(t, "unix", sock)
}

// With an app, stats belongs to uWSGI: its stats server answers with its
// own document (the master's workers), and PID 1 opens nothing.
func TestStatsGoesToUWSGIWithAnApp(t *testing.T) {
	haveUWSGI(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "one.py"), []byte(fmt.Sprintf(testWSGI, "one")), 0o644)
	port, sport := freeTCPPort(t), freeTCPPort(t)
	p := startPID1(t, fmt.Sprintf("[uwsgi]\nchdir = %s\nhttp-socket = 127.0.0.1:%d\nmodule = one:application\nmaster = true\nprocesses = 2\nstats = 127.0.0.1:%d\nstats-http = true\n", dir, port, sport))
	if strings.Contains(p.log.String(), "stats server listening") {
		t.Fatal("PID 1 opened a stats server beside uWSGI's")
	}
	// uWSGI's master binds it in its loop, which may come after worker 1
	// accepts (the vassal's readiness): wait for the socket to accept.
	deadline := time.Now().Add(hang)
	for {
		c, err := net.Dial("tcp4", fmt.Sprintf("127.0.0.1:%d", sport))
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("uWSGI's stats server does not accept: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	resp, err := (&http.Client{Timeout: hang}).Get(fmt.Sprintf("http://127.0.0.1:%d/", sport))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var doc struct {
		Version string           `json:"version"`
		Workers []map[string]any `json:"workers"`
		Vassal  *string          `json:"vassal"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if !strings.HasPrefix(doc.Version, "2.0") || len(doc.Workers) != 2 || doc.Vassal != nil {
		t.Fatalf("not uWSGI's stats: %s", body)
	}
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
