package vassalfile

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/emperor-dev/emperor/spell"
	"github.com/emperor-dev/emperor/uwsgi"
)

// unknownOption is the error for key, an option nobody knows, with a hint
// of what to write when there is one. It is cached per parse: a line in a
// loop's body is read once per item, and a suggestion compares the key with
// every option name.
func (p *parser) unknownOption(k string) string {
	if m, ok := p.hints[k]; ok {
		return m
	}
	if p.errs.full() {
		// Only counted: spare the comparison.
		return "unknown option"
	}
	m := fmt.Sprintf("unknown option %s", QuoteValue(k))
	if s := suggest(k); s != "" {
		m = fmt.Sprintf("unknown option %s (did you mean %s?)", QuoteValue(k), QuoteValue(s))
	}
	if p.hints == nil {
		p.hints = map[string]string{}
	}
	p.hints[k] = m
	return m
}

// hookFamilies are the first words of uWSGI's hook options
// (FAMILY-PHASE).
var hookFamilies = []string{"hook", "exec", "call", "mount", "umount"}

// Phase classes: where a hook phase runs. A spelling suggestion never
// crosses from one class to another: hook-pre-app (uWSGI runs it in the
// app server, as the app's user, before the app loads) must not become
// hook-pre-jail (a command run as root before the jail).
const (
	phaseSupervisor = "supervisor" // ours: PID 1 before and after the privilege drop
	phaseApp        = "app"        // run by uWSGI's app server
	phaseEmperor    = "emperor"    // run by uWSGI's Emperor, not by a vassal
)

// hookPhases are uWSGI 2.0's hook phases (core/uwsgi.c) and their class.
var hookPhases = map[string]string{
	"asap": phaseSupervisor, "pre-jail": phaseSupervisor, "post-jail": phaseSupervisor,
	"in-jail": phaseSupervisor, "as-root": phaseSupervisor, "as-user": phaseSupervisor,
	"as-user-atexit": phaseSupervisor,

	"pre-app": phaseApp, "post-app": phaseApp, "post-fork": phaseApp, "accepting": phaseApp,
	"accepting1": phaseApp, "accepting-once": phaseApp, "accepting1-once": phaseApp,
	"master-start": phaseApp, "touch": phaseApp, "as-mule": phaseApp, "as-gateway": phaseApp,

	"emperor-start": phaseEmperor, "emperor-stop": phaseEmperor, "emperor-reload": phaseEmperor,
	"emperor-lost": phaseEmperor, "as-vassal": phaseEmperor, "as-vassal1": phaseEmperor,
	"as-vassal3": phaseEmperor, "as-emperor": phaseEmperor, "as-emperor1": phaseEmperor,
	"as-emperor2": phaseEmperor, "as-emperor4": phaseEmperor, "as-on-demand-vassal": phaseEmperor,
	"as-on-config-vassal": phaseEmperor, "as-emperor-before-vassal": phaseEmperor,
	"as-vassal-before-drop": phaseEmperor, "as-emperor-setns": phaseEmperor,
}

// phaseClass is the class of the hook phase a name (typed, or a known
// option) is written for: its first word within one edit of a hook family,
// the rest the nearest uWSGI phase. "" for a name that is no hook option,
// or whose phase is as near to phases of two classes.
func phaseClass(name string) string {
	fam, phase, ok := strings.Cut(name, "-")
	if !ok {
		return ""
	}
	isFamily := false
	for _, f := range hookFamilies {
		if spell.Distance(fam, f) <= 1 {
			isFamily = true
		}
	}
	if !isFamily {
		return ""
	}
	if c, ok := hookPhases[phase]; ok {
		return c
	}
	class, best := "", max(1, len(phase)/3)+1
	for ph, c := range hookPhases {
		switch d := spell.Distance(phase, ph); {
		case d < best:
			class, best = c, d
		case d == best && c != class:
			class = "" // as near to two classes: say nothing
		}
	}
	return class
}

// suggest finds the known option name that a typo most likely meant, or
// "": only a plausible typo (spell.Typo: word by word, a trailing number
// is part of the name, not an opposite), and never a hook option of
// another class of phase (phaseClass).
func suggest(k string) string {
	if len(k) > 64 {
		return ""
	}
	class := phaseClass(k)
	return spell.Nearest(k, optionNames(), func(name string) bool { return phaseClass(name) == class })
}

