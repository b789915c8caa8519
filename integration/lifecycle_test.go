package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func httpdVassal(t *testing.T, port int, extra ...string) string {
	t.Helper()
	www := publicDir(t)
	os.WriteFile(filepath.Join(www, "hello.txt"), []byte("hello from vassal\n"), 0o644)
	return fmt.Sprintf("[uwsgi]\nattach-daemon = busybox httpd -f -p 127.0.0.1:%d -h %s\n%s\n", port, www, strings.Join(extra, "\n"))
}

func TestSpawnOnCreate(t *testing.T) {
	requireBinary(t, "busybox")
	user, uid, _ := testUser(t, "emptspawn") // before the emperor: removed after it
	e := startEmperor(t)
	port := freePort(t)
	e.install("app", httpdVassal(t, port, "uid = "+user, "gid = "+user))
	body := waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/hello.txt", port), time.Minute)
	if body != "hello from vassal\n" {
		t.Fatalf("body %q", body)
	}
	v := e.waitState("app", "running", time.Minute)
	p, ok := readProc(v.PID)
	if !ok {
		t.Fatal("vassal pid not found")
	}
	// PID 1 of its own namespace, and in a mount namespace of its own.
	if len(p.nspid) != 2 || p.nspid[1] != 1 {
		t.Fatalf("vassal NSpid = %v, want [host 1]", p.nspid)
	}
	if pidNamespace(v.PID) == pidNamespace(os.Getpid()) {
		t.Fatal("vassal shares the host pid namespace")
	}
	host, _ := os.Readlink("/proc/self/ns/mnt")
	mine, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", v.PID))
	if host == mine {
		t.Fatal("vassal shares the host mount namespace")
	}
	// The privilege drop reached PID 1 and the daemons.
	for _, d := range append(descendants(v.PID), p) {
		if d.uid != uid {
			t.Fatalf("process %d (%s) runs as uid %d, want %s (%d)", d.pid, d.comm, d.uid, user, uid)
		}
	}
	if v.Namespaces != "fs,pid" {
		t.Fatalf("namespaces %q", v.Namespaces)
	}
}

// A touched file reloads in place: the same PID 1, a restarted daemon, and
// not one failed request while it happens (the shared socket stays open in
// PID 1, so connections queue while the daemon restarts).
func TestReloadOnTouchKeepsPID1AndLosesNoRequest(t *testing.T) {
	e := startEmperor(t)
	port := freePort(t)
	self, _ := os.Executable()
	path := e.install("app", fmt.Sprintf("[uwsgi]\nshared-socket = 127.0.0.1:%d\nenv = EMPEROR_TEST_HTTPD=1\nattach-daemon = exec %s\n", port, self))
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	first := waitHTTP(t, url, time.Minute)
	before := e.waitState("app", "running", time.Minute)

	l := startLoad(url)
	l.waitAnswers(t, 10)
	now := time.Now()
	os.Chtimes(path, now, now)
	var after string
	waitFor(t, time.Minute, "a new daemon after the reload", func() bool {
		_, b, err := get(url)
		after = b
		return err == nil && b != first
	})
	l.waitAnswers(t, 10)
	l.end(t)
	v := e.waitState("app", "running", time.Minute)
	if v.PID != before.PID {
		t.Fatalf("PID 1 changed on reload: %d -> %d", before.PID, v.PID)
	}
	if v.Restarts != 0 {
		t.Fatalf("reload counted as restart: %+v", v)
	}
	if !strings.Contains(e.log.String(), "reloading vassal in place") {
		t.Fatal("no reload in the log")
	}
	t.Logf("%d requests, none failed; daemon %q -> %q", l.ok.Load(), strings.TrimSpace(first), strings.TrimSpace(after))
}

