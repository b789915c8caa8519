package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// inStatfs says whether a thread of pid is blocked in statfs(2)
// (/proc/PID/task/TID/syscall starts with the syscall's number).
func inStatfs(pid int) bool {
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/syscall", pid, task.Name()))
		if err != nil {
			continue
		}
		if f := strings.Fields(string(b)); len(f) > 0 && f[0] == strconv.Itoa(unix.SYS_STATFS) {
			return true
		}
	}
	return false
}

// The tenant's own unmount at exit (exec-as-user-atexit = fusermount -u, the
// tutorial's zip-atexit vassal) never fails with EBUSY because of
// mountpoint-check: a statfs(2) in flight holds a reference to the mount, so
// the checker stops, and the statfs in flight returns, before the hooks run.
func TestAtexitUnmountNotBusy(t *testing.T) {
	fuseForUsers(t)
	user, _, _, dir, zipPath, mnt := tenantZip(t, "emptbusy")
	marks := filepath.Join(dir, "marks")
	if err := os.WriteFile(marks, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	os.Chmod(marks, 0o666)
	e := startEmperor(t)
	vassal := func(interval string) string {
		return fmt.Sprintf(`[uwsgi]
uid = %s
gid = %s
exec-as-user = fuse-zip -r %s %s
attach-daemon = exec sleep 1000
mountpoint-check = %s
check-interval = %s
mountpoint-check-timeout = 600
exec-as-user-atexit = fusermount -u %s
exec-as-user-atexit = grep -q ' %s ' /proc/self/mountinfo || echo unmounted >> %s
`, user, user, zipPath, mnt, mnt, interval, mnt, mnt, marks)
	}
	unmounts := func() int {
		b, _ := os.ReadFile(marks)
		return strings.Count(string(b), "unmounted\n")
	}
	// checkStopped waits for the vassal to leave the table; the hooks' marks
	// then say whether the unmount succeeded.
	checkStopped := func(t *testing.T, round int) {
		t.Helper()
		waitFor(t, time.Minute, "the vassal to go", func() bool { _, ok := e.vassal("busy"); return !ok })
		if failed := strings.Contains(e.log.String(), "as-user-atexit hook failed"); failed || unmounts() != round {
			t.Fatalf("round %d: %d successful unmounts, an atexit hook failed: %v", round, unmounts(), failed)
		}
	}
	// stop removes the vassal file and waits for the vassal to leave the
	// table; the hooks' marks then say whether the unmount succeeded.
	stop := func(t *testing.T, path string, round int) {
		t.Helper()
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		checkStopped(t, round)
		if left := mountSeenAnywhere(mnt); len(left) > 0 {
			t.Fatalf("round %d: %s still mounted for %v", round, mnt, left)
		}
	}
	round := 0

	// The fault for certain: fuse-zip stopped, a statfs of the checker
	// blocked in it, then the vassal is stopped. The old code ran
	// fusermount -u with that statfs in flight: EBUSY.
	t.Run("a statfs in flight at stop", func(t *testing.T) {
		for i := 0; i < 3; i++ {
			path := e.install("busy", vassal("10ms"))
			v := e.waitState("busy", "running", time.Minute)
			var fz []int
			waitFor(t, time.Minute, "fuse-zip in the vassal", func() bool {
				fz = pidsInNSNamed(pidNamespace(v.PID), "fuse-zip")
				return len(fz) == 1
			})
			if err := syscall.Kill(fz[0], syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			waitFor(t, time.Minute, "a statfs blocked in PID 1", func() bool { return inStatfs(v.PID) })
			waiting := strings.Count(e.log.String(), "waiting for a statfs in flight")
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			waitFor(t, time.Minute, "the stop to wait for the statfs (or the hook to fail)", func() bool {
				l := e.log.String()
				return strings.Count(l, "waiting for a statfs in flight") > waiting || strings.Contains(l, "as-user-atexit hook failed")
			})
			syscall.Kill(fz[0], syscall.SIGCONT)
			round++
			checkStopped(t, round)
		}
	})

	if t.Failed() {
		return
	}
	// Stop and start again and again with the shortest check-interval.
	t.Run("30 stops with a check every 10 ms", func(t *testing.T) {
		for i := 0; i < 30; i++ {
			path := e.install("busy", vassal("10ms"))
			e.waitState("busy", "running", time.Minute)
			round++
			stop(t, path, round)
		}
	})
	if strings.Contains(e.log.String(), "EBUSY") || strings.Contains(e.log.String(), "Device or resource busy") {
		t.Fatal("an unmount failed with EBUSY")
	}
}
