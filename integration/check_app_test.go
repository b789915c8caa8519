package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCheckAppVassalAgainstInstalledUWSGI: the emperor and `emperor check`
// accept seed 003's app lines (psgi = ... with no plugin line: the psgi
// plugin is loaded for it) and check the lines for uWSGI against the
// installed uwsgi: a loader whose plugin is not installed is a config error
// at its line that names the Debian package, in `emperor check` and in the
// vassal's status, and nothing is spawned. The old code refused every
// loader ("this emperor embeds no language plugin").
func TestCheckAppVassalAgainstInstalledUWSGI(t *testing.T) {
	requireBinary(t, "uwsgi")
	dir := t.TempDir()
	good := filepath.Join(dir, "seed003.ini")
	// Seed 003's vassal without its user and FUSE lines (the check
	// resolves users, and none is made for this test).
	if err := os.WriteFile(good, []byte("[uwsgi]\nhttp-socket = :9090\npsgi = /app/myapp.pl\nmountpoint-check = /app\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	chk := exec.Command(emperorBin, "check", good)
	if out, err := chk.CombinedOutput(); err != nil {
		t.Fatalf("emperor check %s: %v\n%s", good, err, out)
	}

	const bad = "[uwsgi]\nhttp-socket = 127.0.0.1:9\nrack = /srv/app/config.ru\nplugins-dir = /nonexistent\nplugin = nosuch\n"
	want := []string{
		":3: rack needs uWSGI's rack plugin, which is not installed: apt-get install uwsgi-plugin-rack-ruby3.1",
		":5: plugin nosuch cannot be loaded",
	}
	checkFails(t, bad, want)
	requireRoot(t)
	startEmperor(t).failsConfig(t, "rackapp", bad, want)
}

// checkFails runs `emperor check` on a file with body: it must exit 1 and
// print each of want after the file's path.
func checkFails(t *testing.T, body string, want []string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bad.ini")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	chk := exec.Command(emperorBin, "check", path)
	out, _ := chk.Output()
	if chk.ProcessState.ExitCode() != 1 {
		t.Fatalf("emperor check: exit %d\n%s", chk.ProcessState.ExitCode(), out)
	}
	for _, w := range want {
		if !strings.Contains(string(out), path+w) {
			t.Errorf("emperor check: no %q in:\n%s", path+w, out)
		}
	}
}

// failsConfig installs body as vassal name: it must reach failed-config
// with each of want in its status after the file's path, and never be
// spawned.
func (e *emperorProc) failsConfig(t *testing.T, name, body string, want []string) {
	t.Helper()
	path := e.install(name, body)
	v := e.waitState(name, "failed-config", time.Minute)
	for _, w := range want {
		if !strings.Contains(v.ConfigError, path+w) {
			t.Errorf("status: no %q in:\n%s", path+w, v.ConfigError)
		}
	}
	if v.PID != 0 {
		t.Errorf("a vassal with a config error was spawned: pid %d", v.PID)
	}
}
