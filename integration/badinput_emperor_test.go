package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// Bad input from §4 of issue 7 that used to wedge the emperor or leak what
// it holds to tenants: a FIFO swapped in for a vassal file, a vassal file
// that looks into a hung FUSE mount, descriptors and environment inherited
// by the emperor, a daemon's overlong log line, and a flood of idle control
// connections.

// hang is the timeout that only stops a hang.
const hang = time.Minute

// startEmperorCmd is startEmperor with a chance to change the command
// (inherited descriptors, environment) before it starts.
func startEmperorCmd(t *testing.T, prep func(*exec.Cmd), config ...string) *emperorProc {
	t.Helper()
	requireRoot(t)
	base := t.TempDir()
	dir := filepath.Join(base, "vassals")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(base, "emperor.ini")
	body := "[uwsgi]\nemperor = " + dir + "\nreload-mercy = 5\n" + strings.Join(config, "\n") + "\n"
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	e := &emperorProc{t: t, dir: dir, control: filepath.Join(base, "control.sock"), log: &logBuf{}, exited: make(chan struct{})}
	e.cmd = exec.Command(emperorBin, "--config", cfg, "--control", e.control)
	e.cmd.Stdout = e.log
	e.cmd.Stderr = e.log
	if prep != nil {
		prep(e.cmd)
	}
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { e.cmd.Wait(); close(e.exited) }()
	t.Cleanup(func() {
		e.stop()
		if t.Failed() {
			l := e.log.String()
			if len(l) > 64<<10 {
				l = "...\n" + l[len(l)-64<<10:]
			}
			t.Logf("emperor log (tail):\n%s", l)
		}
	})
	waitFor(t, hang, "control socket", func() bool {
		_, err := os.Stat(e.control)
		return err == nil
	})
	return e
}

// A daemon that writes a 1 MiB line keeps running (the same pid) and what
// it writes after that line still reaches the log. The old reader gave up
// at 64 KiB and closed the pipe: the daemon died of SIGPIPE at its next
// write, and again after every respawn.
func TestLongLogLineKeepsDaemon(t *testing.T) {
	e := startEmperorCmd(t, nil)
	// Backquotes: $(...) is a placeholder in a vassal file.
	e.install("longline", "[uwsgi]\nattach-daemon = x=`head -c 1048576 /dev/zero | tr '\\0' a`; echo \"$x\"; i=0; while :; do i=`expr $i + 1`; echo \"tick $i\"; sleep 0.05; done\n")
	started := regexp.MustCompile(`msg="daemon started" vassal=longline .* pid=(\d+)`)
	var pid string
	waitFor(t, hang, "the daemon to start", func() bool {
		m := started.FindStringSubmatch(e.log.String())
		if m != nil {
			pid = m[1]
		}
		return m != nil
	})
	tick := regexp.MustCompile(`msg="tick 20" vassal=longline .* pid=(\d+)`)
	waitFor(t, hang, "output after the long line", func() bool {
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
	waitFor(t, hang, "the daemon's scan", func() bool {
		return strings.Contains(e.log.String(), `msg=fd-scan-done vassal=fds`)
	})
	if strings.Contains(e.log.String(), "inherited fd") || strings.Contains(e.log.String(), "s3cret") {
		t.Fatal("a daemon running as nobody could read a descriptor the emperor inherited")
	}
	// Nor does any process of the vassal hold it, PID 1 included.
	v := e.waitState("fds", "running", hang)
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
	waitFor(t, hang, "the daemon's environment", func() bool {
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
