package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// installAs writes a vassal file owned by uid the atomic way (the owner is
// set before the rename, so the emperor never sees it owned by root).
func (e *emperorProc) installAs(name, body string, uid, gid int) string {
	e.t.Helper()
	tmp := filepath.Join(e.dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Chown(tmp, uid, gid); err != nil {
		e.t.Fatal(err)
	}
	path := filepath.Join(e.dir, name+".ini")
	if err := os.Rename(tmp, path); err != nil {
		e.t.Fatal(err)
	}
	return path
}

// TestIncludeUnderEmperor: a tenant's vassal file (owned by nobody) that
// reads a section of a shared base file (ini = base.ini:web), with
// placeholders used across the two files, runs and serves, and status
// lists the file it reads; a change to the base file alone reloads it (the
// rescan sees it), serving the new docroot; and a vassal file of the same
// tenant that names files only root can read (ini = and @(file)) is a
// config error in status and in `emperor check`, at its lines, saying whose
// credentials were refused. The old emperor
// ignored ini = with a warning (the vassal served nothing) and read @(file)
// as root, handing the tenant root's secret.
func TestIncludeUnderEmperor(t *testing.T) {
	const nobody, nogroup = 65534, 65534
	pub := publicDir(t)
	for name, content := range map[string]string{
		"www1/hello.txt": "one", "www2/hello.txt": "two",
		"secret.ini": "[uwsgi]\nenv = ROOT_ONLY=1\n", "secret.txt": "root's secret",
	} {
		p := filepath.Join(pub, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []string{"secret.ini", "secret.txt"} {
		if err := os.Chmod(filepath.Join(pub, s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	base := filepath.Join(pub, "base.ini")
	writeBase := func(docroot string) {
		t.Helper()
		body := fmt.Sprintf("[uwsgi]\nmaster = true\n[web]\nuid = nobody\ngid = nogroup\ndocroot = %s/%s\nstatic-map = /=%%(docroot)\nenv = VASSAL=%%N\n", pub, docroot)
		tmp := base + ".tmp"
		if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, base); err != nil {
			t.Fatal(err)
		}
	}
	writeBase("www1")

	e := startEmperor(t)
	port := freePort(t)
	e.installAs("tenant", fmt.Sprintf("[uwsgi]\nini = %s:web\nhttp-socket = 127.0.0.1:%d\nenv = DOCROOT=%%(docroot)\n", base, port), nobody, nogroup)
	e.waitState("tenant", "running", hangTimeout)
	url := fmt.Sprintf("http://127.0.0.1:%d/hello.txt", port)
	if body := waitHTTP(t, url, hangTimeout); body != "one" {
		t.Fatalf("served %q, want the base file's docroot www1", body)
	}

	if v, _ := e.vassal("tenant"); len(v.Reads) != 1 || v.Reads[0] != base+":web" {
		t.Fatalf("status reads %q, want the base file's section", v.Reads)
	}
	if out, err := exec.Command(emperorBin, "status", "--control", e.control).CombinedOutput(); err != nil || !strings.Contains(string(out), "tenant reads "+base+":web") {
		t.Fatalf("emperor status: %v\n%s", err, out)
	}

	// Only the included file changes: the vassal reloads onto www2.
	writeBase("www2")
	waitFor(t, hangTimeout, "the vassal to serve the new docroot of base.ini", func() bool {
		code, body, err := get(url)
		return err == nil && code == 200 && body == "two"
	})
	if !strings.Contains(e.log.String(), "reloading vassal in place") {
		t.Fatalf("the change of base.ini did not reload the vassal in place:\n%s", e.log.String())
	}

	// The tenant names root's files: refused, at their lines.
	bad := e.installAs("snoop", fmt.Sprintf("[uwsgi]\nini = %s/secret.ini\nhttp-socket = 127.0.0.1:%d\nstatic-map = /=%s/www1\nenv = KEY=@(%s/secret.txt)\n", pub, freePort(t), pub, pub), nobody, nogroup)
	want := []string{
		fmt.Sprintf("%s:2: ini = %s/secret.ini: %s/secret.ini: permission denied (read as uid %d, the owner of the vassal file)", bad, pub, pub, nobody),
		fmt.Sprintf("%s:5: env: @(%s/secret.txt): %s/secret.txt: permission denied (read as uid %d, the owner of the vassal file)", bad, pub, pub, nobody),
	}
	v := e.waitState("snoop", "failed-config", hangTimeout)
	for _, w := range want {
		if !strings.Contains(v.ConfigError, w) {
			t.Errorf("status config error %q\nlacks %q", v.ConfigError, w)
		}
	}
	if strings.Contains(e.log.String(), "root's secret") || strings.Contains(v.ConfigError, "root's secret") {
		t.Fatal("the tenant's vassal read root's secret")
	}
	chk := exec.Command(emperorBin, "check", bad)
	out, _ := chk.Output()
	if chk.ProcessState.ExitCode() != 1 {
		t.Fatalf("emperor check: exit %d\n%s", chk.ProcessState.ExitCode(), out)
	}
	for _, w := range want {
		if !strings.Contains(string(out), w) {
			t.Errorf("emperor check printed:\n%s\nlacking %q", out, w)
		}
	}
	out, err := exec.Command(emperorBin, "status", "--control", e.control).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "permission denied (read as uid 65534") {
		t.Fatalf("emperor status: %v\n%s", err, out)
	}
	// The other vassal is untouched.
	if code, body, err := get(url); err != nil || code != 200 || body != "two" {
		t.Fatalf("tenant: %d %q %v", code, body, err)
	}
}
