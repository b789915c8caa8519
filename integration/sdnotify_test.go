package integration

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// notifyListener is a service manager's notification socket: every
// datagram the emperor sends arrives on msgs.
type notifyListener struct {
	path string
	msgs chan string
}

func listenNotify(t *testing.T) *notifyListener {
	t.Helper()
	n := &notifyListener{path: filepath.Join(t.TempDir(), "notify"), msgs: make(chan string, 256)}
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: n.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		b := make([]byte, 4096)
		for {
			k, err := c.Read(b)
			if err != nil {
				close(n.msgs)
				return
			}
			n.msgs <- string(b[:k])
		}
	}()
	return n
}

// expect waits for a datagram that has every line of want, skipping others
// (the watchdog's, a STATUS= update), and returns it.
func (n *notifyListener) expect(t *testing.T, want ...string) string {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		select {
		case m, ok := <-n.msgs:
			if !ok {
				t.Fatalf("notification socket closed waiting for %q", want)
			}
			lines := strings.Split(strings.TrimSuffix(m, "\n"), "\n")
			all := true
			for _, w := range want {
				found := false
				for _, l := range lines {
					found = found || l == w
				}
				all = all && found
			}
			if all {
				return m
			}
		case <-deadline:
			t.Fatalf("no notification with %q", want)
		}
	}
}

// environHas says whether pid's environment has the variable key.
func environHas(t *testing.T, pid int, key string) bool {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range strings.Split(string(b), "\x00") {
		if strings.HasPrefix(kv, key+"=") {
			return true
		}
	}
	return false
}

// Started by a service manager (Type=notify), the emperor says READY=1
// after its first scan, keeps STATUS= to the count of its vassals, feeds
// the watchdog, says RELOADING=1 then READY=1 on SIGHUP and STOPPING=1 on
// SIGTERM; the socket and the watchdog variables never reach a vassal.
func TestSystemdNotify(t *testing.T) {
	n := listenNotify(t)
	e := startEmperorCmd(t, func(c *exec.Cmd) {
		c.Env = append(os.Environ(), "NOTIFY_SOCKET="+n.path, "WATCHDOG_USEC=400000")
	})
	n.expect(t, "READY=1", "STATUS=governing 0 vassals")
	e.install("notified", "[uwsgi]\nattach-daemon = exec sleep 1000\n")
	n.expect(t, "STATUS=governing 1 vassals")
	v := e.waitState("notified", "running", time.Minute)
	var sleeper []int
	waitFor(t, time.Minute, "the daemon", func() bool {
		sleeper = pidsInNSNamed(pidNamespace(v.PID), "sleep")
		return len(sleeper) == 1
	})
	for _, pid := range []int{v.PID, sleeper[0]} {
		for _, k := range []string{"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"} {
			if environHas(t, pid, k) {
				t.Errorf("process %d of the vassal has %s in its environment", pid, k)
			}
		}
	}
	n.expect(t, "WATCHDOG=1")
	if err := e.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if m := n.expect(t, "RELOADING=1"); !strings.Contains(m, "MONOTONIC_USEC=") {
		t.Errorf("RELOADING=1 without MONOTONIC_USEC: %q", m)
	}
	n.expect(t, "READY=1", "STATUS=governing 1 vassals")
	if code := e.stop(); code != 0 {
		t.Fatalf("emperor exited %d", code)
	}
	n.expect(t, "STOPPING=1")
}