// Deleting the file stops the vassal: no process of it and no mount of its
// namespace remains anywhere, and the host never saw its mount.
func TestStopOnDeleteLeavesNothing(t *testing.T) {
	e := startEmperor(t)
	mnt := t.TempDir()
	path := e.install("app", fmt.Sprintf("[uwsgi]\nattach-daemon = mount -t tmpfs emperor-test %s && touch %s/inside && exec sleep 1000\nattach-daemon = sh -c 'sleep 1000 & sleep 1000 & wait'\n", mnt, mnt))
	v := e.waitState("app", "running", time.Minute)
	waitFor(t, time.Minute, "the vassal's tmpfs mount", func() bool {
		return len(mountSeenAnywhere(mnt)) > 0
	})
	if _, err := os.Stat(filepath.Join(mnt, "inside")); err == nil {
		t.Fatal("the host sees a file of the vassal's mount: the mount propagated")
	}
	ns := pidNamespace(v.PID)
	if n := len(procsInNamespace(ns)); n < 4 {
		t.Fatalf("only %d processes in the vassal namespace", n)
	}
	for _, pid := range mountSeenAnywhere(mnt) {
		if pidNamespace(pid) != ns {
			t.Fatalf("pid %d outside the vassal sees its mount", pid)
		}
	}
	os.Remove(path)
	waitFor(t, time.Minute, "the vassal to leave the table", func() bool {
		_, ok := e.vassal("app")
		return !ok
	})
	if left := procsInNamespace(ns); len(left) != 0 {
		t.Fatalf("processes left in the vassal's pid namespace: %v", left)
	}
	if left := mountSeenAnywhere(mnt); len(left) != 0 {
		t.Fatalf("mount %s still seen by pids %v", mnt, left)
	}
	if kids := descendants(e.cmd.Process.Pid); len(kids) != 0 {
		t.Fatalf("emperor still has children: %+v", kids)
	}
}

// A vassal that never becomes ready waits longer each time from its second
// failure; one that became ready is restarted at once for its first
// failures (the burst), and status shows the decayed failure count.
func TestRespawnWithBackoff(t *testing.T) {
	// A half-life of a day: the failure counts checked below must not
	// depend on how fast a busy machine gets through the restarts.
	e := startEmperor(t, "emperor-throttle = 200", "emperor-max-throttle = 800", "emperor-restart-burst = 2", "emperor-restart-half-life = 86400")
	dir := t.TempDir()
	// The vassal fails at start (chdir into a missing directory) until the
	// directory exists.
	e.install("crash", fmt.Sprintf("[uwsgi]\nchdir = %s/missing\nattach-daemon = exec sleep 1000\n", dir))
	waitFor(t, time.Minute, "5 restarts", func() bool {
		v, _ := e.vassal("crash")
		return v.Restarts >= 5
	})
	v, _ := e.vassal("crash")
	if !strings.Contains(v.LastExit, "chdir") {
		t.Fatalf("last exit %q does not say why", v.LastExit)
	}
	re := regexp.MustCompile(`msg="vassal died" vassal=crash .*restart_in=(\S+)`)
	var delays []time.Duration
	for _, m := range re.FindAllStringSubmatch(e.log.String(), -1) {
		d, err := time.ParseDuration(m[1])
		if err != nil {
			t.Fatal(err)
		}
		delays = append(delays, d)
	}
	want := []time.Duration{0, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, 800 * time.Millisecond}
	if len(delays) < len(want) {
		t.Fatalf("delays %v", delays)
	}
	for i, w := range want {
		if delays[i] != w {
			t.Fatalf("backoff sequence %v, want it to start %v", delays, want)
		}
	}
	// Healed, it runs; status shows the failures it has not lived down.
	os.Mkdir(filepath.Join(dir, "missing"), 0o755)
	v = e.waitState("crash", "running", time.Minute)
	if v.Failures < 4.5 {
		t.Fatalf("status shows %.2f failures after %d", v.Failures, v.Restarts)
	}
	// A vassal that became ready, killed: within the burst (2) its
	// restarts are immediate; the third failure is above it and waits the
	// throttle.
	e.install("ready", "[uwsgi]\nattach-daemon = exec sleep 1000\n")
	v = e.waitState("ready", "running", time.Minute)
	re = regexp.MustCompile(`msg="vassal died" vassal=ready .*restart_in=(\S+)`)
	for i, want := range []string{"0s", "0s", "200ms"} {
		if err := syscall.Kill(v.PID, syscall.SIGKILL); err != nil {
			t.Fatalf("kill %d: %v", v.PID, err)
		}
		old := v.PID
		waitFor(t, time.Minute, "a new PID 1, running", func() bool {
			v, _ = e.vassal("ready")
			return v.PID != 0 && v.PID != old && v.State == "running"
		})
		all := re.FindAllStringSubmatch(e.log.String(), -1)
		if last := all[len(all)-1][1]; last != want {
			t.Fatalf("kill %d of a ready vassal: restart waited %s, want %s", i+1, last, want)
		}
		if v.Failures < float64(i)+0.9 || v.Failures > float64(i+1) {
			t.Fatalf("kill %d: status shows %.2f failures", i+1, v.Failures)
		}
	}
}

