package hooks

import (
	"fmt"
	"strings"

	"github.com/emperor-dev/emperor/userdb"
)

// AppPhase is a hook phase that uWSGI's app server runs itself: a line of
// such a phase is handed to uWSGI, never run by PID 1.
type AppPhase struct {
	Name string // pre-app, accepting1-once...
	// When says where and when uWSGI runs it, for docs and for the error
	// of a vassal that runs no app server.
	When string
	// Families are the option families uWSGI 2.0.21 has for the phase.
	Families []Family
}

// AppPhases are uWSGI 2.0.21's app server phases (core/uwsgi.c,
// core/master.c).
var AppPhases = []AppPhase{
	{"pre-app", "runs in the app server before the app loads", []Family{FamilyHook, FamilyExec, FamilyCall}},
	{"post-app", "runs in the app server after the app loaded", []Family{FamilyHook, FamilyExec, FamilyCall}},
	{"post-fork", "runs in each process the app server forks, after the fork", []Family{FamilyHook}},
	{"accepting", "runs in each app server worker when it starts accepting requests", []Family{FamilyHook}},
	{"accepting1", "runs in the app server's first worker when it starts accepting requests", []Family{FamilyHook}},
	{"accepting-once", "runs in each app server worker when it first accepts requests (not after a worker's respawn)", []Family{FamilyHook}},
	{"accepting1-once", "runs in the app server's first worker when it first accepts requests (not after its respawn)", []Family{FamilyHook}},
	{"master-start", "runs in the app server's master when it starts", []Family{FamilyHook}},
	{"touch", "runs in the app server's master when the file it names is touched", []Family{FamilyHook}},
	{"as-mule", "runs in each of the app server's mules", []Family{FamilyHook}},
	{"as-gateway", "runs in each of the app server's gateways (http router, fastrouter...)", []Family{FamilyHook}},
}

// uwsgiActions are the hook actions of uWSGI 2.0.21
// (uwsgi_register_base_hooks); Debian's plugins register none.
var uwsgiActions = map[string]bool{
	"cd": true, "chdir": true, "mkdir": true, "putenv": true, "chmod": true, "chown": true,
	"chown2": true, "sticky": true, "exec": true, "safeexec": true, "create": true, "creat": true,
	"write": true, "writen": true, "append": true, "appendn": true, "writefifo": true,
	"unlink": true, "mount": true, "umount": true, "call": true, "callret": true, "callint": true,
	"callintret": true, "hostname": true, "alarm": true, "rpc": true, "retryrpc": true,
	"wait_for_fs": true, "wait_for_file": true, "wait_for_dir": true, "wait_for_socket": true,
	"unix_signal": true, "spinningfifo": true, "exit": true, "print": true, "log": true,
}

// uWSGI's mount and umount flags share one table (core/mount.c).
var uwsgiMountFlags = map[string]bool{
	"bind": true, "dirsync": true, "mandlock": true, "move": true, "noatime": true, "nodev": true,
	"noexec": true, "rdonly": true, "readonly": true, "ro": true, "remount": true, "nosuid": true,
	"sync": true, "force": true, "detach": true, "rec": true, "recursive": true, "private": true,
	"shared": true,
}

// CheckApp checks a line of an app server phase as uWSGI 2.0.21 will run
// it: "[!]action:args" for the hook family, a command for exec, a C symbol
// for call; hook-touch is "FILE [!]action:args". uWSGI itself finds an
// unknown action or flag only when the phase runs, and exits.
func CheckApp(phase string, fam Family, value string) error {
	value = strings.TrimSpace(value)
	switch fam {
	case FamilyExec:
		if value == "" {
			return fmt.Errorf("needs a command")
		}
		return nil
	case FamilyCall:
		if value == "" || strings.ContainsAny(value, " \t") {
			return fmt.Errorf("wants the name of a C function of uWSGI's process (called with no argument), got %q", value)
		}
		return nil
	}
	if phase == "touch" {
		file, hook, ok := strings.Cut(value, " ")
		if !ok || file == "" {
			return fmt.Errorf("wants FILE ACTION:ARGS, got %q", value)
		}
		value = strings.TrimSpace(hook)
	}
	_, name, args, err := split(value)
	if err != nil {
		return err
	}
	if !uwsgiActions[name] {
		switch {
		case name == "ffi" || name == "tcc":
			return fmt.Errorf("%s is a hook action of uWSGI's %s plugin, which Debian's uwsgi 2.0.21 does not ship", quote(name), map[string]string{"ffi": "libffi", "tcc": "libtcc"}[name])
		case name == "sethostname":
			return fmt.Errorf("uWSGI's action is hostname, not sethostname")
		}
		if _, ok := actionAlias[name]; !ok {
			return unknownAction(name)
		}
		return fmt.Errorf("%s is not a hook action of uWSGI 2.0.21", quote(name))
	}
	h := Hook{Written: name, Action: actionAlias[name], Args: args}
	switch name {
	case "call", "callret", "callint", "callintret":
		if strings.TrimSpace(strings.SplitN(args, " ", 2)[0]) == "" {
			return fmt.Errorf("%s: needs a function name", name)
		}
		return nil
	case "alarm":
		if a, _, ok := strings.Cut(args, " "); !ok || a == "" {
			return fmt.Errorf("alarm: wants ALARM MESSAGE, got %q", args)
		}
		return nil
	case "unix_signal":
		if f := strings.Fields(args); len(f) != 2 {
			return fmt.Errorf("unix_signal: wants SIGNUM FUNCTION, got %q", args)
		}
		return nil
	case "rpc", "retryrpc":
		if args == "" {
			return fmt.Errorf("%s: wants FUNCTION[@NODE] [ARGS...]", name)
		}
		return nil
	case "mount", "umount":
		return checkUWSGIMount(name, args)
	case "chown":
		if err := parseChown(&h); err != nil {
			return fmt.Errorf("chown: %w", err)
		}
		for _, id := range strings.Fields(args)[1:] {
			if _, isNum, _ := userdb.ParseID(id); isNum {
				return fmt.Errorf("chown: uWSGI's chown looks %q up as a name; for numbers write chown2:%s", id, args)
			}
		}
		return nil
	}
	if err := actions[h.Action].parse(&h); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// checkUWSGIMount checks mount/umount arguments with uWSGI's flag table:
// the flags PID 1 adds (slave, lazy...) would make uWSGI exit.
func checkUWSGIMount(name, args string) error {
	f := fieldsN(args, 5)
	flags := ""
	switch {
	case name == "mount" && len(f) < 3:
		return fmt.Errorf("mount: wants FSTYPE SOURCE TARGET [FLAGS [DATA]], got %q", args)
	case name == "mount" && len(f) >= 4:
		flags = f[3]
	case name == "umount" && (len(f) < 1 || len(f) > 2):
		return fmt.Errorf("umount: wants TARGET [FLAGS], got %q", args)
	case name == "umount" && len(f) == 2:
		flags = f[1]
	}
	for _, fl := range strings.Split(flags, ",") {
		if fl != "" && !uwsgiMountFlags[fl] {
			return fmt.Errorf("%s: %q is not a mount flag of uWSGI 2.0.21 (it has: %s)", name, fl, keys(uwsgiMountFlags))
		}
	}
	return nil
}
