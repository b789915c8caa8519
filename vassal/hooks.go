package vassal

import (
	"context"
	"fmt"

	"github.com/emperor-dev/emperor/hooks"
	"github.com/emperor-dev/emperor/reexec"
	"golang.org/x/sys/unix"
)

// setupHooks runs hook phases that belong to the first start only (asap,
// pre-jail, post-jail, in-jail, as-root): as in uWSGI they are skipped on
// reload (as-root could not run anyway: PID 1 has dropped root).
type setupHooks struct {
	v      *vassal
	phases []hooks.Phase
}

func (h *setupHooks) Start(c *config) error {
	for _, ph := range h.phases {
		if err := h.v.runHooks(c, ph, &h.v.setupEnv); err != nil {
			return err
		}
	}
	return nil
}

func (h *setupHooks) Apply(old, new *config) error { return nil }
func (h *setupHooks) Stop()                        {}

// userHooks runs hook-as-user after the privilege drop, on the first start
// and on every reload, and hook-as-user-atexit when the vassal stops and
// before a reload runs the new as-user hooks (a tenant unmounts there what
// its as-user hooks mounted).
type userHooks struct {
	v       *vassal
	running *config // whose as-user hooks ran last
}

func (h *userHooks) Start(c *config) error {
	h.v.userEnv = nil
	if err := h.v.runHooks(c, hooks.AsUser, &h.v.userEnv); err != nil {
		return err
	}
	h.running = c
	return nil
}

// Release runs old's as-user-atexit hooks; a failure is logged, as on stop.
func (h *userHooks) Release(old, new *config) {
	h.atexit(old, "as-user-atexit hook failed before reload")
}

// Apply runs new's as-user hooks. When one fails, new's as-user-atexit
// hooks undo what the others did, so that a rollback finds the vassal as
// Release left it.
func (h *userHooks) Apply(old, new *config) error {
	if err := h.Start(new); err != nil {
		h.atexit(new, "as-user-atexit hook failed while undoing a failed as-user hook")
		return err
	}
	return nil
}

func (h *userHooks) Stop() {
	if h.running != nil {
		h.atexit(h.running, "as-user-atexit hook failed")
	}
}

func (h *userHooks) atexit(c *config, msg string) {
	if err := h.v.runHooks(c, hooks.AsUserAtexit, nil); err != nil {
		h.v.log.Warn(msg, "err", err)
	}
}

// runHooks runs one phase of c's hooks. putenv hooks add to *env (nil: the
// phase's putenv changes only PID 1's own environment).
func (v *vassal) runHooks(c *config, ph hooks.Phase, env *[]string) error {
	hs := c.spec.PhaseHooks(ph)
	if len(hs) == 0 {
		return nil
	}
	return hooks.RunPhase(hs, hookEnv{v: v, c: c, env: env}, c.spec.HookTimeout, v.log)
}

// hookEnv runs exec hooks through the vassal's reaper, as the vassal's
// daemons run (environment, directory), without the shared sockets.
type hookEnv struct {
	v   *vassal
	c   *config
	env *[]string
}

func (h hookEnv) Exec(ctx context.Context, cmd string, private bool) error {
	p := h.v.newProc(h.c, nil)
	label := shortCmd(cmd)
	if private {
		label = "(private)" // uWSGI's "!": the command line is not logged
	}
	pid, exit, err := p.startShell(cmd, h.v.log.With("hook", label))
	if err != nil {
		return err
	}
	select {
	case ws := <-exit:
		if ws.Exited() && ws.ExitStatus() == 0 {
			return nil
		}
		return fmt.Errorf("%s", reexec.DescribeStatus(ws))
	case <-ctx.Done():
		var ws unix.WaitStatus
		stopAndWait(groupSignal(pid), reaped(exit, &ws), 0)
		return fmt.Errorf("timed out (hook-timeout)")
	}
}

func (h hookEnv) Setenv(k, val string) {
	if h.env != nil {
		*h.env = append(*h.env, k+"="+val)
	}
}

// emperorHooks runs the hook-emperor-stop or hook-emperor-reload lines of
// the running file, as the tenant, before PID 1 stops or reloads (uWSGI's
// master runs them when its Emperor sends stop or reload). A failure is
// logged; the stop or reload goes on, as in uWSGI.
func (v *vassal) emperorHooks(ph hooks.Phase) {
	if v.lc.good == nil {
		return
	}
	if err := v.runHooks(v.lc.good, ph, nil); err != nil {
		v.log.Warn("hook-"+string(ph)+" failed", "err", err)
	}
}

// waits runs the wait-for-* options. The root ones (wait-for-interface,
// -fs, -file, -dir, -mountpoint) run after the jail and before the as-root
// hooks, on the first start only: uWSGI runs them in uwsgi_as_root, which a
// reloaded (non-root) instance skips. wait-for-socket (a vassal without an
// app) runs after the as-user hooks, on the start and on every reload, as
// uWSGI waits before it loads the app each time.
type waits struct {
	v       *vassal
	sockets bool
}

func (w *waits) Start(c *config) error {
	hs := c.spec.Waits
	if w.sockets {
		hs = c.spec.WaitSockets
	}
	if len(hs) == 0 {
		return nil
	}
	return hooks.RunPhase(hs, hookEnv{v: w.v, c: c}, c.spec.HookTimeout, w.v.log)
}

func (w *waits) Apply(old, new *config) error {
	if w.sockets {
		return w.Start(new)
	}
	return nil
}

func (w *waits) Stop() {}
