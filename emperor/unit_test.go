package emperor

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emperor-dev/emperor/restart"
	"github.com/emperor-dev/emperor/vassalfile"
)

func TestPhaseStates(t *testing.T) {
	// The names users, docs and tests rely on.
	want := map[phase]string{
		phaseNew: StateStarting, phaseFailedConfig: StateFailedConfig, phaseStarting: StateStarting,
		phaseRunning: StateRunning, phaseReloading: StateReloading, phaseRestarting: StateStopping,
		phaseStopping: StateStopping, phaseBackoff: StateBackoff, phaseStopped: StateStopping,
	}
	for p, w := range want {
		if got := p.state(); got != w {
			t.Errorf("phase %d shows %q, want %q", p, got, w)
		}
	}
}

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigLoadFile(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "e.ini", "[uwsgi]\nemperor = /srv/vassals\nemperor-use-clone = fs,pid,uts\nemperor-throttle = 250\nemperor-max-throttle = 4000\nemperor-restart-burst = 3\nemperor-restart-half-life = 1m\nemperor-healthy-time = 2\nemperor-freq = 500ms\nreload-mercy = 7\n")
	c := DefaultConfig()
	var logged strings.Builder
	c.Logger = slog.New(slog.NewTextHandler(&logged, nil))
	if err := c.LoadFile(p); err != nil {
		t.Fatal(err)
	}
	if c.VassalsDir != "/srv/vassals" || c.Namespaces.String() != "fs,pid,uts" || c.Throttle != 250*time.Millisecond ||
		c.MaxThrottle != 4*time.Second || c.RestartBurst != 3 || c.RestartHalfLife != time.Minute ||
		c.Rescan != 500*time.Millisecond || c.Mercy != 7*time.Second {
		t.Fatalf("%+v", c)
	}
	// emperor-healthy-time still loads, with a warning naming what replaced it.
	if !strings.Contains(logged.String(), ":8: warning: emperor-healthy-time is no longer used") ||
		!strings.Contains(logged.String(), "emperor-restart-burst") {
		t.Fatalf("no warning for emperor-healthy-time: %s", logged.String())
	}
	d := DefaultConfig()
	if d.Namespaces.String() != "fs,pid" || d.Throttle != time.Second || d.MaxThrottle != 180*time.Second || d.Mercy != 30*time.Second || d.ControlPath != DefaultControlPath {
		t.Fatalf("defaults %+v", d)
	}
	if d.Policy() != restart.Default() {
		t.Fatalf("default policy %+v, want %+v", d.Policy(), restart.Default())
	}
}

func TestConfigErrorsNameFileAndLineAndApplyNothing(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]string{
		"[uwsgi]\nemperor-use-clone = fs,bogus\n":                              ":2: ",
		"[uwsgi]\nemperor-throttle = soon\n":                                   ":2: ",
		"[uwsgi]\nemperor-restart-burst = -1\n":                                ":2: emperor-restart-burst: \"-1\" is not a count from 0 to 1000",
		"[uwsgi]\nemperor-restart-burst = many\n":                              ":2: ",
		"[uwsgi]\nemperor-restart-half-life = -5\n":                            ":2: emperor-restart-half-life: ",
		"[uwsgi]\nattach-daemon = sleep 1\n":                                   "belongs in a vassal file",
		"[uwsgi]\nemperor-throttle = 5000\nemperor-max-throttle = 1000\n":      ":3: emperor-max-throttle (1s) is below emperor-throttle (5s)",
		"[uwsgi]\nemperor = /a\nemperor-freq = 0\n":                            ":3: emperor-freq: 0 is out of range: from 10ms to 1h",
		"[uwsgi]\nemperor = /a\nemperor-use-clone = none,pid\nemperor-x = 1\n": ":4: unknown option",
	}
	for body, want := range cases {
		p := writeFile(t, dir, "e.ini", body)
		c := DefaultConfig()
		err := c.LoadFile(p)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%q: error %v, want %q", body, err, want)
		}
		if c.VassalsDir != "" || c.Throttle != time.Second {
			t.Errorf("%q: half applied: %+v", body, c)
		}
	}
}