// The emperor dies by SIGKILL: every vassal and every process in its
// namespace dies with it, including double-forked ones.
func TestEmperorSIGKILLLeavesNoOrphans(t *testing.T) {
	e := startEmperor(t)
	var nss []string
	for i := 0; i < 3; i++ {
		name := fmt.Sprintf("v%d", i)
		e.install(name, "[uwsgi]\nattach-daemon = sh -c '(setsid sleep 1000 &) ; sleep 1000'\n")
	}
	for i := 0; i < 3; i++ {
		v := e.waitState(fmt.Sprintf("v%d", i), "running", time.Minute)
		nss = append(nss, pidNamespace(v.PID))
	}
	waitFor(t, time.Minute, "daemons", func() bool { return len(procsInNamespace(nss[2])) >= 4 })
	e.cmd.Process.Kill()
	<-e.exited
	waitFor(t, time.Minute, "every vassal process to die", func() bool {
		for _, ns := range nss {
			if len(procsInNamespace(ns)) > 0 {
				return false
			}
		}
		return true
	})
}

// A daemon that double-forks and exits leaves orphans to PID 1, which reaps
// them; the daemons' own exit statuses are not stolen by the reaper.
func TestZombiesAreReaped(t *testing.T) {
	e := startEmperor(t)
	e.install("z", "[uwsgi]\nattach-daemon = sh -c 'for i in 1 2 3 4 5 6 7 8; do (sleep 0.1 &) ; done; sleep 0.5; exit 7'\n")
	v := e.waitState("z", "running", time.Minute)
	waitFor(t, time.Minute, "the daemon's exit status 7 in the log, twice", func() bool {
		return strings.Count(e.log.String(), "status=\"exit status 7\"") >= 2
	})
	// Orphans reparented to PID 1 must be reaped: gone from /proc, not
	// zombies for ever.
	var orphans []int
	waitFor(t, time.Minute, "orphaned sleeps under PID 1", func() bool {
		orphans = nil
		for _, p := range allProcs() {
			if p.ppid == v.PID && p.comm == "sleep" {
				orphans = append(orphans, p.pid)
			}
		}
		return len(orphans) > 0
	})
	waitFor(t, time.Minute, fmt.Sprintf("the orphans %v to be reaped", orphans), func() bool {
		for _, pid := range orphans {
			if p, ok := readProc(pid); ok && p.ppid == v.PID {
				return false
			}
		}
		return true
	})
	if n, _ := e.vassal("z"); n.PID != v.PID {
		t.Fatal("PID 1 changed")
	}
}

// A malformed file is reported (log and status, with file:line) and leaves
// the other vassals alone; fixing it starts it.
func TestMalformedFileLeavesOthersRunning(t *testing.T) {
	requireBinary(t, "busybox")
	e := startEmperor(t)
	port := freePort(t)
	e.install("good", httpdVassal(t, port))
	good := e.waitState("good", "running", time.Minute)
	path := e.install("bad", "[uwsgi]\nattach-daemon = sleep 100\nif-not-reload =\nattach-deamon = typo\n")
	v := e.waitState("bad", "failed-config", time.Minute)
	if !strings.Contains(v.ConfigError, path+":3:") || !strings.Contains(v.ConfigError, path+":4:") || !strings.Contains(v.ConfigError, "did you mean") {
		t.Fatalf("config error %q", v.ConfigError)
	}
	// The log reaches us through a pipe, so it may trail the status.
	waitFor(t, time.Minute, "the config error in the log", func() bool {
		return strings.Contains(e.log.String(), path+":4: unknown option")
	})
	waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/hello.txt", port), time.Minute)
	if g, _ := e.vassal("good"); g.PID != good.PID || g.State != "running" {
		t.Fatalf("good vassal disturbed: %+v", g)
	}
	out, err := exec.Command(emperorBin, "status", "--control", e.control).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "failed-config") {
		t.Fatalf("status: %v\n%s", err, out)
	}
	e.install("bad", "[uwsgi]\nattach-daemon = exec sleep 100\n")
	e.waitState("bad", "running", time.Minute)
	// A running vassal whose file breaks keeps running on its last good config.
	e.install("bad", "[uwsgi]\nbogus = 1\n")
	waitFor(t, time.Minute, "config error on the running vassal", func() bool {
		v, _ := e.vassal("bad")
		return v.ConfigError != "" && v.State == "running"
	})
}

