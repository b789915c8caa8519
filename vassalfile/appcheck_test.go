package vassalfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emperor-dev/emperor/uwsgi"
)

// checkApp parses and decodes src and checks its app lines against the
// installed uwsgi.
func checkApp(t *testing.T, src string) []Diag {
	t.Helper()
	_, s := decodeSrc(t, src, ParseOptions{})
	if s.App == nil {
		t.Fatalf("no app in %q", src)
	}
	return CheckAppServer("/v/app.ini", s.App)
}

// wantDiags checks that got has n diagnostics and that each of want is in
// one of them.
func wantDiags(t *testing.T, got []Diag, n int, want ...string) {
	t.Helper()
	var all []string
	for _, d := range got {
		all = append(all, d.String())
	}
	text := strings.Join(all, "\n")
	if len(got) != n {
		t.Fatalf("got %d diagnostics, want %d:\n%s", len(got), n, text)
	}
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("no %q in:\n%s", w, text)
		}
	}
}

// The installed uwsgi (make deps: uwsgi-core with the python3, psgi and php
// plugins) knows the lines of these files.
func TestCheckAppServerAgainstInstalledUWSGI(t *testing.T) {
	for _, src := range []string{
		seed003Zip,
		"[uwsgi]\nplugins = python3,http\nhttp = 127.0.0.1:8080\nmodule = app:application\nmaster = true\nprocesses = 4\nchmod-socket = 660\nvacuum = true\n",
		"[uwsgi]\nsocket = /run/php.sock\nphp-docroot = /var/www\nphp-index = index.php\nstatic-map = /s=/var/www/static\n",
		"[uwsgi]\nhttp = :8080\nwsgi-file = app.py\n", // http's plugin is loaded for it too
	} {
		if d := checkApp(t, src); len(d) != 0 {
			t.Errorf("%q: %v", src, d)
		}
	}
}

func TestCheckAppServerMissingPlugins(t *testing.T) {
	// rack is Debian's (uwsgi-plugin-rack-ruby3.1) but not installed by
	// make deps: the loader's line says what to install.
	wantDiags(t, checkApp(t, "[uwsgi]\nhttp-socket = :8080\nrack = /srv/config.ru\nrb-require = x\n"), 1,
		"/v/app.ini:3: rack needs uWSGI's rack plugin, which is not installed: apt-get install uwsgi-plugin-rack-ruby3.1")
	wantDiags(t, checkApp(t, "[uwsgi]\nplugins = rack\nrack = /srv/config.ru\n"), 1,
		"/v/app.ini:2: plugin rack is not installed: apt-get install uwsgi-plugin-rack-ruby3.1")
	// Other builds call Python's plugin python; Debian's is python3.
	wantDiags(t, checkApp(t, "[uwsgi]\nplugin = python\nmodule = app\n"), 1,
		"/v/app.ini:2: plugin python cannot be loaded", "Debian's is python3 (write plugin = python3)")
	// The plugins of options the plugin line does not name are loaded for
	// them; one that is not installed is an error on its first line.
	wantDiags(t, checkApp(t, "[uwsgi]\nplugins = python3\nmodule = app\nhttp = :8080\npsgi = a.pl\n"), 0)
	wantDiags(t, checkApp(t, "[uwsgi]\nplugins = python3\nmodule = app\nrb-require = x\n"), 1,
		"/v/app.ini:4: rb-require needs uWSGI's rack plugin, which is not installed: apt-get install uwsgi-plugin-rack-ruby3.1")
}

// fakeUWSGI is a uwsgi that knows the options names and answers after
// running shell code pre.
func fakeUWSGI(t *testing.T, pre string, names ...string) {
	t.Helper()
	var help strings.Builder
	for _, n := range names {
		help.WriteString("    --" + n + "    some help\\n")
	}
	dir := t.TempDir()
	// A root emperor asks uwsgi as nobody (uwsgi.Installed): nobody must
	// reach the script.
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "uwsgi")
	script := "#!/bin/sh\n" + pre + "\nprintf 'Usage: uwsgi [options...]\\n" + help.String() + "'\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	old := uwsgi.Binary
	uwsgi.Binary = bin
	t.Cleanup(func() { uwsgi.Binary = old })
}

func TestCheckAppServerUnknownToTheInstalledUWSGI(t *testing.T) {
	// A uwsgi built without some core options (the catalog has them).
	fakeUWSGI(t, "", "plugin", "plugins", "http-socket", "master", "psgi", "procesess")
	wantDiags(t, checkApp(t, "[uwsgi]\nhttp-socket = :8080\npsgi = a.pl\nmaster = true\nprocesses = 4\nvacuum = true\n"), 2,
		`/v/app.ini:5: the installed uwsgi does not know the option "processes" (did you mean "procesess"?)`,
		`/v/app.ini:6: the installed uwsgi does not know the option "vacuum"`)
}

func TestCheckAppServerWithoutUWSGI(t *testing.T) {
	old := uwsgi.Binary
	uwsgi.Binary = filepath.Join(t.TempDir(), "no-uwsgi-here")
	t.Cleanup(func() { uwsgi.Binary = old })
	wantDiags(t, checkApp(t, "[uwsgi]\nuid = 1000\nhttp-socket = :8080\npsgi = a.pl\n"), 1,
		"/v/app.ini:4: this vassal runs an app on uWSGI's app server, and uWSGI is not installed", "apt-get install uwsgi-core")
}

func TestCheckAppServerThatFailsIsAWarning(t *testing.T) {
	fakeUWSGI(t, "echo broken >&2; exit 3")
	d := checkApp(t, "[uwsgi]\nhttp-socket = :8080\npsgi = a.pl\n")
	wantDiags(t, d, 1, "/v/app.ini:3: warning: the lines for uWSGI are not checked against the installed uwsgi", "broken")
	// One that hangs is stopped.
	fakeUWSGI(t, "exec sleep 600")
	old := uwsgi.HelpTimeout
	uwsgi.HelpTimeout = 200 * time.Millisecond
	t.Cleanup(func() { uwsgi.HelpTimeout = old })
	wantDiags(t, checkApp(t, "[uwsgi]\nhttp-socket = :8080\npsgi = a.pl\n"), 1, "warning:", "no answer within 200ms")
}

func TestCheckAppServerNoApp(t *testing.T) {
	if d := CheckAppServer("/v/a.ini", nil); d != nil {
		t.Fatal(d)
	}
}
