// Package hooks parses and runs uWSGI 2.0's hooks: "[!]action:args" lines
// run at fixed phases of a vassal's start (asap, pre-jail, in-jail,
// post-jail, as-root, as-user, as-user-atexit) and of its link with the
// emperor (emperor-stop, emperor-reload). Every action, flag
// and argument is checked when the file is parsed, so a typo is a config
// error with file and line, never a runtime surprise.
//
// The phases that run inside uWSGI's app server (pre-app, post-app,
// accepting, master-start...) are not run here: ParseApp checks such a
// line as uWSGI 2.0.21 would run it, and the line is handed to uWSGI.
package hooks

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/emperor-dev/emperor/spell"
)

// Phase is when a hook runs.
type Phase string

// The phases PID 1 runs, in uWSGI's order (core/uwsgi.c, core/utils.c:
// uwsgi_as_root), and those of the emperor link (core/emperor.c).
const (
	Asap         Phase = "asap"
	PreJail      Phase = "pre-jail"
	InJail       Phase = "in-jail"
	PostJail     Phase = "post-jail"
	AsRoot       Phase = "as-root"
	AsUser       Phase = "as-user"
	AsUserAtexit Phase = "as-user-atexit"

	// WaitFor runs the wait-for-fs, -file, -dir, -mountpoint and
	// -interface options: after the jail, before as-root (uWSGI:
	// uwsgi_as_root); and wait-for-socket after as-user, before the app.
	WaitFor Phase = "wait-for"

	EmperorStop   Phase = "emperor-stop"
	EmperorReload Phase = "emperor-reload"
)

// Phases lists the start phases in the order they run on a first start.
var Phases = []Phase{Asap, PreJail, InJail, PostJail, AsRoot, AsUser, AsUserAtexit}

// EmperorPhases are run when the emperor asks PID 1 to stop or reload
// (uWSGI runs them in a vassal's master when its Emperor says so).
// uWSGI's emperor-lost has no moment here: PID 1 dies with the emperor.
var EmperorPhases = []Phase{EmperorStop, EmperorReload}

// Fatal says whether a failure in the phase stops it and fails the vassal.
// As in uWSGI (uwsgi_hooks_run(..., fatal=0)), as-user-atexit and the
// emperor phases log a failure and go on with the next hook.
func (p Phase) Fatal() bool {
	switch p {
	case AsUserAtexit, EmperorStop, EmperorReload:
		return false
	}
	return true
}

// Family is how a hook line was written; within a phase, hook-<phase> lines
// run first, then mount-, umount-, exec- and call-<phase>, each in file
// order (uWSGI's order).
type Family int

const (
	FamilyHook Family = iota
	FamilyMount
	FamilyUmount
	FamilyExec
	FamilyCall
	// FamilyWait is a wait-for-* option (wait-for-fs = PATH...), which PID 1
	// runs as a hook of the WaitFor phase.
	FamilyWait
)

// Families lists the families in run order.
var Families = []Family{FamilyHook, FamilyMount, FamilyUmount, FamilyExec, FamilyCall}

// Prefix is the option prefix of the family: hook, mount, umount, exec, call.
func (f Family) Prefix() string {
	return [...]string{"hook", "mount", "umount", "exec", "call", "wait-for"}[f]
}

// Hook is one parsed hook line.
type Hook struct {
	Phase  Phase
	Family Family
	// Action is the canonical action that runs (callret:chdir runs chdir).
	Action string
	// Written is the action as the file wrote it, without "!" (cd, creat,
	// callret:chdir).
	Written string
	Args    string
	Line    int
	// Ref is Line for messages: "7", or "base.ini:7" for a line of an
	// included file; "" is Line.
	Ref string
	// Private is uWSGI's "!" prefix: the hook's arguments (a password
	// written to a file, a command line) never reach the log.
	Private bool
	// Timeout, when set, bounds the hook instead of hook-timeout (the
	// wait-for-*-timeout of a wait-for option).
	Timeout time.Duration
	// IgnoreFailure is set for actions whose failure uWSGI does not count
	// (call, safeexec): the failure is logged and the phase goes on.
	IgnoreFailure bool

	mount  *mountSpec
	umount *umountSpec
	mode   uint32 // chmod
	ids    [2]int // chown2
	file   string // write, append...: FILE; the rest of Args is the data
	data   string
	hasArg bool // appendn: a FILE alone appends a newline
	exit   int  // exit
}

// String is the hook as written; a private hook hides its arguments.
func (h Hook) String() string {
	w := h.Written
	if w == "" {
		w = h.Action
	}
	if h.Private {
		return "!" + w + " (private: arguments not shown)"
	}
	if strings.Contains(w, ":") { // callret:chdir
		return strings.TrimSpace(w + " " + h.Args)
	}
	return w + ":" + h.Args
}

