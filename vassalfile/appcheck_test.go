package vassalfile

import (
	"os"
	"os/exec"
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

// routesFile has a route line of each kind that uWSGI 2.0.21 as Debian
// ships it takes, none of them with a plugin line: the plugins of their
// actions and conditions are loaded for the file.
const routesFile = `[uwsgi]
http-socket = :8080
psgi = a.pl
route = ^/old redirect-301:/new
route-host = ^www\. log:www
route-uri = ^/x rewrite:/y
route-label = end
route-if = incache:key=${REQUEST_URI} cache:key=${REQUEST_URI}
route-if-not = equal:${HTTP_HOST};example.com break:403 Forbidden
route-run = addheader:X-Routed: yes
final-route-status = 404 log:not found
error-route-run = goto:end
response-route = ^/ gzip:
`

func TestCheckAppServerRoutes(t *testing.T) {
	wantDiags(t, checkApp(t, routesFile), 0)
	_, s := decodeSrc(t, routesFile, ParseOptions{})
	var auto []string
	for _, l := range s.App.Lines {
		if l.Line == 0 {
			auto = append(auto, l.Value)
		}
	}
	if got := strings.Join(auto, " "); got != "psgi router_redirect router_rewrite router_cache transformation_gzip" {
		t.Fatalf("plugins loaded for the file: %s", got)
	}
	wantDiags(t, checkApp(t, "[uwsgi]\nhttp-socket = :8080\npsgi = a.pl\nroute = ^/old redirct:/new\nroute-if = equl:a;b log:x\nroute-run = cach:key=x\n"), 3,
		`/v/app.ini:4: route: uWSGI has no route action "redirct" (did you mean "redirect"?)`,
		`/v/app.ini:5: route-if: uWSGI has no route condition "equl" (did you mean "equal"?)`,
		`/v/app.ini:6: route-run: uWSGI has no route action "cach" (did you mean "cache"?)`)
	wantDiags(t, checkApp(t, "[uwsgi]\nhttp-socket = :8080\npsgi = a.pl\nroute = ^/old\nroute-if = equal log:x\nfinal-route-run = redirect\n"), 3,
		"/v/app.ini:4: route: invalid route syntax: uWSGI reads route = REGEXP ACTION:ARGS",
		"/v/app.ini:5: route-if: invalid route condition syntax: uWSGI reads route-if = CONDITION:ARGS ACTION:ARGS",
		"/v/app.ini:6: final-route-run: invalid route syntax: uWSGI reads final-route-run = ACTION:ARGS")
	// router_access is Debian's (uwsgi-plugin-router-access), not
	// installed by make deps.
	wantDiags(t, checkApp(t, "[uwsgi]\nhttp-socket = :8080\npsgi = a.pl\nroute = ^/admin access:action=deny\n"), 1,
		`/v/app.ini:4: route: route action "access" needs uWSGI's router_access plugin, which is not installed: apt-get install uwsgi-plugin-router-access`)
	wantDiags(t, checkApp(t, "[uwsgi]\nhttp-socket = :8080\nplugins = psgi,router_access\npsgi = a.pl\nroute = ^/admin access:action=deny\n"), 1,
		"/v/app.ini:3: plugin router_access is not installed: apt-get install uwsgi-plugin-router-access")
}

// A plugin that registers an action but does not load, or a uwsgi that
// lacks an action of its core: the action is the plugin's or the core's.
func TestCheckAppServerRouteActionsOfTheApp(t *testing.T) {
	app := &App{Lines: []AppLine{{Key: "plugin", Value: "psgi", Line: 2}, {Key: "psgi", Value: "a.pl", Line: 3}, {Key: "route", Value: "^/old redirect:/new", Line: 4}}}
	wantDiags(t, CheckAppServer("/v/app.ini", app), 1,
		`/v/app.ini:4: route: route action "redirect" needs uWSGI's router_redirect plugin (uwsgi-core), which this file does not load: add plugin = router_redirect`)
}

// What the check says of a route line is what uWSGI does when it starts
// with the lines the emperor hands it: it takes the file that passes, and
// exits at the line the check reports, with its own error. uWSGI parses
// the route lines before it sets its clock; an unknown clock makes it exit
// there, before it binds or loads anything.
func TestCheckAppServerRoutesAsUWSGIStarts(t *testing.T) {
	for _, c := range []struct{ src, uwsgiSays string }{
		{routesFile, ""},
		{"[uwsgi]\nhttp-socket = :8080\npsgi = a.pl\nroute = ^/old redirct:/new\n", `unable to register route "^/old redirct:/new"`},
		{"[uwsgi]\nhttp-socket = :8080\npsgi = a.pl\nroute-if = equl:a;b log:x\n", `unable to find "equl" route condition`},
		{"[uwsgi]\nhttp-socket = :8080\npsgi = a.pl\nroute = ^/old\n", "invalid route syntax"},
		{"[uwsgi]\nhttp-socket = :8080\npsgi = a.pl\nroute = ^/admin access:action=deny\n", `unable to register route "^/admin access:action=deny"`},
	} {
		diags := checkApp(t, c.src)
		_, s := decodeSrc(t, c.src, ParseOptions{})
		ini := filepath.Join(t.TempDir(), "app.ini")
		if err := os.WriteFile(ini, uwsgi.Render(s.App.Lines), 0o644); err != nil {
			t.Fatal(err)
		}
		out, _ := exec.Command(uwsgi.Binary, "--ini", ini, "--clock", "no-such-clock-here").CombinedOutput()
		started := strings.Contains(string(out), `unable to set "no-such-clock-here" clock`)
		switch {
		case c.uwsgiSays == "" && (!started || len(diags) > 0):
			t.Errorf("%q: uwsgi took it: %v, the check says %v:\n%s", c.src, started, diags, out)
		case c.uwsgiSays != "" && (started || !strings.Contains(string(out), c.uwsgiSays) || len(diags) != 1 || diags[0].Line != 4):
			t.Errorf("%q: uwsgi took it: %v, the check says %v:\n%s", c.src, started, diags, out)
		}
	}
}