func TestConfigCheck(t *testing.T) {
	c := DefaultConfig()
	if err := c.check(); err == nil || !strings.Contains(err.Error(), "--vassals") {
		t.Fatal(err)
	}
	if _, err := New(Config{VassalsDir: "/nonexistent-vassals", ControlPath: "/tmp/x.sock"}); err == nil || !strings.Contains(err.Error(), "/nonexistent-vassals") {
		t.Fatal(err)
	}
	f := writeFile(t, t.TempDir(), "plain", "")
	if _, err := New(Config{VassalsDir: f, ControlPath: "/tmp/x.sock"}); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatal(err)
	}
}

func TestIsVassalFile(t *testing.T) {
	for name, want := range map[string]bool{
		"app.ini": true, "a.b.ini": true,
		".app.ini": false, ".app.ini.swp": false, "app.ini~": false, "#app.ini#": false, ".#app.ini": false,
		"4913": false, "app.ini.swp": false, "app.yaml": false, ".ini": false, "app.INI": false,
	} {
		if isVassalFile(name) != want {
			t.Errorf("isVassalFile(%q) = %v", name, !want)
		}
	}
	if vassalfile.NameOf("/x/y/app.ini") != "app" || vassalfile.NameOf("a.b.ini") != "a.b" {
		t.Fatal(vassalfile.NameOf("/x/y/app.ini"))
	}
}

func TestFileStateChange(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "a.ini", "[uwsgi]\n")
	fi, _ := os.Stat(p)
	a := statOf(fi)
	if !a.sameStat(statOf(fi)) || a.changed(a) {
		t.Fatal("a file differs from itself")
	}
	later := time.Now().Add(time.Hour)
	os.Chtimes(p, later, later)
	fi, _ = os.Stat(p)
	b := statOf(fi)
	if a.sameStat(b) || !a.changed(b) {
		t.Fatal("a touch is not a change")
	}
	c := b
	c.sum[0]++
	if !b.changed(c) {
		t.Fatal("new content with the same mtime is not a change")
	}
}

func TestCheckVassal(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.ini", "[uwsgi]\nplugin = python3\nattach-daemon = sleep 1\n")
	v, err := LoadVassal(good)
	if err != nil {
		t.Fatal(err)
	}
	if v.Name != "good" || len(v.Spec.Daemons) != 1 || len(v.Warnings) != 1 || !strings.Contains(v.Warnings[0].String(), good+":2: warning: plugin") {
		t.Fatalf("%+v", v)
	}
	cases := map[string]string{
		"[uwsgi]\nattach-deamon = x\n":                                       ":2: unknown option",
		"[uwsgi]\nuid = no-such-user-here\n":                                 ":2: uid no-such-user-here",
		"[uwsgi]\nadd-gid = root\nadd-gid = no-such-group-here\n":            ":3: add-gid no-such-group-here",
		"[uwsgi]\nif-reload =\nattach-deamon = x\nendif =\n":                 ":3: unknown option", // only the reload view has it
		"[uwsgi]\nif-not-reload =\nattach-daemon = x\n":                      ":2: if-not-reload opened here is never closed",
		"[uwsgi]\nwsgi-file = app.py\nproceses = 2\n":                        `:3: unknown option "proceses" (did you mean "processes"?)`,
		"[uwsgi]\nemperor-throttle = 1\n":                                    "emperor",
		"[uwsgi]\nhook-as-root = frobnicate:x\n":                             ":2:",
		"[uwsgi]\nmount-as-root = proc none /proc nosuchflag\n":              ":2:",
		"[uwsgi]\npivot_root = relative\n":                                   ":2:",
		"[uwsgi]\nmountpoint-check-timeout = forever\n":                      ":2:",
		"[uwsgi]\nattach-daemon = %(nothing-set)\n":                          ":2:",
		"[uwsgi]\n" + strings.Repeat("x", vassalfile.MaxFileSize) + "\n":     "limit",
		"[uwsgi]\nfor-times = 1000000000\nattach-daemon = sleep\nendfor =\n": ":2:",
	}
	for body, want := range cases {
		p := writeFile(t, dir, "bad.ini", body)
		_, err := LoadVassal(p)
		var errs vassalfile.Errors
		if !errors.As(err, &errs) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%.60q: %v, want %q", body, err, want)
		}
	}
	if _, err := LoadVassal(filepath.Join(dir, "missing.ini")); err == nil || !strings.Contains(err.Error(), "missing.ini") {
		t.Fatal(err)
	}
}