// Parse reads one hook-<phase> value, "[!]action:args", for a phase PID 1
// runs.
func Parse(phase Phase, value string, line int) (Hook, error) {
	priv, name, args, err := split(value)
	if err != nil {
		return Hook{}, err
	}
	h := Hook{Phase: phase, Family: FamilyHook, Written: name, Args: args, Line: line, Private: priv}
	if isCall(name) {
		if err := mapCall(&h); err != nil {
			return Hook{}, err
		}
		return h, nil
	}
	canon, ok := actionAlias[name]
	if !ok {
		return Hook{}, unknownAction(name)
	}
	h.Action = canon
	a := actions[canon]
	if a.notHere != "" {
		return Hook{}, fmt.Errorf("%s: %s", name, a.notHere)
	}
	if err := a.parse(&h); err != nil {
		return Hook{}, fmt.Errorf("%s: %w", name, err)
	}
	h.IgnoreFailure = a.ignoreFailure
	return h, nil
}

// ParseFamily reads a shortcut line: exec-<phase> = CMD, mount-<phase> =
// ARGS, umount-<phase> = ARGS, call-<phase> = FUNCTION.
func ParseFamily(phase Phase, fam Family, value string, line int) (Hook, error) {
	if fam == FamilyHook {
		return Parse(phase, value, line)
	}
	if fam == FamilyCall {
		// uwsgi_call_symbol: a C function called with no argument, whose
		// result is not looked at by most phases.
		h := Hook{Phase: phase, Family: fam, Written: "call", Args: strings.TrimSpace(value), Line: line}
		if err := mapCall(&h); err != nil {
			return Hook{}, err
		}
		return h, nil
	}
	h, err := Parse(phase, fam.Prefix()+":"+value, line)
	h.Family = fam
	return h, err
}

// split cuts "[!]action:args".
func split(value string) (priv bool, name, args string, err error) {
	name, args, ok := strings.Cut(value, ":")
	if !ok {
		return false, "", "", fmt.Errorf("%s is not action:arguments (e.g. exec:/bin/true)", quote(value))
	}
	name = strings.TrimSpace(name)
	if strings.HasPrefix(name, "!") {
		priv, name = true, strings.TrimSpace(name[1:])
	}
	return priv, name, strings.TrimSpace(args), nil
}

func unknownAction(name string) error {
	if hint, ok := notUWSGI[name]; ok {
		return fmt.Errorf("%s is not a hook action of uWSGI 2.0: %s", quote(name), hint)
	}
	if s := nearest(name); s != "" {
		return fmt.Errorf("unknown hook action %s (did you mean %s?)", quote(name), s)
	}
	return fmt.Errorf("unknown hook action %s (known: %s)", quote(name), strings.Join(Actions(), ", "))
}

// notUWSGI are actions people expect from other tools; uWSGI has none of
// them, so a file using them would not run on uWSGI either.
var notUWSGI = map[string]string{
	"symlink": "write exec:ln -s TARGET LINK",
	"ln":      "write exec:ln -s TARGET LINK",
	"rmdir":   "write exec:rmdir DIR",
	"mkfifo":  "write exec:mkfifo PATH",
	"chroot":  "use the chroot or pivot_root option, which PID 1 applies after the pre-jail, in-jail and post-jail hooks",
	"writefd": "write to a file with write:FILE DATA",
	"rm":      "write unlink:FILE",
	"touch":   "write create:FILE (it truncates, as uWSGI's does) or appendn",
	"sleep":   "write exec:sleep N",
	"setenv":  "write putenv:KEY=VALUE",
	"env":     "write putenv:KEY=VALUE",
}

// Actions lists the action names PID 1 runs, aliases included, for docs
// and error messages.
func Actions() []string {
	out := make([]string, 0, len(actionAlias))
	for a, canon := range actionAlias {
		if actions[canon].notHere == "" {
			out = append(out, a)
		}
	}
	out = append(out, "call", "callret", "callint", "callintret")
	sort.Strings(out)
	return out
}

// nearest suggests the known action that name is a typo of, if it is one
// (spell.Typo: never an opposite such as unlink for link, nor cd for cp).
func nearest(name string) string { return spell.Nearest(name, Actions(), nil) }

// quote writes a value as Go would quote it.
func quote(s string) string { return fmt.Sprintf("%q", s) }

// waitActions map the wait-for-* options to what runs them.
var waitActions = map[string]string{
	"wait-for-fs": "wait_for_fs", "wait-for-file": "wait_for_file", "wait-for-dir": "wait_for_dir",
	"wait-for-mountpoint": "wait_for_mountpoint", "wait-for-interface": "wait_for_interface",
	"wait-for-socket": "wait_for_socket",
}

// ParseWait reads a wait-for-* option (option is its canonical name:
// wait-for-fs, wait-for-file, wait-for-dir, wait-for-mountpoint,
// wait-for-interface, wait-for-socket) as the hook PID 1 runs for it.
func ParseWait(option, value string, timeout time.Duration) (Hook, error) {
	act, ok := waitActions[option]
	if !ok {
		return Hook{}, fmt.Errorf("%s is not a wait-for option", option)
	}
	h := Hook{Phase: WaitFor, Family: FamilyWait, Action: act, Written: option, Args: strings.TrimSpace(value), Timeout: timeout}
	if act == "wait_for_socket" {
		return h, parseSocketAddr(&h)
	}
	return h, needArgs(&h)
}
