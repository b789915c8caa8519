package vassalfile

import (
	"fmt"
	"strings"

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