// Changing what cannot change in place (uid) restarts the vassal, and the
// log says why.
func TestReloadWithUIDChangeRestarts(t *testing.T) {
	u1, _, _ := testUser(t, "emptuida") // before the emperor: removed after it
	u2, uid2, _ := testUser(t, "emptuidb")
	e := startEmperor(t)
	e.install("u", "[uwsgi]\nuid = "+u1+"\nattach-daemon = exec sleep 1000\n")
	v1 := e.waitState("u", "running", time.Minute)
	e.install("u", "[uwsgi]\nuid = "+u2+"\nattach-daemon = exec sleep 1000\n")
	waitFor(t, time.Minute, "a new PID 1", func() bool {
		v, _ := e.vassal("u")
		return v.State == "running" && v.PID != v1.PID && v.PID != 0
	})
	if !strings.Contains(e.log.String(), "uid changed") {
		t.Fatal("the log does not say why the vassal restarted")
	}
	v2, _ := e.vassal("u")
	if p, _ := readProc(v2.PID); p.uid != uid2 {
		t.Fatalf("new vassal runs as uid %d, want %s (%d)", p.uid, u2, uid2)
	}
}

// SIGHUP reloads every vassal in place; SIGTERM stops all and exits 0.
func TestSignals(t *testing.T) {
	e := startEmperor(t)
	var pids []int
	for i := 0; i < 3; i++ {
		e.install(fmt.Sprintf("s%d", i), "[uwsgi]\nattach-daemon = exec sleep 1000\n")
	}
	var nss []string
	for i := 0; i < 3; i++ {
		v := e.waitState(fmt.Sprintf("s%d", i), "running", time.Minute)
		pids = append(pids, v.PID)
		nss = append(nss, pidNamespace(v.PID))
	}
	e.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, time.Minute, "3 reloads", func() bool {
		return strings.Count(e.log.String(), "msg=\"vassal reloaded\" vassal=") >= 3
	})
	for i := 0; i < 3; i++ {
		v := e.waitState(fmt.Sprintf("s%d", i), "running", time.Minute)
		if v.PID != pids[i] {
			t.Fatalf("SIGHUP changed PID 1 of s%d", i)
		}
	}
	if code := e.stop(); code != 0 {
		t.Fatalf("emperor exit code %d after SIGTERM", code)
	}
	for _, ns := range nss {
		if left := procsInNamespace(ns); len(left) > 0 {
			t.Fatalf("left after SIGTERM: %v", left)
		}
	}
	if _, err := os.Stat(e.control); err == nil {
		t.Fatal("control socket left behind")
	}
}

func TestHundredVassals(t *testing.T) {
	e := startEmperor(t)
	const n = 100
	emp := e.cmd.Process.Pid
	fds0, thr0 := fdCount(emp), threadCount(emp)
	for i := 0; i < n; i++ {
		e.install(fmt.Sprintf("h%03d", i), "[uwsgi]\nattach-daemon = exec sleep 1000\n")
	}
	waitFor(t, 60*time.Second, "100 running vassals", func() bool {
		running := 0
		for _, v := range e.status() {
			if v.State == "running" {
				running++
			}
		}
		return running == n
	})
	// What docs/emperor.md promises: two fds (control socket, pidfd) and
	// no thread per vassal, whose waits park in the netpoller.
	fds1, thr1 := fdCount(emp), threadCount(emp)
	t.Logf("emperor with %d vassals: fds %d -> %d, threads %d -> %d", n, fds0, fds1, thr0, thr1)
	if fds1-fds0 > 2*n+8 {
		t.Fatalf("emperor fds %d -> %d for %d vassals: more than 2 each", fds0, fds1, n)
	}
	if thr1-thr0 > 12 {
		t.Fatalf("emperor threads %d -> %d for %d vassals: threads grow with vassals", thr0, thr1, n)
	}
	var nss []string
	for _, v := range e.status() {
		nss = append(nss, pidNamespace(v.PID))
	}
	for i := 0; i < n; i++ {
		os.Remove(filepath.Join(e.dir, fmt.Sprintf("h%03d.ini", i)))
	}
	waitFor(t, 60*time.Second, "an empty table", func() bool { return len(e.status()) == 0 })
	for _, ns := range nss {
		if left := procsInNamespace(ns); len(left) > 0 {
			t.Fatalf("left: %v", left)
		}
	}
	if kids := descendants(e.cmd.Process.Pid); len(kids) != 0 {
		t.Fatalf("emperor still has %d children", len(kids))
	}
}

// emperor run runs one vassal in the foreground and stops it on SIGINT.
func TestRunCommand(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "one.ini")
	os.WriteFile(path, []byte("[uwsgi]\nattach-daemon = exec sleep 1000\n"), 0o644)
	cmd := exec.Command(emperorBin, "run", path)
	log := &logBuf{}
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "vassal ready", func() bool { return strings.Contains(log.String(), "msg=\"vassal ready\" vassal=one pid=") })
	m := regexp.MustCompile(`msg="vassal spawned" vassal=one pid=(\d+)`).FindStringSubmatch(log.String())
	pid, _ := strconv.Atoi(m[1])
	ns := pidNamespace(pid)
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("emperor run: %v\n%s", err, log.String())
	}
	if left := procsInNamespace(ns); len(left) > 0 {
		t.Fatalf("left: %v", left)
	}
}

