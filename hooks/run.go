package hooks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"
)

// Env is what running a hook needs from the vassal.
type Env interface {
	// Exec runs cmd as /bin/sh -c would and waits for it. A non-zero exit and
	// a death by signal are both failures (uWSGI counts a signal death as
	// success). private: the command line must not reach the log.
	Exec(ctx context.Context, cmd string, private bool) error
	// Setenv changes the environment of later hooks and daemons.
	Setenv(key, value string)
}

// HookError names the failed hook, its phase and line. A private hook's
// arguments are not in it.
type HookError struct {
	Hook Hook
	Err  error
}

func (e *HookError) Error() string {
	if e.Hook.Family == FamilyWait {
		return fmt.Sprintf("%s = %s (line %s): %v", e.Hook.Written, e.Hook.Args, e.Hook.LineRef(), e.Err)
	}
	return fmt.Sprintf("hook %s (%s, line %s): %v", e.Hook.String(), e.Hook.Phase, e.Hook.LineRef(), e.Err)
}

// LineRef is the hook's line for messages.
func (h Hook) LineRef() string {
	if h.Ref != "" {
		return h.Ref
	}
	return strconv.Itoa(h.Line)
}
func (e *HookError) Unwrap() error { return e.Err }

// runner is what an action runs with.
type runner struct {
	env Env
	log *slog.Logger
}

// RunPhase runs the hooks of one phase in order, each bounded by timeout
// (hook-timeout) or its own Timeout. In a fatal phase (Phase.Fatal) the first failure stops
// the phase and is returned; in the others, as in uWSGI, a failure is
// logged and the next hook runs, and every failure is returned, joined. A
// hook whose failure uWSGI ignores (call, callint, safeexec) only logs it.
// An exit: hook always ends the phase, with an *ExitError.
func RunPhase(hs []Hook, env Env, timeout time.Duration, log *slog.Logger) error {
	var errs []error
	for i := range hs {
		h := &hs[i]
		if h.Private {
			log.Info("running private hook", "phase", string(h.Phase), "action", h.Written, "line", h.LineRef())
		} else {
			log.Info("running hook", "phase", string(h.Phase), "hook", h.String(), "line", h.LineRef())
		}
		t := timeout
		if h.Timeout > 0 {
			t = h.Timeout
		}
		ctx, cancel := context.WithTimeout(context.Background(), t)
		err := run(ctx, h, &runner{env: env, log: log})
		cancel()
		if err == nil {
			continue
		}
		herr := &HookError{Hook: *h, Err: err}
		var exit *ExitError
		switch {
		case errors.As(err, &exit):
			return errors.Join(append(errs, herr)...)
		case h.IgnoreFailure:
			log.Warn("hook failed; uWSGI ignores this action's result, and so does PID 1", "phase", string(h.Phase), "err", herr)
		case h.Phase.Fatal():
			return herr
		default:
			log.Warn("hook failed; the phase goes on", "phase", string(h.Phase), "err", herr)
			errs = append(errs, herr)
		}
	}
	return errors.Join(errs...)
}

func run(ctx context.Context, h *Hook, r *runner) error {
	if a, ok := actions[h.Action]; ok && a.run != nil {
		return a.run(ctx, h, r)
	}
	if f, ok := builtins[h.Action]; ok {
		return f(ctx, h, r)
	}
	return fmt.Errorf("unknown action %q", h.Action)
}
