package hooks

import (
	"context"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// uWSGI's call actions look a C symbol up in its own process (dlsym) and
// call it:
//
//	call:FN [STRING]       void FN(char *) or FN(void); the result is ignored
//	callret:FN [STRING]    int FN(char *); non-zero fails the hook
//	callint:FN [N]         void FN(int); the result is ignored
//	callintret:FN [N]      int FN(int); non-zero fails the hook
//	call-PHASE = FN        void FN(void) (uwsgi_call_symbol)
//
// PID 1 is a Go program: it has no C symbols to look up. The libc functions
// below have a builtin with the same effect and result, and are run as
// that builtin; any other function is an error when the file is checked.
// (In the app server's phases, hook-pre-app = call:..., the line goes to
// uWSGI, which calls the symbol itself.)
type callTarget struct {
	arg    callArg
	action string // the builtin that runs it
	doc    string
}

type callArg int

const (
	argString callArg = iota // FN(const char *): call, callret
	argInt                   // FN(int): callint, callintret
	argNone                  // FN(void): any call form, without argument
)

var callTargets = map[string]callTarget{
	"chdir":  {argString, "chdir", "chdir(2), as the chdir action"},
	"unlink": {argString, "unlink", "unlink(2), as the unlink action"},
	"rmdir":  {argString, "rmdir", "rmdir(2) of an empty directory"},
	"putenv": {argString, "putenv", "putenv(3) of KEY=VALUE, as the putenv action"},
	"system": {argString, "exec", "system(3): /bin/sh -c, as the exec action (non-zero status fails callret)"},
	"sleep":  {argInt, "sleep", "sleep(3) for N seconds (bounded by hook-timeout)"},
	"sync":   {argNone, "sync", "sync(2)"},
}

// builtins run the call targets and the wait-for-* options that are not
// hook actions.
var builtins = map[string]func(ctx context.Context, h *Hook, r *runner) error{
	"rmdir": func(_ context.Context, h *Hook, _ *runner) error {
		if err := unix.Rmdir(h.Args); err != nil {
			return &fs.PathError{Op: "rmdir", Path: h.Args, Err: err}
		}
		return nil
	},
	"sleep": func(ctx context.Context, h *Hook, _ *runner) error {
		n, _ := strconv.Atoi(h.Args)
		select {
		case <-ctx.Done():
			return fmt.Errorf("sleep %d: %w", n, ctx.Err())
		case <-time.After(time.Duration(n) * time.Second):
			return nil
		}
	},
	"sync": func(context.Context, *Hook, *runner) error {
		unix.Sync()
		return nil
	},
	"wait_for_mountpoint": runWaitMountpoint,
	"wait_for_interface":  runWaitInterface,
}

func isCall(name string) bool {
	switch name {
	case "call", "callret", "callint", "callintret":
		return true
	}
	return false
}

// CallTargets lists the C functions a call hook may name, for docs.
func CallTargets() []string {
	out := make([]string, 0, len(callTargets))
	for n := range callTargets {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// mapCall turns h (Written: call, callret, callint or callintret; Args:
// "FN [ARG]") into the builtin that does what FN does.
func mapCall(h *Hook) error {
	form := h.Written
	fn, arg, _ := strings.Cut(h.Args, " ")
	arg = strings.TrimSpace(arg)
	if fn == "" {
		return fmt.Errorf("%s: needs a function name", form)
	}
	t, ok := callTargets[fn]
	if !ok {
		return fmt.Errorf("%s:%s calls the C function %s in uWSGI's process; PID 1 is Go and runs as builtins only %s: write an action that does what %s does (exec:COMMAND runs a program)",
			form, fn, fn, strings.Join(CallTargets(), ", "), fn)
	}
	intForm := form == "callint" || form == "callintret"
	switch {
	case t.arg == argNone && arg != "":
		return fmt.Errorf("%s:%s: %s() takes no argument, got %q", form, fn, fn, arg)
	case t.arg == argString && intForm:
		return fmt.Errorf("%s:%s passes a number to %s(const char *): write callret:%s ARG", form, fn, fn, fn)
	case t.arg == argInt && !intForm && h.Family != FamilyCall:
		return fmt.Errorf("%s:%s passes a string to %s(int): write callintret:%s N", form, fn, fn, fn)
	case t.arg != argNone && arg == "":
		return fmt.Errorf("%s:%s: %s() needs an argument", form, fn, fn)
	case t.arg == argInt:
		if n, err := strconv.Atoi(arg); err != nil || n < 0 {
			return fmt.Errorf("%s:%s: %q is not a number of seconds", form, fn, arg)
		}
	}
	h.Action, h.Args, h.Written = t.action, arg, form+":"+fn
	// call and callint ignore the function's result (uWSGI does not look
	// at it); so does call-PHASE for a function found.
	h.IgnoreFailure = form == "call" || form == "callint"
	if a, ok := actions[t.action]; ok {
		if err := a.parse(h); err != nil {
			return fmt.Errorf("%s:%s: %w", form, fn, err)
		}
	}
	return nil
}
