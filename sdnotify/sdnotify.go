// Package sdnotify speaks systemd's service notification protocol
// (sd_notify(3)): newline-separated VAR=VALUE states in one datagram to the
// unix socket that $NOTIFY_SOCKET names. A unit of Type=notify is "started"
// at READY=1; WATCHDOG=1 keeps a unit with WatchdogSec= alive; RELOADING=1
// and STOPPING=1 say what the service is doing; STATUS= is shown by
// systemctl status.
package sdnotify

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The environment of the protocol. FromEnv removes them, as sd_notify's
// unset_environment does, so that no child of the service (a vassal, its
// daemons, a tenant's code) can speak for the service or read its socket.
const (
	envSocket       = "NOTIFY_SOCKET"
	envWatchdogUsec = "WATCHDOG_USEC"
	envWatchdogPID  = "WATCHDOG_PID"
)

// Notifier sends states to the service manager. A nil *Notifier sends
// nothing: the process was not started by one.
type Notifier struct {
	addr     *net.UnixAddr
	watchdog time.Duration
}

// FromEnv reads $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID and
// removes them from the environment. It returns nil and no error when
// there is no socket. A path socket must be absolute; "@name" is in the
// abstract namespace. The watchdog applies when WATCHDOG_PID is unset or is
// this process.
func FromEnv() (*Notifier, error) {
	sock, ok := os.LookupEnv(envSocket)
	usec, pid := os.Getenv(envWatchdogUsec), os.Getenv(envWatchdogPID)
	os.Unsetenv(envSocket)
	os.Unsetenv(envWatchdogUsec)
	os.Unsetenv(envWatchdogPID)
	if !ok || sock == "" {
		return nil, nil
	}
	if sock[0] != '/' && sock[0] != '@' {
		return nil, fmt.Errorf("%s=%q: want an absolute path or @abstract-name", envSocket, sock)
	}
	n := &Notifier{addr: &net.UnixAddr{Name: sock, Net: "unixgram"}}
	if usec != "" && (pid == "" || pid == strconv.Itoa(os.Getpid())) {
		u, err := strconv.ParseUint(usec, 10, 63)
		if err != nil || u == 0 {
			return nil, fmt.Errorf("%s=%q: want a positive number of microseconds", envWatchdogUsec, usec)
		}
		n.watchdog = time.Duration(u) * time.Microsecond
	}
	return n, nil
}

// Watchdog is WatchdogSec= (0: none). Send WATCHDOG=1 at half of it, from
// the loop whose liveness it vouches for.
func (n *Notifier) Watchdog() time.Duration {
	if n == nil {
		return 0
	}
	return n.watchdog
}

// Notify sends states, one VAR=VALUE each, in one datagram. A nil
// Notifier sends nothing.
func (n *Notifier) Notify(states ...string) error {
	if n == nil || len(states) == 0 {
		return nil
	}
	for _, s := range states {
		if strings.ContainsRune(s, '\n') || !strings.Contains(s, "=") {
			return fmt.Errorf("sd_notify state %q: want one VAR=VALUE line", s)
		}
	}
	// A socket per message: they are rare (start, reload, stop, the
	// watchdog every few seconds), and a service manager that re-created
	// its socket is reached again.
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("sd_notify to %s: %w", n.addr.Name, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(strings.Join(states, "\n") + "\n")); err != nil {
		return fmt.Errorf("sd_notify to %s: %w", n.addr.Name, err)
	}
	return nil
}

// Reloading is RELOADING=1 with MONOTONIC_USEC, which a unit of
// Type=notify-reload requires: the manager then waits for READY=1.
func Reloading() []string {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return []string{"RELOADING=1"}
	}
	return []string{"RELOADING=1", "MONOTONIC_USEC=" + strconv.FormatInt(ts.Nano()/1000, 10)}
}
