package vassalfile

import (
	"fmt"
	"strings"
	"time"

	"github.com/emperor-dev/emperor/hooks"
)

// hookOption maps a hook option name to its phase and family.
type hookOption struct {
	phase  hooks.Phase
	family hooks.Family
}

// hookOptions are the hook options PID 1 runs.
var hookOptions = map[string]hookOption{}

// hookParser reads a hook option's value; Decode sets the hook's line.
func hookParser(ho hookOption) func(string) (any, error) {
	return func(v string) (any, error) {
		return hooks.ParseFamily(ho.phase, ho.family, v, 0)
	}
}

// hookFamilyDocs are the option families of a phase PID 1 runs. uWSGI has
// no mount-/umount- for as-user and as-user-atexit; they are accepted here
// too (PID 1 may still hold the capability, e.g. for a FUSE unmount).
var hookFamilyDocs = []struct {
	fam hooks.Family
	doc string
}{
	{hooks.FamilyHook, "ACTION:ARGS hook"},
	{hooks.FamilyMount, "FSTYPE SOURCE TARGET [FLAGS [DATA]] (mount: action)"},
	{hooks.FamilyUmount, "TARGET [FLAGS] (umount: action)"},
	{hooks.FamilyExec, "shell command (exec: action)"},
	{hooks.FamilyCall, "C function called with no argument in uWSGI; only those with a builtin equivalent (sync) are accepted"},
}

// emperorConfigPhases are uWSGI phases that an Emperor runs from its own
// config, for every vassal it spawns (as-vassal, as-emperor) or when it
// starts (emperor-start). In a vassal file uWSGI accepts them and never runs
// them (unless the vassal is an Emperor itself, which ours never is).
var emperorConfigPhases = map[string]string{
	"hook-emperor-start": "runs when an Emperor starts",
	"hook-as-vassal":     "runs in an Emperor, in each vassal's process before it execs the vassal",
	"exec-as-vassal":     "runs in an Emperor, in each vassal's process before it execs the vassal",
	"mount-as-vassal":    "runs in an Emperor, in each vassal's process before it execs the vassal",
	"umount-as-vassal":   "runs in an Emperor, in each vassal's process before it execs the vassal",
	"call-as-vassal":     "runs in an Emperor, in each vassal's process before it execs the vassal",
	"call-as-vassal1":    "runs in an Emperor, in each vassal's process before it execs the vassal",
	"call-as-vassal3":    "runs in an Emperor, in each vassal's process before it execs the vassal",
	"hook-as-emperor":    "runs in an Emperor after it started a vassal",
	"exec-as-emperor":    "runs in an Emperor after it started a vassal",
	"mount-as-emperor":   "runs in an Emperor after it started a vassal",
	"umount-as-emperor":  "runs in an Emperor after it started a vassal",
	"call-as-emperor":    "runs in an Emperor after it started a vassal",
	"call-as-emperor1":   "runs in an Emperor after it started a vassal",
	"call-as-emperor2":   "runs in an Emperor after it started a vassal",
	"call-as-emperor4":   "runs in an Emperor after it started a vassal",
	"hook-emperor-lost":  "runs in a vassal that lost its Emperor; a vassal here never outlives the emperor (the kernel kills its PID 1 when the emperor dies, even by SIGKILL), so it has no moment to run",
}

func init() {
	for _, ph := range hooks.Phases {
		for _, fa := range hookFamilyDocs {
			name := fa.fam.Prefix() + "-" + string(ph)
			ho := hookOption{phase: ph, family: fa.fam}
			hookOptions[name] = ho
			register(&Option{Name: name, Scope: ScopeVassal, Kind: KindString, List: true,
				Parse: hookParser(ho), Default: "(none)", Group: "hooks",
				Doc:   fmt.Sprintf("%s run in the %s phase. See docs/hooks.md.", fa.doc, ph),
				UWSGI: phaseDiff(ph, fa.fam)})
		}
	}
	registerAppHooks()
	registerWaits()
	for _, ph := range hooks.EmperorPhases {
		name := "hook-" + string(ph)
		ho := hookOption{phase: ph, family: hooks.FamilyHook}
		hookOptions[name] = ho
		register(&Option{Name: name, Scope: ScopeVassal, Kind: KindString, List: true,
			Parse: hookParser(ho), Default: "(none)", Group: "hooks",
			Doc:   fmt.Sprintf("ACTION:ARGS hook run by PID 1 in the %s phase. See docs/hooks.md.", ph),
			UWSGI: "Run by PID 1, which holds the link with the emperor (uWSGI: the vassal's master)."})
	}
	for _, name := range sortedKeys(emperorConfigPhases) {
		doc := "In uWSGI this " + emperorConfigPhases[name] + ", from the Emperor's own config: a vassal file's line is never run, by uWSGI or here. Accepted with a warning."
		if name == "hook-emperor-lost" {
			doc = "In uWSGI this " + emperorConfigPhases[name] + ". Accepted with a warning."
		}
		register(&Option{Name: name, Scope: ScopeVassal, Kind: KindIgnored, Default: "-", Doc: doc, UWSGI: "never runs here"})
	}
}

