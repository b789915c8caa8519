package vassalfile

import (
	"strings"
	"testing"
)

// TestSuggestTypos: a typo gets the option it stands for.
func TestSuggestTypos(t *testing.T) {
	for typo, want := range map[string]string{
		"attach-deamon":        "attach-daemon",
		"atach-daemon":         "attach-daemon",
		"atach-deamon":         "attach-daemon",
		"attachdaemon":         "attach-daemon",
		"attach_daemon":        "attach-daemon",
		"smart-attach-deamon":  "smart-attach-daemon",
		"mountpoint-chek":      "mountpoint-check",
		"chekc-interval":       "check-interval",
		"hook-prejail":         "hook-pre-jail",
		"hook-pre-jial":        "hook-pre-jail",
		"exec-as-usr":          "exec-as-user",
		"exec-as-user-atexti":  "exec-as-user-atexit",
		"mount-asp":            "mount-asap",
		"http-sockt":           "http-socket",
		"htp-socket":           "http-socket",
		"static-mpa":           "static-map",
		"static-autoinde":      "static-autoindex",
		"glusterfs-mout":       "glusterfs-mount",
		"reload-mrecy":         "reload-mercy",
		"shared-sockets":       "shared-socket",
		"no-initgroup":         "no-initgroups",
		"add-gdi":              "add-gid",
		"chrot":                "chroot",
		"unshrae":              "unshare",
		"set-placholder":       "set-placeholder",
		"hook-timout":          "hook-timeout",
		"mountpoint-check-tmo": "",
		// uWSGI's own options (the catalog) are suggested too
		"proccesses":    "processes",
		"harakri":       "harakiri",
		"chmod-sockt":   "chmod-socket",
		"wsgi-flie":     "wsgi-file",
		"modul":         "module",
		"uwsgi-sockte":  "uwsgi-socket",
		"socke":         "socket",
		"touch-relaod":  "touch-reload",
		"hook-pre-ap":   "hook-pre-app",
		"exec-post-ap":  "exec-post-app",
		"hook-acepting": "hook-accepting",
	} {
		if got := suggest(typo); got != want {
			t.Errorf("suggest(%q) = %q, want %q", typo, got, want)
		}
	}
}

// TestSuggestNeverWrong: names that are not typos of their neighbours get
// no suggestion that changes their meaning. Some of them are uWSGI
// options (they may be known by the time this runs; the suggestion for
// them must still not be the neighbour).
func TestSuggestNeverWrong(t *testing.T) {
	for key, wrong := range map[string][]string{
		// an app-server phase is not a phase run as root before the jail
		"hook-pre-app":   {"hook-pre-jail", "hook-post-jail"},
		"hook-pre-ap":    {"hook-pre-jail"},
		"hook-post-app":  {"hook-post-jail", "hook-pre-jail"},
		"exec-pre-app":   {"exec-pre-jail"},
		"exec-post-app":  {"exec-post-jail"},
		"mount-post-app": {"mount-post-jail"},
		"hook-as-mule":   {"hook-as-user"},
		"hook-as-vassal": {"hook-as-user", "hook-as-root"},
		"exec-as-vassal": {"exec-as-user"},
		"hook-post-fork": {"hook-post-jail"},
		// numbered options are options of their own
		"attach-daemon2":       {"attach-daemon"},
		"smart-attach-daemon2": {"smart-attach-daemon"},
		"static-map2":          {"static-map"},
		"logto2":               {"logto"},
		"cron2":                {"cron"},
		"pidfile2":             {"pidfile"},
		"hook-accepting1":      {"hook-accepting"},
		// a neighbour by letters, not by meaning
		"chmod-socket":    {"http-socket", "shared-socket"},
		"chown-socket":    {"http-socket", "shared-socket"},
		"socket":          {"shared-socket", "http-socket"},
		"uwsgi-socket":    {"http-socket", "shared-socket"},
		"socket-timeout":  {"hook-timeout"},
		"http-timeout":    {"hook-timeout"},
		"static-skip-ext": {"static-index"},
		"static-check":    {"static-safe"},
		"env2":            {"env"},
		"uid2":            {"uid"},
		"umask":           {"unshare"},
		"mount":           {"mount-asap"},
		"logto":           {"hook-asap"},
	} {
		got := suggest(key)
		for _, w := range wrong {
			if got == w {
				t.Errorf("suggest(%q) = %q: wrong", key, got)
			}
		}
	}
}

// TestUnknownOptionHint: the error of an unknown key says what to write,
// through Parse (once per key, also in a loop).
func TestUnknownOptionHintInLoop(t *testing.T) {
	src := "[uwsgi]\nfor = a b\nattach-deamon = sleep %(_)\nendfor =\nchmod-sockett = 660\n"
	_, err := parse(t, src, ParseOptions{})
	e := diags(t, err)
	if len(e) != 2 || !strings.Contains(e[0].Message, `unknown option "attach-deamon" (did you mean "attach-daemon"?)`) ||
		strings.Contains(e[1].Message, "http-socket") {
		t.Fatalf("%v", e)
	}
}

