package integration

import (
	"bytes"
	"fmt"
	"github.com/emperor-dev/emperor/procstat"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Bad input from §4 of issue 7 that used to wedge the emperor or leak what
// it holds to tenants: a FIFO swapped in for a vassal file, a vassal file
// that looks into a hung FUSE mount, descriptors and environment inherited
// by the emperor, a daemon's overlong log line, and a flood of idle control
// connections.

// A daemon that writes a 1 MiB line keeps running (the same pid) and what
// it writes after that line still reaches the log. The old reader gave up
// at 64 KiB and closed the pipe: the daemon died of SIGPIPE at its next
// write, and again after every respawn.
func TestLongLogLineKeepsDaemon(t *testing.T) {
	e := startEmperor(t)
	// Backquotes: $(...) is a placeholder in a vassal file.
	e.install("longline", "[uwsgi]\nattach-daemon = x=`head -c 1048576 /dev/zero | tr '\\0' a`; echo \"$x\"; i=0; while :; do i=`expr $i + 1`; echo \"tick $i\"; sleep 0.05; done\n")
	started := regexp.MustCompile(`msg="daemon started" vassal=longline .* pid=(\d+)`)
	var pid string
	waitFor(t, hangTimeout, "the daemon to start", func() bool {
		m := started.FindStringSubmatch(e.log.String())
		if m != nil {
			pid = m[1]
		}
		return m != nil
	})
	tick := regexp.MustCompile(`msg="tick 20" vassal=longline .* pid=(\d+)`)
	waitFor(t, hangTimeout, "output after the long line", func() bool {
		return tick.MatchString(e.log.String())
	})
	if got := tick.FindStringSubmatch(e.log.String())[1]; got != pid {
		t.Fatalf("tick 20 came from pid %s, the daemon started as %s", got, pid)
	}
	log := e.log.String()
	// The whole line was logged, in 16 parts of 64 KiB.
	if !strings.Contains(log, "line_part=16 line_continues=false") {
		t.Fatal("the long line's last part is not in the log")
	}
	if strings.Contains(log, `msg="daemon exited" vassal=longline`) {
		t.Fatal("the daemon exited after writing a long line")
	}
	if n := strings.Count(log, "line_part="); n != 16 {
		t.Fatalf("%d parts logged, want 16", n)
	}
}

// Descriptors the emperor inherited from whatever started it never reach a
// vassal: a daemon running as nobody tries to read every descriptor above 2
// and finds none. The old emperor passed them to every PID 1, hook and
// daemon, and a daemon read a 0600 root file through one.
func TestInheritedFDsDoNotReachTenants(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("s3cret-fd-content\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var files []*os.File
	for i := 0; i < 6; i++ { // fds 3 to 8 of the emperor
		f, err := os.Open(secret)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		files = append(files, f)
	}
	e := startEmperorCmd(t, func(c *exec.Cmd) { c.ExtraFiles = files })
	// The fault is in place: the emperor holds the secret on fds 3 to 8.
	for fd := 3; fd <= 8; fd++ {
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", e.cmd.Process.Pid, fd)); err != nil || l != secret {
			t.Fatalf("the emperor's fd %d is %q (%v), want the secret file", fd, l, err)
		}
	}
	// dash redirects single-digit descriptors only; the /proc check below
	// covers the others.
	e.install("fds", "[uwsgi]\nuid = nobody\ngid = nogroup\n"+
		"attach-daemon = for n in 3 4 5 6 7 8 9; do if { true <&$n; } 2>/dev/null; then echo \"inherited fd $n: `head -c 64 <&$n`\"; fi; done; echo fd-scan-done; exec sleep 100000\n")
	waitFor(t, hangTimeout, "the daemon's scan", func() bool {
		return strings.Contains(e.log.String(), `msg=fd-scan-done vassal=fds`)
	})
	if strings.Contains(e.log.String(), "inherited fd") || strings.Contains(e.log.String(), "s3cret") {
		t.Fatal("a daemon running as nobody could read a descriptor the emperor inherited")
	}
	// Nor does any process of the vassal hold it, PID 1 included.
	v := e.waitState("fds", "running", hangTimeout)
	p, _ := readProc(v.PID)
	for _, q := range append(descendants(v.PID), p) {
		ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", q.pid))
		for _, ent := range ents {
			if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", q.pid, ent.Name())); l == secret {
				t.Errorf("process %d (%s) of the vassal holds the secret file on fd %s", q.pid, q.comm, ent.Name())
			}
		}
	}
}