// appPhaseHint says what to write instead, in a vassal without an app, for
// the phases that have a counterpart in PID 1: as-user runs as the tenant,
// after the privilege drop, before the daemons start (never a phase run as
// root, such as pre-jail).
var appPhaseHint = map[string]string{
	"pre-app":  " (to run it as the tenant before the daemons start, write %s-as-user)",
	"post-app": " (to run it as the tenant before the daemons start, write %s-as-user)",
}

// registerAppHooks registers the options of the phases uWSGI's app server
// runs: uWSGI's (handed to it in a vassal that runs an app, checked as
// uWSGI 2.0.21 will run them), an error in a vassal without an app.
func registerAppHooks() {
	for _, ph := range hooks.AppPhases {
		for _, fam := range ph.Families {
			name := fam.Prefix() + "-" + ph.Name
			phase, fam := ph.Name, fam
			noApp := name + " " + ph.When + "; this vassal runs no app server"
			if h, ok := appPhaseHint[ph.Name]; ok && (fam == hooks.FamilyHook || fam == hooks.FamilyExec) {
				noApp += fmt.Sprintf(h, fam.Prefix())
			}
			register(&Option{Name: name, Scope: ScopeVassal, Kind: KindString, List: true, Owner: OwnerApp,
				Group: "app-hooks", Default: "(none)", NoApp: noApp,
				Parse: func(v string) (any, error) { return v, hooks.CheckApp(phase, fam, v) },
				Doc:   "Hook that uWSGI's app server " + strings.TrimPrefix(ph.When, "runs ") + ". See docs/hooks.md.",
				UWSGI: "Checked when the file is checked (uWSGI finds a bad action when the phase runs)."})
		}
	}
}

func phaseDiff(ph hooks.Phase, fam hooks.Family) string {
	switch {
	case fam == hooks.FamilyExec:
		return "A death by signal is a failure (uWSGI counts it as success)."
	case fam == hooks.FamilyCall:
		return "uWSGI calls any C symbol; PID 1 is Go and runs only the libc functions it has a builtin for."
	case ph == hooks.PreJail:
		return "Skipped on reload, as in uWSGI."
	}
	return "same"
}

const hookRow = "| `hook-PHASE`, `exec-PHASE`, `mount-PHASE`, `umount-PHASE`, `call-PHASE` for PHASE in `asap`, `pre-jail`, `in-jail`, `post-jail`, `as-root`, `as-user`, `as-user-atexit`; `hook-emperor-stop`, `hook-emperor-reload` | string, repeatable | (none) | " +
	"`hook-PHASE = [!]ACTION:ARGS`; the others are shortcuts for the exec, mount, umount and call actions. In a phase, hook- lines run first, then mount-, umount-, exec-, call-, each in file order. A failure in any phase but as-user-atexit, emperor-stop and emperor-reload destroys the vassal. `!` hides the hook's arguments from the log. See docs/hooks.md. | no | " +
	"exec treats a death by signal as failure (uWSGI: success); call runs only libc functions with a builtin equivalent; asap, pre-jail, in-jail, post-jail and the jail are skipped on reload; as-root is skipped on reload (PID 1 has dropped root). |\n"

