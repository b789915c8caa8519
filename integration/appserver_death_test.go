package integration

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// appVassalForDeath starts an emperor (with config) running one app vassal:
// a WSGI app on a uwsgi-protocol socket, master and 2 workers, each in its
// accept loop. It returns the emperor, PID 1, every uwsgi process of the
// vassal (master first) and the port.
func appVassalForDeath(t *testing.T, config ...string) (e *emperorProc, pid1 int, procs []int, port int) {
	t.Helper()
	return appVassalModelForDeath(t, true, config...)
}

// appVassalModelForDeath is appVassalForDeath with or without uWSGI's
// master (without: the first process forks the second worker itself).
func appVassalModelForDeath(t *testing.T, master bool, config ...string) (e *emperorProc, pid1 int, procs []int, port int) {
	t.Helper()
	requireRoot(t)
	requireAppServer(t, "python3")
	name, _, _ := testUser(t, "empdie")
	dir := publicDir(t)
	writeWSGIApp(t, dir, "v1")
	port = freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	e = startEmperor(t, config...)
	e.install("app", fmt.Sprintf(`[uwsgi]
uid = %[1]s
gid = %[1]s
chdir = %[2]s
module = app:application
master = %[4]v
processes = 2
socket = %[3]s
`, name, dir, addr, master))
	v := e.waitState("app", "running", time.Minute)
	if code, body, err := uwsgiGet(addr, "/"); err != nil || code != 200 || !strings.HasPrefix(body, "v1 ") {
		t.Fatalf("uwsgi GET /: %d %q %v", code, body, err)
	}
	first := appMaster(t, v.PID)
	if master {
		procs = append([]int{first}, waitWorkersAccepting(t, first, 2)...)
	} else {
		procs = append([]int{first}, waitWorkersAccepting(t, first, 1)...)
	}
	// If the test fails, leave nothing behind: end what is left of the
	// processes it saw, by pid.
	t.Cleanup(func() {
		for _, pid := range append([]int{v.PID}, procs...) {
			if p, ok := readProc(pid); ok && (p.comm == "uwsgi" || pid == v.PID) && !strings.HasPrefix(p.state, "Z") {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	return e, v.PID, procs, port
}

// killEmperor SIGKILLs the emperor by its pid and waits until it is dead of
// that signal and every process that shares its output (its vassals' PID
// 1s) has exited (exec.Cmd's wait ends when the output pipe closes). It
// returns the length of the log before the kill.
func killEmperor(t *testing.T, e *emperorProc) int {
	t.Helper()
	mark := len(e.log.String())
	if err := syscall.Kill(e.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-e.exited
	ws, ok := e.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the emperor ended with %v, not by SIGKILL", e.cmd.ProcessState)
	}
	return mark
}

// requireNothingStartedAfter fails if the log after mark says that PID 1
// started a process: once the emperor is dead its vassal only ends, and a
// process started then (an app server loading its app, running its hooks)
// races the kill of everything.
func requireNothingStartedAfter(t *testing.T, e *emperorProc, mark int) {
	t.Helper()
	for _, line := range strings.Split(e.log.String()[mark:], "\n") {
		if strings.Contains(line, `msg="app server started"`) || strings.Contains(line, `msg="daemon started"`) {
			t.Fatalf("PID 1 started a process after the emperor's death:\n%s", line)
		}
	}
}

// The emperor's death takes the app server down: SIGKILL the emperor and
// the vassal's PID 1, the uWSGI master and its workers are gone, nothing is
// left in the vassal's pid namespace, and the port is free.
func TestAppServerDiesWithEmperorSIGKILL(t *testing.T) {
	e, pid1, procs, port := appVassalForDeath(t)
	ns := pidNamespace(pid1)
	if ns == pidNamespace(os.Getpid()) {
		t.Fatal("the vassal shares the host's pid namespace")
	}
	killEmperor(t, e)
	waitPidsGone(t, "PID 1, the uWSGI master and its workers", append([]int{pid1}, procs...))
	waitGone(t, ns)
	requirePortFreed(t, port)
}

// Without namespaces (emperor-use-clone = none) no kernel takes the
// vassal down with its PID 1: PID 1 dies by its parent-death signal, the
// uWSGI master by the one PID 1 gave it, and the workers by uWSGI's
// no-orphans. Nothing of the vassal is left, and the port is free.
func TestAppServerDiesWithEmperorSIGKILLWithoutNamespaces(t *testing.T) {
	e, pid1, procs, port := appVassalForDeath(t, "emperor-use-clone = none")
	if pidNamespace(pid1) != pidNamespace(os.Getpid()) {
		t.Fatal("emperor-use-clone = none, yet the vassal has a pid namespace of its own")
	}
	mark := killEmperor(t, e)
	waitPidsGone(t, "PID 1, the uWSGI master and its workers", append([]int{pid1}, procs...))
	requirePortFreed(t, port)
	requireNothingStartedAfter(t, e, mark)
}

// The same without uWSGI's master (processes = 2: the first process forks
// the second worker itself, and uWSGI's no-orphans applies only with a
// master): every process of the app server dies with the emperor, the
// port is free, and PID 1 starts no new app server while it exits.
func TestAppServerNoMasterDiesWithEmperorSIGKILLWithoutNamespaces(t *testing.T) {
	e, pid1, procs, port := appVassalModelForDeath(t, false, "emperor-use-clone = none")
	mark := killEmperor(t, e)
	waitPidsGone(t, "PID 1 and both uWSGI processes", append([]int{pid1}, procs...))
	requirePortFreed(t, port)
	requireNothingStartedAfter(t, e, mark)
}

// SIGTERM to the emperor with an app vassal running: a clean stop (the app
// server shuts down on its SIGINT, needing no SIGKILL after reload-mercy,
// and PID 1 exits by itself), the emperor exits 0, and nothing is left.
func TestAppServerStopsWithEmperorSIGTERM(t *testing.T) {
	e, pid1, procs, port := appVassalForDeath(t)
	ns := pidNamespace(pid1)
	if err := syscall.Kill(e.cmd.Process.Pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-e.exited:
	case <-time.After(hangTimeout):
		t.Fatal("the emperor did not exit after SIGTERM")
	}
	if code := e.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("the emperor exited with %v, want 0", e.cmd.ProcessState)
	}
	log := e.log.String()
	for _, bad := range []string{"ignored SIGINT", "still there after SIGKILL", "still running after reload-mercy", "SIGKILL"} {
		if strings.Contains(log, bad) {
			t.Fatalf("the stop was not clean: the log says %q", bad)
		}
	}
	for _, want := range []string{`msg="app server stopped"`, `msg="vassal stopped" vassal=app pid=` + fmt.Sprint(pid1) + ` status="exit status 0"`, `msg="emperor stopped"`} {
		if !strings.Contains(log, want) {
			t.Fatalf("the log lacks %s", want)
		}
	}
	waitPidsGone(t, "PID 1, the uWSGI master and its workers", append([]int{pid1}, procs...))
	waitGone(t, ns)
	requirePortFreed(t, port)
}