// optionNames are the registered option names and aliases, and the
// options of uWSGI's catalog, sorted.
var optionNames = sync.OnceValue(func() []string {
	out := make([]string, 0, len(canonical))
	for name := range canonical {
		out = append(out, name)
	}
	for _, name := range uwsgi.Names() {
		if _, ours := canonical[name]; !ours {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
})

// noAppHint is what to write instead of uWSGI's option k (value v) in a
// vassal that runs no app server, appended to its "has no effect" warning;
// "" when nothing of ours does what it does. (The hooks of app phases are
// errors there, with their own hint: options_hooks.go.)
func noAppHint(k, v string) string {
	if k == "attach-daemon2" {
		return daemon2Hint(v)
	}
	if processModel(k) {
		return "; it configures uWSGI's app server, which runs only for a file with a loader (module, wsgi-file, psgi...), a uwsgi socket or the http router: remove the line, or add your app's loader"
	}
	return ""
}

// processModel says whether k is one of uWSGI's process-model options:
// the master, the workers and how they are spawned, recycled and fed.
func processModel(k string) bool {
	switch k {
	case "master", "processes", "workers", "cheaper", "listen", "offload-threads", "harakiri",
		"harakiri-verbose", "max-requests", "max-requests-delta", "buffer-size", "post-buffering",
		"thunder-lock", "lazy-apps", "lazy", "enable-threads", "single-interpreter", "vacuum",
		"die-on-term", "reload-on-rss", "reload-on-as", "evil-reload-on-rss", "evil-reload-on-as",
		"max-worker-lifetime", "worker-reload-mercy", "socket-timeout", "async", "ugreen",
		"cpu-affinity", "memory-report", "no-orphans", "need-app", "strict", "auto-procname",
		"procname", "procname-prefix", "procname-prefix-spaced", "procname-master":
		return true
	}
	return strings.HasPrefix(k, "cheaper-")
}

// daemon2Hint translates an attach-daemon2 value (uWSGI's key=value form,
// core/daemons.c) into the line that does the same here.
func daemon2Hint(v string) string {
	kv := map[string]string{}
	var other []string
	for _, part := range strings.Split(v, ",") {
		key, val, _ := strings.Cut(part, "=")
		key = strings.TrimSpace(key)
		switch key {
		case "command", "cmd", "exec":
			kv["cmd"] = strings.TrimSpace(val)
		case "pidfile":
			kv["pidfile"] = strings.TrimSpace(val)
		case "daemonize", "daemon":
			kv["daemonize"] = strings.TrimSpace(val)
		case "":
		default:
			other = append(other, key)
		}
	}
	const what = "; attach-daemon2 takes uWSGI's key=value form and is run by uWSGI's master: without an app server, "
	cmd := kv["cmd"]
	if cmd == "" {
		return what + "write attach-daemon = COMMAND (a daemon that stays in the foreground) or smart-attach-daemon = PIDFILE COMMAND (one that forks and writes PIDFILE)"
	}
	line := "attach-daemon = " + cmd
	if pid := kv["pidfile"]; pid != "" {
		if b, err := ParseBool(kv["daemonize"]); kv["daemonize"] == "" || err != nil || !b {
			// The command daemonizes itself and writes the pidfile.
			line = "smart-attach-daemon = " + pid + " " + cmd
		}
	}
	h := what + "write " + line
	if len(other) > 0 {
		h += fmt.Sprintf(" (its %s %s no equivalent here)", strings.Join(other, ", "), map[bool]string{true: "has", false: "have"}[len(other) == 1])
	}
	return h
}

// servesWithoutApp says whether uWSGI's app server answers requests on a
// line of option k without a loaded app: static files, internal routing,
// or a plugin the file loads by name.
func servesWithoutApp(k string) bool {
	return strings.HasPrefix(k, "static-") || k == "check-static" || strings.Contains(k, "route") ||
		k == "plugin" || k == "plugins"
}

// appHints adds the warnings that need the whole file: a uwsgi-protocol
// socket when nothing in the file gives uWSGI's app server anything to
// serve (people write socket where they mean http-socket).
func (p *parser) appHints() {
	if p.o.Scope&ScopeVassal == 0 || !AsksForApp(p.file.Entries) {
		return
	}
	var sock, httpSock *Entry
	for i, e := range p.file.Entries {
		k := e.name()
		if _, loader := uwsgi.LoaderOf(k); loader || servesWithoutApp(k) {
			return
		}
		switch {
		case (k == "socket" || k == "uwsgi-socket") && sock == nil:
			sock = &p.file.Entries[i]
		case k == "http-socket" && httpSock == nil:
			httpSock = &p.file.Entries[i]
		}
	}
	if sock == nil {
		return
	}
	fix := fmt.Sprintf("to serve files over HTTP, write http-socket = %s with static-map", sock.Value)
	if httpSock != nil {
		fix = fmt.Sprintf("http-socket (line %d) serves files over HTTP without it: remove this line", httpSock.Line)
	}
	p.warnf(sock.Line, "%s speaks the uwsgi protocol (nginx's uwsgi_pass), served only by uWSGI's app server, and this file gives it nothing to serve (no loader, static-map or route): %s, or add the app's loader (module, wsgi-file, psgi...)",
		sock.name(), fix)
}
