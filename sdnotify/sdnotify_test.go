package sdnotify

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func recv(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(time.Minute))
	b := make([]byte, 4096)
	n, err := c.Read(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(b[:n])
}

func TestFromEnvSendsAndUnsets(t *testing.T) {
	for _, name := range []string{filepath.Join(t.TempDir(), "notify"), "@emperor-sdnotify-test-" + strconv.Itoa(os.Getpid())} {
		c := listen(t, name)
		t.Setenv(envSocket, name)
		t.Setenv(envWatchdogUsec, "2000000")
		t.Setenv(envWatchdogPID, strconv.Itoa(os.Getpid()))
		n, err := FromEnv()
		if err != nil || n == nil {
			t.Fatalf("FromEnv: %v, %v", n, err)
		}
		for _, k := range []string{envSocket, envWatchdogUsec, envWatchdogPID} {
			if _, ok := os.LookupEnv(k); ok {
				t.Errorf("%s is still in the environment: a child would inherit it", k)
			}
		}
		if n.Watchdog() != 2*time.Second {
			t.Errorf("watchdog %v, want 2s", n.Watchdog())
		}
		if err := n.Notify("READY=1", "STATUS=governing 3 vassals"); err != nil {
			t.Fatal(err)
		}
		if got := recv(t, c); got != "READY=1\nSTATUS=governing 3 vassals\n" {
			t.Errorf("%s: got %q", name, got)
		}
		if err := n.Notify(Reloading()...); err != nil {
			t.Fatal(err)
		}
		if got := recv(t, c); !strings.HasPrefix(got, "RELOADING=1\nMONOTONIC_USEC=") {
			t.Errorf("%s: got %q", name, got)
		}
	}
}

func TestWatchdogForAnotherPID(t *testing.T) {
	t.Setenv(envSocket, filepath.Join(t.TempDir(), "notify"))
	t.Setenv(envWatchdogUsec, "2000000")
	t.Setenv(envWatchdogPID, strconv.Itoa(os.Getpid()+1))
	n, err := FromEnv()
	if err != nil || n.Watchdog() != 0 {
		t.Fatalf("watchdog %v (%v): WATCHDOG_PID names another process", n.Watchdog(), err)
	}
}

func TestNoSocketAndBadValues(t *testing.T) {
	os.Unsetenv(envSocket)
	if n, err := FromEnv(); n != nil || err != nil {
		t.Fatalf("no socket: %v, %v", n, err)
	}
	var none *Notifier
	if err := none.Notify("READY=1"); err != nil || none.Watchdog() != 0 {
		t.Fatal("a nil Notifier must do nothing")
	}
	t.Setenv(envSocket, "relative")
	if _, err := FromEnv(); err == nil || !strings.Contains(err.Error(), "NOTIFY_SOCKET") {
		t.Fatalf("relative socket path: %v", err)
	}
	t.Setenv(envSocket, "/x")
	t.Setenv(envWatchdogUsec, "soon")
	if _, err := FromEnv(); err == nil || !strings.Contains(err.Error(), "WATCHDOG_USEC") {
		t.Fatalf("bad WATCHDOG_USEC: %v", err)
	}
	n := &Notifier{addr: &net.UnixAddr{Name: "/x", Net: "unixgram"}}
	if err := n.Notify("READY=1\nMAINPID=1"); err == nil {
		t.Fatal("a state with a newline must be refused")
	}
}
