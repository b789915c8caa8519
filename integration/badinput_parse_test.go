package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emperor-dev/emperor/control"
)

// doublingPlaceholder is a vassal file fragment that builds %(pN), a
// placeholder of 2^n bytes, in n+1 lines.
func doublingPlaceholder(n int) string { return doublingOf("x", n) }

// doublingOf builds a placeholder of 2^n copies of c.
func doublingOf(c string, n int) string {
	var b strings.Builder
	b.WriteString("set-placeholder = p0=" + c + "\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "set-placeholder = p%d=%%(p%d)%%(p%d)\n", i, i-1, i-1)
	}
	return b.String()
}

// hugeErrorsVassal has twelve errors, each quoting 1 MiB (a 128 KiB value
// of bytes that %q writes as \xff, twice): before the fix its config error
// (12 MiB) was over the control line limit, so `emperor status` failed for
// every vassal, and the log grew 12 MiB a parse.
func hugeErrorsVassal(comment string) string {
	return "[uwsgi]\n; " + comment + "\n" + doublingOf("\xff", 17) + strings.Repeat("shared-socket = %(p17):1\n", 12)
}

// TestHugeConfigErrorsKeepStatus: a file whose errors quote huge values is
// failed-config with a bounded error; `emperor status` and `status --json`
// (the CLI) still list every vassal; each parse adds a bounded amount to the
// log; `emperor check` prints a bounded report that ends with "and N more".
func TestHugeConfigErrorsKeepStatus(t *testing.T) {
	requireBinary(t, "busybox")
	e := startEmperor(t)
	port := freePort(t)
	e.install("good", httpdVassal(t, port))
	good := e.waitState("good", "running", time.Minute)

	path := e.install("huge", hugeErrorsVassal("first"))
	v := e.waitState("huge", "failed-config", time.Minute)
	if len(v.ConfigError) > 8<<10 || !strings.Contains(v.ConfigError, path+":") ||
		!strings.Contains(v.ConfigError, "… (131072 bytes) is not an IP address") || !strings.HasSuffix(v.ConfigError, "and 2 more errors") {
		t.Fatalf("config error of %d bytes: %.2000s", len(v.ConfigError), v.ConfigError)
	}

	out, err := exec.Command(emperorBin, "status", "--control", e.control).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "good") || !strings.Contains(string(out), "huge") {
		t.Fatalf("emperor status: %v\n%.2000s", err, out)
	}
	out, err = exec.Command(emperorBin, "status", "--json", "--control", e.control).Output()
	if err != nil {
		t.Fatalf("emperor status --json: %v\n%.2000s", err, out)
	}
	var resp control.Response
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatalf("status --json: %v", err)
	}
	names := map[string]string{}
	for _, v := range resp.Vassals {
		names[v.Name] = v.State
	}
	if names["good"] != "running" || names["huge"] != "failed-config" {
		t.Fatalf("status --json lists %v", names)
	}

	// Parse the file again (new content) and measure what the log gained.
	rejected := func() int { return strings.Count(e.log.String(), "vassal file rejected") }
	waitFor(t, time.Minute, "the first rejection in the log", func() bool { return rejected() >= 1 })
	before, n := len(e.log.String()), rejected()
	e.install("huge", hugeErrorsVassal("second"))
	waitFor(t, time.Minute, "the second rejection in the log", func() bool { return rejected() > n })
	if grew := len(e.log.String()) - before; grew > 16<<10 {
		t.Fatalf("the log grew %d bytes for one parse", grew)
	}

	chk := exec.Command(emperorBin, "check", path)
	out, _ = chk.Output()
	if chk.ProcessState.ExitCode() != 1 || len(out) > 8<<10 || !strings.Contains(string(out), "and 2 more errors") {
		t.Fatalf("emperor check: exit %d, %d bytes: %.2000s", chk.ProcessState.ExitCode(), len(out), out)
	}

	if g, _ := e.vassal("good"); g.PID != good.PID || g.State != "running" {
		t.Fatalf("good vassal disturbed: %+v", g)
	}
	waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/hello.txt", port), time.Minute)
	_ = os.Remove(path)
}