func TestPhaseClass(t *testing.T) {
	for name, want := range map[string]string{
		"hook-pre-app": phaseApp, "hook-pre-ap": phaseApp, "exec-pre-jail": phaseSupervisor,
		"hook-prejail": phaseSupervisor, "hok-as-root": phaseSupervisor, "hook-as-vassal": phaseEmperor,
		"hook-timeout": "", "attach-daemon": "", "mount-check": "", "mountpoint-check": "",
	} {
		if got := phaseClass(name); got != want {
			t.Errorf("phaseClass(%q) = %q, want %q", name, got, want)
		}
	}
}

// TestNoAppHints: an option of uWSGI's in a vassal without an app says
// what to write instead, when something of ours does it.
func TestNoAppHints(t *testing.T) {
	for _, c := range []struct{ key, value, want string }{
		{"attach-daemon2", "cmd=memcached -p 11211", "write attach-daemon = memcached -p 11211"},
		{"attach-daemon2", "cmd=redis-server /etc/r.conf,pidfile=/run/r.pid", "write smart-attach-daemon = /run/r.pid redis-server /etc/r.conf"},
		{"attach-daemon2", "exec=worker,pidfile=/run/w.pid,daemonize=1", "write attach-daemon = worker"},
		{"attach-daemon2", "cmd=worker,touch=/tmp/t,stopsignal=15", "write attach-daemon = worker (its touch, stopsignal have no equivalent here)"},
		{"attach-daemon2", "pidfile=/run/x.pid", "write attach-daemon = COMMAND"},
		{"hook-as-root", "exec:x", ""},
		{"master", "true", "remove the line, or add your app's loader"},
		{"cheaper-algo", "spare", "it configures uWSGI's app server"},
		{"chmod-socket", "660", ""},
	} {
		got := noAppHint(c.key, c.value)
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%s = %s: %q, want %q", c.key, c.value, got, c.want)
		}
		for _, wrong := range []string{"pre-jail", "as-root", "post-jail", "in-jail"} {
			if strings.Contains(got, wrong) {
				t.Errorf("%s: the hint names a root phase: %q", c.key, got)
			}
		}
	}
	// The hooks of app phases are errors without an app; their hint
	// never names a root phase.
	for _, k := range []string{"hook-pre-app", "exec-pre-app", "hook-post-app", "hook-accepting1-once", "hook-master-start"} {
		_, err := parse(t, "[uwsgi]\n"+k+" = exec:./manage.py migrate\n", ParseOptions{})
		e := diags(t, err)
		for _, wrong := range []string{"pre-jail", "as-root", "post-jail", "in-jail", "asap"} {
			if strings.Contains(e[0].Message, wrong) {
				t.Errorf("%s: the hint names a root phase: %s", k, e[0])
			}
		}
	}
}

// TestSocketHint: a uwsgi-protocol socket that the file gives uWSGI's app
// server nothing to serve through says that http-socket serves files.
func TestSocketHint(t *testing.T) {
	for src, want := range map[string]string{
		"socket = :3031\nattach-daemon = x\n":                           "write http-socket = :3031 with static-map",
		"uwsgi-socket = /run/a.sock\n":                                  "write http-socket = /run/a.sock with static-map",
		"socket = :3031\nhttp-socket = :8080\nattach-daemon = x\n":      "http-socket (line 3) serves files over HTTP without it: remove this line",
		"socket = :3031\nmodule = app\n":                                "",
		"socket = :3031\nstatic-map = /=/srv\n":                         "",
		"socket = :3031\nroute = ^/ redirect:https://example.com/\n":    "",
		"socket = :3031\nplugin = ping\n":                               "",
		"http-socket = :3031\nstatic-map = /=/srv\nattach-daemon = x\n": "",
	} {
		f, err := parse(t, "[uwsgi]\n"+src, ParseOptions{})
		if err != nil {
			t.Fatalf("%q: %v", src, err)
		}
		got := ""
		for _, w := range f.Warnings {
			if strings.Contains(w.Message, "uwsgi protocol") {
				got = w.String()
			}
		}
		if (want == "") != (got == "") || !strings.Contains(got, want) {
			t.Errorf("%q: %q, want %q", src, got, want)
		}
	}
}

// TestAppGlusterNoCascade: a glusterfs-mount in a vassal that runs an app
// is one error, not also "add http-socket" (http-socket is uWSGI's there).
func TestAppGlusterNoCascade(t *testing.T) {
	f, err := parse(t, "[uwsgi]\nmodule = app\nhttp-socket = :8080\nglusterfs-mount = mountpoint=/,volume=v,server=127.0.0.1:24007\n", ParseOptions{})
	if e := diags(t, err); len(e) != 1 || e[0].Line != 4 {
		t.Fatalf("parse: %v", err)
	}
	if _, err := Decode(f); err != nil {
		t.Fatalf("decode: %v", err)
	}
}
