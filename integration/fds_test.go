package integration

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Descriptors that PID 1 opens for itself never reach a tenant's daemon.
// libgfapi is C code, outside Go's O_CLOEXEC discipline: it holds sockets
// to glusterd and the bricks, and its copy of the log pipe, without
// close-on-exec. A daemon started after the volume connected (here: after a
// reload) must still hold only 0, 1 and 2.
func TestGlusterDescriptorsDoNotReachDaemons(t *testing.T) {
	g := glusterd(t)
	vol := g.volume(t, func(d string) { os.WriteFile(d+"/hello.txt", []byte("hello\n"), 0o644) })
	e := startEmperor(t)
	port := freePort(t)
	path := e.install("fds", glusterVassal(port,
		fmt.Sprintf("glusterfs-mount = mountpoint=/,volume=%s,server=127.0.0.1:0", vol),
		"attach-daemon = sleep 100000"))
	e.waitMounts("fds", hangTimeout)
	v := e.waitState("fds", "running", hangTimeout)
	// The fault is in place: PID 1 holds descriptors that an exec would
	// pass on. The vassal is ready before libgfapi has connected to the
	// volume (and opened its sockets), so wait for them.
	waitFor(t, hangTimeout, fmt.Sprintf("PID 1 (%d) to hold libgfapi's descriptors without close-on-exec", v.PID), func() bool {
		return len(inheritableFDs(t, v.PID)) > 0
	})
	first := daemonPid(v.PID, 0)
	now := time.Now()
	if err := os.Chtimes(path, now, now); err != nil { // a reload restarts the daemon
		t.Fatal(err)
	}
	var second int
	waitFor(t, hangTimeout, "the daemon restarted by the reload", func() bool {
		second = daemonPid(v.PID, first)
		return second != 0
	})
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", second))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ent := range ents {
		names = append(names, ent.Name())
	}
	sort.Strings(names)
	if got := strings.Join(names, " "); got != "0 1 2" {
		t.Fatalf("the daemon (pid %d) holds descriptors %s, want 0 1 2", second, got)
	}
}

// daemonPid is the pid of the vassal's sleep daemon other than not, or 0.
func daemonPid(pid1, not int) int {
	for _, p := range descendants(pid1) {
		if p.comm == "sleep" && p.pid != not {
			return p.pid
		}
	}
	return 0
}

// inheritableFDs lists pid's descriptors above 2 without FD_CLOEXEC.
func inheritableFDs(t *testing.T, pid int) []int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fdinfo", pid))
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, ent := range ents {
		fd, err := strconv.Atoi(ent.Name())
		if err != nil || fd <= 2 {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/%d", pid, fd))
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			var flags int
			// flags are octal; O_CLOEXEC is 02000000.
			if _, err := fmt.Sscanf(l, "flags: %o", &flags); err == nil && flags&0o2000000 == 0 {
				out = append(out, fd)
			}
		}
	}
	return out
}