// TestBadValuesFailConfig: values that used to pass `check` and then broke
// the vassal (check-interval = 0 or nan panicked PID 1 into a crash loop;
// hook-timeout = inf and mountpoint-check-timeout = 0 made vassals that
// could never start; a NUL inside a value) are config errors naming the
// file, the line and the allowed range. No PID 1 is spawned for them, and a
// good vassal keeps running.
func TestBadValuesFailConfig(t *testing.T) {
	requireBinary(t, "busybox")
	e := startEmperor(t)
	port := freePort(t)
	e.install("good", httpdVassal(t, port))
	good := e.waitState("good", "running", time.Minute)

	cases := []struct{ name, line, want string }{
		{"ci0", "check-interval = 0", "check-interval: 0 is out of range: from 10ms to 1h"},
		{"cinan", "check-interval = nan", `check-interval: "nan" is not a finite duration`},
		{"htinf", "hook-timeout = inf", `hook-timeout: "inf" is not a finite duration`},
		{"mct0", "mountpoint-check-timeout = 0", "mountpoint-check-timeout: 0 is out of range: from 1ms to 1h"},
		{"mercy", "reload-mercy = 1e12", `reload-mercy: "1e12" is too large a duration`},
		{"nul", "env = A=b\x00c", "env: control byte 0x00 at byte 4 of the value"},
	}
	paths := map[string]string{}
	for _, c := range cases {
		paths[c.name] = e.install(c.name, "[uwsgi]\n"+c.line+"\nmountpoint-check = /\nexec-asap = true\nattach-daemon = exec sleep 1000\n")
	}
	for _, c := range cases {
		var v control.VassalStatus
		waitFor(t, time.Minute, c.name+" checked", func() bool {
			var ok bool
			v, ok = e.vassal(c.name)
			// Settled: a file still being checked shows as starting.
			return ok && v.State != "" && v.State != "starting"
		})
		if v.State != "failed-config" || v.PID != 0 || v.Restarts != 0 {
			t.Errorf("%s (%q): state %s, pid %d, restarts %d, want failed-config and nothing spawned", c.name, c.line, v.State, v.PID, v.Restarts)
			continue
		}
		if want := paths[c.name] + ":2: " + c.want; !strings.Contains(v.ConfigError, want) {
			t.Errorf("%s: config error %q, want %q", c.name, v.ConfigError, want)
		}
	}
	// emperor check says the same, and fails.
	for _, c := range cases {
		chk := exec.Command(emperorBin, "check", paths[c.name])
		out, _ := chk.Output()
		if chk.ProcessState.ExitCode() != 1 || !strings.Contains(string(out), c.want) {
			t.Errorf("emperor check %s: exit %d: %s", c.name, chk.ProcessState.ExitCode(), out)
		}
	}
	// Nothing but the good vassal's PID 1 (and its daemon) runs.
	for _, p := range descendants(e.cmd.Process.Pid) {
		if p.pid != good.PID && p.ppid != good.PID {
			t.Errorf("process %d (%s) runs under the emperor", p.pid, p.comm)
		}
	}
	if g, _ := e.vassal("good"); g.PID != good.PID || g.State != "running" {
		t.Fatalf("good vassal disturbed: %+v", g)
	}
	waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/hello.txt", port), time.Minute)
}

// rssBytes is a process's resident set size in bytes (0 once it is gone).
func rssBytes(pid int) int64 { return int64(vmRSS(pid)) << 10 }