// Hooks and daemons start from a clean environment: PATH, HOME, the
// vassal's env lines (a later one of a name wins). The emperor's own environment (a SECRET_TOKEN, the
// internal CPU-profile variable) never reaches them, nor can a daemon read
// it from PID 1's /proc entry; $(VAR) placeholders still see the emperor's
// environment, as the demo's vassal files expect.
func TestEmperorEnvDoesNotReachTenants(t *testing.T) {
	prof := filepath.Join(t.TempDir(), "pid1.prof")
	e := startEmperorCmd(t, func(c *exec.Cmd) {
		c.Env = append(os.Environ(), "SECRET_TOKEN=x-secret-token", "PLACEHOLDER_SRC=from-the-emperor", "EMPEROR_VASSAL_CPUPROFILE="+prof)
	})
	e.install("env", "[uwsgi]\nuid = nobody\ngid = nogroup\nenv = MINE=1\nenv = HOME=/home/env\nenv = VIA_PLACEHOLDER=$(PLACEHOLDER_SRC)\n"+
		"exec-as-user = env | sed 's/^/hookenv: /'\n"+
		"attach-daemon = env | sed 's/^/daemonenv: /'; if cat /proc/1/environ >/dev/null 2>&1; then echo pid1-environ-readable; fi; echo env-done; exec sleep 100000\n")
	waitFor(t, hangTimeout, "the daemon's environment", func() bool {
		return strings.Contains(e.log.String(), `msg=env-done vassal=env`)
	})
	// The fault is in place: the emperor has the variables.
	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", e.cmd.Process.Pid))
	if err != nil || !strings.Contains(string(environ), "SECRET_TOKEN=x-secret-token") {
		t.Fatalf("the emperor's environment lacks SECRET_TOKEN (%v)", err)
	}
	got := map[string][]string{}
	line := regexp.MustCompile(`msg="(hookenv|daemonenv): ([^"]*)"`)
	for _, m := range line.FindAllStringSubmatch(e.log.String(), -1) {
		got[m[1]] = append(got[m[1]], m[2])
	}
	want := []string{"HOME=/home/env", "MINE=1", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "VIA_PLACEHOLDER=from-the-emperor"}
	for _, who := range []string{"hookenv", "daemonenv"} {
		var vars []string
		for _, kv := range got[who] {
			if k, _, _ := strings.Cut(kv, "="); k == "PWD" {
				continue // set by the shell itself
			}
			vars = append(vars, kv)
		}
		sort.Strings(vars)
		if strings.Join(vars, " ") != strings.Join(want, " ") {
			t.Errorf("%s: the environment is\n  %q\nwant\n  %q", who, vars, want)
		}
	}
	if strings.Contains(e.log.String(), "pid1-environ-readable") {
		t.Error("a daemon running as nobody read PID 1's environment, which is the emperor's")
	}
}

