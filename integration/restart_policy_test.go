package integration

import (
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// An attached daemon that became ready (it ran 1 s) and is killed is
// respawned at once, and again when killed a second time: the burst of the
// restart policy. (The old daemon backoff waited 1 s and then 2 s.)
func TestDaemonKilledTwiceRespawnsAtOnce(t *testing.T) {
	e := startEmperor(t)
	e.install("d", "[uwsgi]\nattach-daemon = exec sleep 1000\n")
	e.waitState("d", "running", time.Minute)
	started := regexp.MustCompile(`msg="daemon started" vassal=d attach-daemon="[^"]*" pid=(\d+)`)
	count := func(s string) int { return strings.Count(e.log.String(), s) }
	for kill := 1; kill <= 2; kill++ {
		waitFor(t, time.Minute, "the daemon ready", func() bool {
			return count(`msg="daemon ready" vassal=d`) >= kill
		})
		all := started.FindAllStringSubmatch(e.log.String(), -1)
		pid, _ := strconv.Atoi(all[len(all)-1][1])
		// The daemon's pid is in the vassal's PID namespace: find it on
		// the host by its namespace and name.
		v, _ := e.vassal("d")
		hostPids := pidsInNSNamed(pidNamespace(v.PID), "sleep")
		if len(hostPids) != 1 {
			t.Fatalf("kill %d: sleep in the vassal: %v (pid %d inside)", kill, hostPids, pid)
		}
		if err := syscall.Kill(hostPids[0], syscall.SIGKILL); err != nil {
			t.Fatalf("kill %d: %v", hostPids[0], err)
		}
		waitFor(t, time.Minute, "the daemon respawned", func() bool {
			return count(`msg="daemon started" vassal=d`) >= kill+1
		})
	}
	if n := count(`msg="respawning daemon" vassal=d`); n != 0 {
		t.Fatalf("%d respawns waited; a ready daemon's first failures respawn at once", n)
	}
	if v, _ := e.vassal("d"); v.Restarts != 0 {
		t.Fatalf("the vassal was restarted %d times", v.Restarts)
	}
}