// TestExpansionBombsBoundedRSS: vassal files that expand to gigabytes (the
// 24-line file that took the emperor to 2 GiB and an OOM kill: a 512 KiB
// placeholder built by doubling, used as an env value in a for-times =
// 10000 block) are failed-config, with the line where the expansion crossed
// the file's bound, while the emperor's RSS stays within a few MiB of its
// baseline and a good vassal keeps running. If the RSS passes the bound the
// test kills the emperor at once, so that the old code fails the test
// without taking the machine's memory.
func TestExpansionBombsBoundedRSS(t *testing.T) {
	requireBinary(t, "busybox")
	e := startEmperor(t)
	port := freePort(t)
	e.install("good", httpdVassal(t, port))
	good := e.waitState("good", "running", time.Minute)
	pid := e.cmd.Process.Pid
	for i := 0; i < 20; i++ {
		e.status() // warm the control path so that it is in the baseline
	}
	runtime.GC()
	base := rssBytes(pid)
	if base == 0 {
		t.Fatal("no VmRSS for the emperor")
	}
	const bound = rssBound
	var peak atomic.Int64
	stop := make(chan struct{})
	monitorDone := make(chan struct{})
	go func() {
		defer close(monitorDone)
		for {
			if r := rssBytes(pid); r > peak.Load() {
				peak.Store(r)
				if r > base+bound {
					e.cmd.Process.Kill()
					return
				}
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	defer func() { close(stop); <-monitorDone }()

	ph := doublingPlaceholder(19) // lines 2-21
	many := t.TempDir()           // 10001 files for a for-glob
	for d := 0; d < 11; d++ {
		sub := filepath.Join(many, strconv.Itoa(d))
		if err := os.Mkdir(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		for f := 0; f < 1000 && d*1000+f <= 10000; f++ {
			if err := os.WriteFile(filepath.Join(sub, strconv.Itoa(f)), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	cases := []struct{ name, body, want string }{
		{"bomb1", ph + "for-times = 10000\nenv = X%(_)=%(p19)\nendfor =\n", ":23: expansion of this file exceeds 2 MiB"},
		{"bomb2", ph + "for-times = 10000\nenv = X%(_)=%(p19)%(p19)%(p19)\nendfor =\n", ":23: env: value expands to more than 1048576 bytes"},
		{"bomb3", doublingPlaceholder(17) + "for-times = 10000\nattach-daemon = echo %(p17)\nif-exists = %(p17)\nendif =\nendfor =\n", ":21: expansion of this file exceeds 2 MiB"},
		{"items", "for-times = 10000\nenv = A%(_)=1\nenv = B%(_)=1\nenv = C%(_)=1\nendfor =\n", ":4: this file sets more than 10000 options"},
		{"glob", "for-glob = " + many + "/*/*\nenv = A=%(_)\nendfor =\n", fmt.Sprintf(":2: for-glob %q: matches more than 10000 paths", many+"/*/*")},
	}
	paths := map[string]string{}
	for _, c := range cases {
		paths[c.name] = e.install(c.name, "[uwsgi]\n"+c.body)
	}
	for _, c := range cases {
		var v control.VassalStatus
		waitFor(t, time.Minute, c.name+" checked", func() bool {
			resp, err := control.Call(e.control, control.Request{Cmd: "status"}, hangTimeout)
			if p := peak.Load(); p > base+bound {
				t.Fatalf("the emperor's RSS went from %d MiB to %d MiB (the test killed it there)", base>>20, p>>20)
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range resp.Vassals {
				if s.Name == c.name {
					v = s
				}
			}
			// Settled: a file still being checked shows as starting.
			return v.State != "" && v.State != "starting"
		})
		if v.State != "failed-config" || !strings.Contains(v.ConfigError, paths[c.name]+c.want) {
			t.Errorf("%s: state %s, error %q, want failed-config and %q", c.name, v.State, v.ConfigError, paths[c.name]+c.want)
		}
	}
	// Check each file again (a touch), twice over: the RSS stays put.
	for round := 0; round < 2; round++ {
		for _, c := range cases {
			e.install(c.name, "[uwsgi]\n; again\n"+c.body)
		}
		n := strings.Count(e.log.String(), "vassal file rejected")
		waitFor(t, time.Minute, "every file rejected again", func() bool {
			return strings.Count(e.log.String(), "vassal file rejected") >= n+len(cases)
		})
	}
	t.Logf("emperor RSS: baseline %d KiB, peak %d KiB (+%d KiB)", base>>10, peak.Load()>>10, (peak.Load()-base)>>10)
	if p := peak.Load(); p > base+bound {
		t.Fatalf("emperor RSS went from %d MiB to %d MiB", base>>20, p>>20)
	}
	if g, _ := e.vassal("good"); g.PID != good.PID || g.State != "running" {
		t.Fatalf("good vassal disturbed: %+v", g)
	}
	waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/hello.txt", port), time.Minute)
}

// rssBound is how far above its baseline the emperor's RSS may go while it
// checks hostile files. The test drops five of them at once, so five checks
// run side by side, and a check parses its file twice (as a first start
// and as a reload, so that one run reports every problem): each parse
// holds a few MiB at most (MaxExpansion, MaxItems), and the garbage
// collector lets the heap reach about twice what is live. The 2 GiB of the
// unbounded parser are far above it either way.
const rssBound = 32 << 20
