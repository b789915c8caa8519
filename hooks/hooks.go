// Package hooks parses and runs uWSGI-style hooks: "action:args" lines run
// at fixed phases of a vassal's start (asap, pre-jail, post-jail, in-jail,
// as-root, as-user, as-user-atexit). Every action and every flag is checked
// when the file is parsed, so a typo is a config error with file and line,
// never a runtime surprise.
package hooks

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/emperor-dev/emperor/userdb"
)

// Phase is when a hook runs.
type Phase string

const (
	Asap         Phase = "asap"
	PreJail      Phase = "pre-jail"
	PostJail     Phase = "post-jail"
	InJail       Phase = "in-jail"
	AsRoot       Phase = "as-root"
	AsUser       Phase = "as-user"
	AsUserAtexit Phase = "as-user-atexit"
)

// Phases lists the phases in the order they run on a first start.
var Phases = []Phase{Asap, PreJail, PostJail, InJail, AsRoot, AsUser, AsUserAtexit}

// Family is how a hook line was written; within a phase, hook-<phase> lines
// run first, then mount-, umount- and exec-<phase>, each in file order.
type Family int

const (
	FamilyHook Family = iota
	FamilyMount
	FamilyUmount
	FamilyExec
)

// Hook is one parsed hook line.
type Hook struct {
	Phase  Phase
	Family Family
	Action string // canonical action name
	Args   string
	Line   int

	mount  *mountSpec
	umount *umountSpec
}

func (h Hook) String() string { return h.Action + ":" + h.Args }

type action struct {
	aliases []string
	parse   func(h *Hook) error
}

var actions = map[string]*action{
	"exec":          {parse: needArgs},
	"mount":         {parse: parseMountHook},
	"umount":        {parse: parseUmountHook},
	"mkdir":         {parse: needArgs},
	"chdir":         {aliases: []string{"cd"}, parse: needArgs},
	"write":         {parse: needFileAndData},
	"writen":        {parse: needFileAndData},
	"append":        {parse: needFileAndData},
	"appendn":       {parse: needFileAndData},
	"create":        {parse: needArgs},
	"unlink":        {parse: needArgs},
	"chmod":         {parse: parseChmod},
	"chown":         {parse: parseChown},
	"putenv":        {parse: parsePutenv},
	"hostname":      {aliases: []string{"sethostname"}, parse: needArgs},
	"print":         {aliases: []string{"log"}, parse: func(*Hook) error { return nil }},
	"wait_for_fs":   {parse: needArgs},
	"wait_for_file": {parse: needArgs},
	"wait_for_dir":  {parse: needArgs},
}

var actionAlias = map[string]string{}

func init() {
	for name, a := range actions {
		actionAlias[name] = name
		for _, al := range a.aliases {
			actionAlias[al] = name
		}
	}
}

// Actions lists the known action names, for docs.
func Actions() []string {
	out := make([]string, 0, len(actionAlias))
	for a := range actionAlias {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// Parse reads one hook-<phase> value, "action:args".
func Parse(phase Phase, value string, line int) (Hook, error) {
	name, args, ok := strings.Cut(value, ":")
	if !ok {
		return Hook{}, fmt.Errorf("%q is not action:arguments (e.g. exec:/bin/true)", value)
	}
	name = strings.TrimSpace(name)
	args = strings.TrimSpace(args)
	h := Hook{Phase: phase, Family: FamilyHook, Args: args, Line: line}
	switch name {
	case "callret", "callint", "call", "callintret":
		// uWSGI calls a C symbol here. The tutorial's "callret:chdir /"
		// is the one use that has a meaning without a C runtime: map it to
		// the builtin chdir.
		fn, fargs, _ := strings.Cut(args, " ")
		if fn != "chdir" {
			return Hook{}, fmt.Errorf("%s:%s calls a C function in uWSGI; only %s:chdir DIR is supported (mapped to the builtin chdir)", name, fn, name)
		}
		h.Action, h.Args = "chdir", strings.TrimSpace(fargs)
		return h, needArgs(&h)
	}
	canon, ok := actionAlias[name]
	if !ok {
		return Hook{}, fmt.Errorf("unknown hook action %q (known: %s)", name, strings.Join(Actions(), ", "))
	}
	h.Action = canon
	if err := actions[canon].parse(&h); err != nil {
		return Hook{}, fmt.Errorf("%s: %w", name, err)
	}
	return h, nil
}

// ParseFamily reads a shortcut line: exec-<phase> = CMD, mount-<phase> =
// ARGS, umount-<phase> = ARGS.
func ParseFamily(phase Phase, fam Family, value string, line int) (Hook, error) {
	act := map[Family]string{FamilyExec: "exec", FamilyMount: "mount", FamilyUmount: "umount"}[fam]
	h, err := Parse(phase, act+":"+value, line)
	h.Family = fam
	return h, err
}

func needArgs(h *Hook) error {
	if h.Args == "" {
		return fmt.Errorf("needs an argument")
	}
	return nil
}

func needFileAndData(h *Hook) error {
	f, _, ok := strings.Cut(h.Args, " ")
	if !ok || f == "" {
		return fmt.Errorf("wants FILE DATA, got %q", h.Args)
	}
	return nil
}

func parseChmod(h *Hook) error {
	f := strings.Fields(h.Args)
	if len(f) != 2 {
		return fmt.Errorf("wants PATH MODE (octal), got %q", h.Args)
	}
	if _, err := strconv.ParseUint(f[1], 8, 32); err != nil {
		return fmt.Errorf("mode %q is not octal", f[1])
	}
	return nil
}

func parseChown(h *Hook) error {
	f := strings.Fields(h.Args)
	if len(f) != 3 {
		return fmt.Errorf("wants PATH USER GROUP, got %q", h.Args)
	}
	// A number is checked here; a name is looked up when the hook runs
	// (in the jail's database, after a chroot).
	for i, kind := range []string{"user", "group"} {
		if _, _, err := userdb.ParseID(f[i+1]); err != nil {
			return fmt.Errorf("%s %q: %w", kind, f[i+1], err)
		}
	}
	return nil
}

func parsePutenv(h *Hook) error {
	k, _, ok := strings.Cut(h.Args, "=")
	if !ok || k == "" {
		return fmt.Errorf("wants KEY=VALUE, got %q", h.Args)
	}
	return nil
}
