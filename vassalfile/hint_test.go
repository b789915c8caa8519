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