// A vassal file swapped for a FIFO between the emperor's stat and its open
// (a rename loop: RENAME_EXCHANGE of a regular file and a FIFO) is refused
// with an error naming the file; the emperor never blocks in open(2). The
// old emperor blocked there forever: no other file was handled again.
func TestFIFOSwapDoesNotWedge(t *testing.T) {
	e := startEmperor(t)
	path := filepath.Join(e.dir, "swap.ini")
	fifo := filepath.Join(e.dir, ".swap.fifo")
	if err := os.WriteFile(path, []byte("[uwsgi]\nattach-daemon = exec sleep 100000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	exchange := func() {
		if err := unix.Renameat2(unix.AT_FDCWD, fifo, unix.AT_FDCWD, path, unix.RENAME_EXCHANGE); err != nil {
			t.Fatal(err)
		}
	}
	// The fault must happen for certain: swap until the emperor has met
	// the FIFO where its stat saw a regular file (its refusal says so), or
	// the bound runs out.
	refused := func() bool { return strings.Contains(e.log.String(), "swap.ini is a FIFO, not a regular file") }
	deadline := time.Now().Add(hangTimeout)
	swaps := 0
	for !refused() && time.Now().Before(deadline) {
		exchange()
		swaps++
	}
	if fi, err := os.Lstat(path); err != nil || !fi.Mode().IsRegular() {
		exchange() // leave the regular file in place
	}
	t.Logf("%d swaps", swaps)
	// The emperor still handles files: a new one spawns, the swapped one
	// runs (a failed read is retried at the next rescan), status answers.
	e.install("after", "[uwsgi]\nattach-daemon = exec sleep 100000\n")
	e.waitState("after", "running", hangTimeout)
	e.waitState("swap", "running", hangTimeout)
	if !refused() {
		t.Fatalf("the swap never met the emperor between its stat and its open in %d swaps", swaps)
	}
	if code := e.stop(); code != 0 {
		t.Fatalf("the emperor exited %d after SIGTERM", code)
	}
}

// More idle control connections than MaxControlConns (64), against an
// emperor whose descriptor limit is 200: `emperor status` still answers and
// a new vassal file is read and spawned. The old emperor accepted every
// connection until EMFILE: status went unanswered, the vassal file could
// not be opened, and it stayed failed-config even after the connections
// closed, since its stat had been recorded before the failed read.
func TestIdleControlConnectionsCapped(t *testing.T) {
	e := startEmperor(t)
	lim := unix.Rlimit{Cur: 200, Max: 200}
	if err := unix.Prlimit(e.cmd.Process.Pid, unix.RLIMIT_NOFILE, &lim, nil); err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < 400; i++ {
		c, err := net.Dial("unix", e.control)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	// Every connection was made and the emperor has seen them: the cap
	// closed idle ones, or (the old code) the accepts failed.
	waitFor(t, hangTimeout, "the emperor to meet the flood", func() bool {
		l := e.log.String()
		return strings.Contains(l, "control connections at the limit") || strings.Contains(l, "too many open files")
	})
	e.install("afterflood", "[uwsgi]\nattach-daemon = exec sleep 100000\n")
	e.waitState("afterflood", "running", hangTimeout)
	// And after the flood, the vassal keeps running, status answers.
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	e.waitState("afterflood", "running", hangTimeout)
}

// A vassal file whose if-exists looks into a FUSE mount whose daemon is
// stopped (SIGSTOP) fails after the check timeout with an error that says
// so; every other file is still handled, status answers, SIGTERM stops the
// emperor at once, and `emperor check` gives up on the file at its timeout
// and honours SIGTERM. The old emperor blocked its whole loop in the stat:
// no other file was handled and SIGTERM was ignored.
func TestHungMountDoesNotWedge(t *testing.T) {
	requireRoot(t)
	requireBinary(t, "fuse-zip", "fusermount3")
	// Two hung mounts: one for the emperor, one for emperor check. Without
	// FUSE_PARALLEL_DIROPS (fuse-zip) the kernel serializes lookups in a
	// directory with a mutex, and a process queued behind another's stuck
	// lookup cannot be killed, not even by SIGKILL, until that one ends.
	mnt := hungMount(t)
	checkMnt := hungMount(t)
	e := startEmperor(t)
	// Each process looks up a name of its own: a second lookup of a name
	// whose lookup is stuck waits for it in the kernel uninterruptibly
	// (d_wait_lookup), and even SIGKILL could not end that process.
	hung := func(mnt, name string) string {
		return "[uwsgi]\nif-exists = " + mnt + "/" + name + "\nattach-daemon = exec sleep 100000\nendif =\n"
	}
	e.install("hung", hung(mnt, "never-looked-up"))
	// The fault for certain: a thread of the emperor waits in a stat of
	// the mount.
	waitFor(t, hangTimeout, "a stat of the emperor blocked in the mount", func() bool { return inStat(e.cmd.Process.Pid) })
	e.install("other", "[uwsgi]\nattach-daemon = exec sleep 100000\n")
	e.waitState("other", "running", hangTimeout)
	v := e.waitState("hung", "failed-config", hangTimeout)
	if !strings.Contains(v.ConfigError, "hung.ini: the check of this file did not finish within 10s") {
		t.Fatalf("config error %q", v.ConfigError)
	}

	// emperor check gives up at its timeout...
	checkFile := func(name string) string {
		p := filepath.Join(t.TempDir(), "hung.ini")
		if err := os.WriteFile(p, []byte(hung(checkMnt, name)), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var out bytes.Buffer
	chk := exec.Command(emperorBin, "check", "--timeout", "2s", checkFile("check-one"))
	chk.Stdout, chk.Stderr = &out, &out
	err := runBounded(t, chk, nil)
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(out.String(), "hung.ini: the check did not finish within 2s") {
		t.Fatalf("emperor check: %v\n%s", err, out.String())
	}
	// ...and honours SIGTERM while the check is stuck.
	chk = exec.Command(emperorBin, "check", "--timeout", "1h", checkFile("check-two"))
	runBounded(t, chk, func() {
		waitFor(t, hangTimeout, "emperor check blocked in the mount", func() bool { return inStat(chk.Process.Pid) })
		chk.Process.Signal(syscall.SIGTERM)
	})

	if code := e.stop(); code != 0 {
		t.Fatalf("the emperor exited %d after SIGTERM (-1: killed after 30 s)", code)
	}
}

// hungMount mounts a fuse-zip and stops its daemon (SIGSTOP): every lookup
// in it blocks. The cleanup, registered before the test starts an emperor
// and so run after the emperor's own, lets the daemon go on and unmounts.
func hungMount(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	zipPath := filepath.Join(dir, "app.zip")
	writeZip(t, zipPath, map[string]string{"hello.txt": "hello\n"})
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	fz := exec.Command("fuse-zip", "-f", "-r", zipPath, mnt)
	if err := fz.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		fz.Process.Signal(syscall.SIGCONT)
		exec.Command("fusermount3", "-u", mnt).Run()
		fz.Process.Kill()
		fz.Wait()
	})
	waitFor(t, hangTimeout, "the fuse-zip mount", func() bool { return len(mountSeenAnywhere(mnt)) > 0 })
	if err := fz.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// Every thread stopped, not only the main one: a group stop reaches
	// the threads one by one, and a libfuse thread still in its read of
	// /dev/fuse could take a lookup sent later. A request read by the
	// daemon and never answered leaves the process that sent it in an
	// uninterruptible wait that even SIGKILL does not end (CI saw
	// `emperor check` ignore SIGTERM that way, once in four runs).
	waitFor(t, hangTimeout, "every thread of fuse-zip to be stopped", func() bool {
		tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", fz.Process.Pid))
		if err != nil || len(tasks) == 0 {
			return false
		}
		for _, task := range tasks {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", fz.Process.Pid, task.Name()))
			if err != nil {
				return false
			}
			st, err := procstat.Parse(b)
			if err != nil || st.State != 'T' {
				return false
			}
		}
		return true
	})
	return mnt
}

// runBounded runs cmd, calling during (if not nil) once it has started, and
// fails the test if it has not exited within hangTimeout.
func runBounded(t *testing.T, cmd *exec.Cmd, during func()) error {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	if during != nil {
		during()
	}
	select {
	case err := <-exited:
		return err
	case <-time.After(hangTimeout):
		cmd.Process.Kill()
		t.Fatalf("%v did not exit", cmd.Args)
		return nil
	}
}

// inStat says whether a thread of pid is in a stat system call.
func inStat(pid int) bool {
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/syscall", pid, task.Name()))
		if err != nil {
			continue
		}
		if f := strings.Fields(string(b)); len(f) > 0 && (f[0] == strconv.Itoa(unix.SYS_NEWFSTATAT) || f[0] == strconv.Itoa(unix.SYS_STATX)) {
			return true
		}
	}
	return false
}