// The wait-for-* options. uWSGI runs wait-for-interface, -fs, -file, -dir
// and -mountpoint in uwsgi_as_root, after chroot/pivot_root and before the
// as-root hooks, and only as root: handed to an app server that starts as
// the tenant they would never run. They are ours, always, and PID 1 runs
// them at that moment. wait-for-socket runs after the privilege drop,
// before the app loads: uWSGI's in a vassal that runs an app, ours (after
// the as-user hooks, before the daemons) in one that does not.
func registerWaits() {
	abs := func(v string) (any, error) {
		if v == "" {
			return nil, fmt.Errorf("needs a path")
		}
		return v, nil
	}
	for _, w := range []struct{ name, doc string }{
		{"wait-for-fs", "anything at PATH"},
		{"wait-for-file", "a regular file at PATH"},
		{"wait-for-dir", "a directory at PATH"},
		{"wait-for-mountpoint", "PATH to be a mount point (a device other than its parent's)"},
	} {
		diff := "same"
		if w.name == "wait-for-file" || w.name == "wait-for-dir" {
			diff = "uWSGI 2.0.21 files this option under wait-for-fs, so it accepts anything at PATH; here it waits for a " + strings.TrimPrefix(w.doc, "a ")
		}
		register(&Option{Name: w.name, Scope: ScopeVassal, Kind: KindString, List: true, Parse: abs, Default: "(none)",
			Doc:   "Wait for " + w.doc + " after the jail and before the as-root hooks, up to wait-for-fs-timeout; past it the vassal fails. Repeatable. See docs/hooks.md.",
			UWSGI: diff})
	}
	register(
		&Option{Name: "wait-for-interface", Aliases: []string{"wait-interface", "wait-for-iface", "wait-iface"},
			Scope: ScopeVassal, Kind: KindString, List: true, Parse: abs, Default: "(none)",
			Doc:   "Wait for the network interface NAME to exist after the jail and before the as-root hooks (first of the waits), up to wait-for-interface-timeout. Repeatable.",
			UWSGI: "same"},
		&Option{Name: "wait-for-interface-timeout", Aliases: []string{"wait-interface-timeout", "wait-for-iface-timeout", "wait-iface-timeout"},
			Scope: ScopeVassal, Kind: KindSeconds, Min: 0, Max: 24 * time.Hour, Default: "60",
			Doc:   "Longest wait of each wait-for-interface; 0 means the default, as in uWSGI.",
			UWSGI: "Also accepts Go durations (500ms)."},
		&Option{Name: "wait-for-fs-timeout", Scope: ScopeVassal, Kind: KindSeconds, Min: 0, Max: 24 * time.Hour, Default: "60",
			Doc:   "Longest wait of each wait-for-fs, -file, -dir and -mountpoint; 0 means the default, as in uWSGI.",
			UWSGI: "Also accepts Go durations (500ms)."},
		&Option{Name: "wait-for-socket", Owner: OwnerShared, Scope: ScopeVassal, Kind: KindString, List: true, Default: "(none)",
			Parse: func(v string) (any, error) {
				_, err := hooks.ParseWait("wait-for-socket", v, 0)
				return v, err
			},
			Doc:   "Wait until a connection to HOST:PORT or a unix socket succeeds, after the as-user hooks and before the daemons (on every start and reload), up to wait-for-socket-timeout. Repeatable.",
			UWSGI: "same (with an app, uWSGI waits before it loads the app)"},
		&Option{Name: "wait-for-socket-timeout", Owner: OwnerShared, Scope: ScopeVassal, Kind: KindInt, Parse: intRange(0, 86400), Default: "60",
			Doc:   "Longest wait of each wait-for-socket, in seconds; 0 means the default, as in uWSGI.",
			UWSGI: "same"},
	)
}

// waitTimeout is a wait-for-*-timeout, 0 meaning uWSGI's default of 60 s.
func waitTimeout(d time.Duration) time.Duration {
	if d <= 0 {
		return time.Minute
	}
	return d
}

// decodeWaits builds the hooks PID 1 runs for the wait-for-* options, in
// uWSGI's order: interfaces, then files and directories (file order), then
// mount points; and the wait-for-socket ones.
func decodeWaits(d *decoder, s *Spec) {
	iface := waitTimeout(last[time.Duration](d, "wait-for-interface-timeout"))
	fs := waitTimeout(last[time.Duration](d, "wait-for-fs-timeout"))
	sock := waitTimeout(time.Duration(last[int](d, "wait-for-socket-timeout")) * time.Second)
	add := func(list *[]hooks.Hook, e Entry, timeout time.Duration) {
		h, err := hooks.ParseWait(e.Key, e.Value, timeout)
		if err != nil {
			d.bad(e, err)
			return
		}
		h.Line = e.Line
		*list = append(*list, h)
	}
	for _, group := range [][]string{{"wait-for-interface"}, {"wait-for-fs", "wait-for-file", "wait-for-dir"}, {"wait-for-mountpoint"}} {
		for _, e := range d.f.Entries {
			for _, k := range group {
				if e.Key == k {
					t := fs
					if k == "wait-for-interface" {
						t = iface
					}
					add(&s.Waits, e, t)
				}
			}
		}
	}
	for _, e := range d.f.All("wait-for-socket") {
		add(&s.WaitSockets, e, sock)
	}
}