// smart-attach-daemon: a daemon that backgrounds itself and writes a
// pidfile survives reloads, and is started again when its pid is gone.
func TestSmartAttachDaemon(t *testing.T) {
	e := startEmperor(t)
	dir := t.TempDir()
	pidfile := filepath.Join(dir, "d.pid")
	path := e.install("smart", fmt.Sprintf("[uwsgi]\nsmart-attach-daemon = %s sh -c 'sleep 1000 & echo $! > %s'\nattach-daemon = exec sleep 1000\n", pidfile, pidfile))
	v := e.waitState("smart", "running", time.Minute)
	readPid := func() int {
		b, _ := os.ReadFile(pidfile)
		n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return n
	}
	var first int
	waitFor(t, time.Minute, "the pidfile", func() bool { first = readPid(); return first > 0 })
	hostPid := func(nsPid int) int {
		for _, p := range procsInNamespace(pidNamespace(v.PID)) {
			if pi, ok := readProc(p); ok && len(pi.nspid) == 2 && pi.nspid[1] == nsPid {
				return p
			}
		}
		return 0
	}
	h1 := hostPid(first)
	if h1 == 0 {
		t.Fatal("smart daemon not running in the vassal")
	}
	os.Chtimes(path, time.Now(), time.Now())
	waitFor(t, time.Minute, "the reload", func() bool {
		return strings.Count(e.log.String(), "msg=\"vassal reloaded\" vassal=smart") >= 1
	})
	// The reload is done: a smart daemon it restarted would be gone now.
	if readPid() != first || hostPid(first) != h1 {
		t.Fatal("the smart daemon was restarted by a reload")
	}
	syscall.Kill(h1, syscall.SIGKILL)
	waitFor(t, time.Minute, "a new smart daemon", func() bool {
		n := readPid()
		return n > 0 && n != first && hostPid(n) != 0
	})
	if n, _ := e.vassal("smart"); n.PID != v.PID {
		t.Fatal("PID 1 changed")
	}
}

// A vassal wedged while stopping (its as-user-atexit hook hangs) is SIGKILLed
// by the emperor after reload-mercy and its grace, and its namespace goes
// with it.
func TestWedgedStopIsKilled(t *testing.T) {
	e := startEmperor(t)
	path := e.install("wedged", "[uwsgi]\nreload-mercy = 1\nattach-daemon = exec sleep 1000\nexec-as-user-atexit = sleep 100\n")
	v := e.waitState("wedged", "running", time.Minute)
	ns := pidNamespace(v.PID)
	os.Remove(path)
	waitFor(t, time.Minute, "the vassal to leave the table", func() bool {
		_, ok := e.vassal("wedged")
		return !ok
	})
	waitFor(t, time.Minute, "the SIGKILL in the log", func() bool {
		return strings.Contains(e.log.String(), `msg="vassal still running after reload-mercy: SIGKILL" vassal=wedged`)
	})
	if left := procsInNamespace(ns); len(left) != 0 {
		t.Fatalf("left in the namespace: %v", left)
	}
}

// Without namespaces there is no kernel to take a vassal's processes down
// when the emperor is SIGKILLed: PID 1 dies by its parent-death signal and
// passes one on to each daemon it started.
func TestEmperorSIGKILLWithoutNamespaces(t *testing.T) {
	e := startEmperor(t, "emperor-use-clone = none")
	e.install("plain", "[uwsgi]\nattach-daemon = exec sleep 1000\nattach-daemon = sleep 1000\n")
	v := e.waitState("plain", "running", time.Minute)
	var procs []procInfo
	waitFor(t, time.Minute, "two daemons", func() bool { procs = descendants(v.PID); return len(procs) == 2 })
	t.Cleanup(func() { // if the test fails, leave nothing behind
		for _, p := range procs {
			syscall.Kill(p.pid, syscall.SIGKILL)
		}
	})
	e.cmd.Process.Kill()
	<-e.exited
	waitFor(t, time.Minute, "PID 1 and its daemons to die", func() bool {
		for _, p := range append(procs, procInfo{pid: v.PID}) {
			if q, ok := readProc(p.pid); ok && !strings.HasPrefix(q.state, "Z") {
				return false
			}
		}
		return true
	})
}