func TestSettleWait(t *testing.T) {
	t0 := time.Now()
	for after, want := range map[time.Duration]time.Duration{
		0:                      settleDelay, // the first event
		50 * time.Millisecond:  settleDelay, // a file still being written
		95 * time.Millisecond:  5 * time.Millisecond,
		100 * time.Millisecond: 0, // written for longer than settleMax: read it now
		time.Second:            0,
	} {
		if got := settleWait(t0, t0.Add(after)); got != want {
			t.Errorf("event %v after the first: wait %v, want %v", after, got, want)
		}
	}
}

// everyStage reads testdata/every-stage.ini, a vassal with a problem for
// each stage of the check (a warning, unknown users and groups, an unknown
// option, an error repeated by every item of a for block, chroot with
// pivot_root), and every-stage.want, what one check of it reports, in
// order: ":LINE: [warning: ]MESSAGE" after the file's path. The root test
// of `emperor check` and `emperor status` (integration/check_test.go)
// reads the same files.
func everyStage(t *testing.T) (vassal string, want []string) {
	t.Helper()
	var text [2][]byte
	for i, name := range []string{"every-stage.ini", "every-stage.want"} {
		var err error
		if text[i], err = os.ReadFile(filepath.Join("testdata", name)); err != nil {
			t.Fatal(err)
		}
	}
	return string(text[0]), strings.Split(strings.TrimSpace(string(text[1])), "\n")
}

// TestCheckVassalReportsEveryStage: one check reports the problems of every
// stage at once (parse, decode, user lookups), with the warnings among
// them, sorted by line, and a line repeated by a for block once with its
// count. Before, the check stopped at the first stage that failed.
func TestCheckVassalReportsEveryStage(t *testing.T) {
	vassal, want := everyStage(t)
	p := writeFile(t, t.TempDir(), "all.ini", vassal)
	_, err := LoadVassal(p)
	var errs vassalfile.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("%v", err)
	}
	if len(errs) != len(want) {
		t.Fatalf("got %d diagnostics, want %d:\n%v", len(errs), len(want), err)
	}
	for i, w := range want {
		d := errs[i]
		var line int
		if _, err := fmt.Sscanf(w, ":%d:", &line); err != nil {
			t.Fatalf("every-stage.want line %d: %q: %v", i+1, w, err)
		}
		warning := strings.HasPrefix(w, fmt.Sprintf(":%d: warning: ", line))
		if d.Line != line || d.Warning != warning || !strings.HasPrefix(d.String(), p+w) {
			t.Errorf("diagnostic %d: %s, want %s", i, d, p+w)
		}
	}
	// The status of the vassal shows the same list (Error is what
	// failed-config holds).
	if s := err.Error(); strings.Count(s, "\n") != len(want)-1 || !strings.HasPrefix(s, p+want[0]) {
		t.Fatalf("Error():\n%s", s)
	}
}

// TestCheckVassalNoCascade: an option whose line was rejected is not also
// reported missing by the checks that span options.
func TestCheckVassalNoCascade(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "c.ini", "[uwsgi]\nhttp-socket = 127.0.0.1:notaport\nstatic-map = /s=/srv\n")
	_, err := LoadVassal(p)
	var errs vassalfile.Errors
	if !errors.As(err, &errs) || len(errs) != 1 || errs[0].Line != 2 {
		t.Fatalf("want the http-socket line alone: %v", err)
	}
}
