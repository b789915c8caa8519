// Package vassal is the PID-1 side of a vassal: the process the emperor
// re-executes into new namespaces. It sets up the namespace, drops
// privileges, runs and reaps the tenant's daemons, applies reloads in place
// and, when it exits, takes the whole namespace with it.
package vassal

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/emperor-dev/emperor/control"
	"github.com/emperor-dev/emperor/hooks"
	"github.com/emperor-dev/emperor/mountcheck"
	"github.com/emperor-dev/emperor/reexec"
	"github.com/emperor-dev/emperor/restart"
	"github.com/emperor-dev/emperor/userdb"
	"github.com/emperor-dev/emperor/vassalfile"
	"golang.org/x/sys/unix"
)

// CPUProfileEnv names a file the vassal's PID 1 writes a CPU profile to, from
// start to exit (make bench uses it for the cache-off profile).
const CPUProfileEnv = "EMPEROR_VASSAL_CPUPROFILE"

// startTimeout bounds the wait for the emperor's start message.
const startTimeout = 30 * time.Second

type vassal struct {
	name     string
	path     string
	conn     *control.Conn
	log      *slog.Logger
	reaper   *Reaper
	ns       reexec.Namespaces // from the start message
	pidNS    bool
	spec     *vassalfile.Spec
	file     *vassalfile.File
	content  []byte
	mercy    time.Duration // the emperor's reload-mercy
	proc     *proc
	daemons  daemonSet
	sockets  []*os.File
	extraEnv []string // from putenv hooks

	http *httpService

	// stopProfile ends the CPU profile (CPUProfileEnv) when the vassal
	// starts to stop, so that it covers serving and not the teardown.
	stopProfile func()

	checker     *mountcheck.Checker
	stopChecker func() error // ends the check and waits for a statfs in flight
	mountFail   chan *mountcheck.Failure
	checkNow    chan struct{}
}

// Main runs a vassal's PID 1. args are the words after
// reexec.InitCommand: the vassal's name, there for ps. Everything else comes
// in the start message on reexec.ControlFD. It returns the process exit code.
func Main(args []string) int {
	// PID 1 mostly waits; one P keeps its threads and memory small when a
	// host runs hundreds of vassals. (Not via the environment: the tenant's
	// daemons inherit that.)
	runtime.GOMAXPROCS(1)
	handler := slog.Handler(slog.NewTextHandler(os.Stderr, nil))
	base := slog.New(handler)
	if len(args) > 0 {
		base = base.With("vassal", args[0])
	}
	stopProfile := func() {}
	if path := os.Getenv(CPUProfileEnv); path != "" {
		if stop, err := startCPUProfile(path); err != nil {
			base.Warn("no CPU profile", "path", path, "err", err)
		} else {
			var once sync.Once
			stopProfile = func() { once.Do(stop) }
			defer stopProfile()
		}
	}
	if _, err := unix.FcntlInt(reexec.ControlFD, unix.F_GETFD, 0); err != nil {
		base.Error("vassal-init is started by the emperor, with its control socket on fd 3", "err", err)
		return 2
	}
	syscall.CloseOnExec(reexec.ControlFD)
	// Through the netpoller, so the control read does not pin a thread.
	_ = syscall.SetNonblock(reexec.ControlFD, true)
	f := os.NewFile(reexec.ControlFD, "emperor-control")
	conn := control.NewConn(f)
	// Receiving the start message touches no mount; nothing before this
	// point mounts anything either.
	start, err := recvStart(conn)
	if err != nil {
		base.Error("no start message from the emperor", "err", err)
		return 1
	}
	// Then, before anything else: keep every mount we make out of the host.
	if err := enterNamespaces(start.Namespaces); err != nil {
		base.Error("vassal setup failed", "err", err)
		_ = conn.Send(control.Message{Type: control.MsgFatal, Reason: err.Error()})
		return 1
	}
	v := &vassal{
		name: start.Name, path: start.Path, conn: conn, mercy: start.Mercy, stopProfile: stopProfile,
		log:       slog.New(handler).With("vassal", start.Name),
		ns:        start.Namespaces,
		pidNS:     start.Namespaces.Has(reexec.NSPID),
		mountFail: make(chan *mountcheck.Failure, 1),
		checkNow:  make(chan struct{}, 1),
	}
	if v.mercy <= 0 {
		v.mercy = 30 * time.Second
	}
	v.daemons.policy = restart.Default()
	if start.Policy != nil {
		v.daemons.policy = *start.Policy
	}
	return v.main(start)
}

// enterNamespaces finishes what the clone flags began, from the set in the
// start message: / becomes a recursive slave in a new mount namespace, and
// with a new PID namespace too /proc is that namespace's own.
func enterNamespaces(ns reexec.Namespaces) error {
	if ns.Has(reexec.NSPID) != (os.Getpid() == 1) {
		return fmt.Errorf("the start message says namespaces %s, but this process is pid %d: the emperor and this binary disagree on the re-exec contract", ns, os.Getpid())
	}
	if !ns.Has(reexec.NSMount) {
		return nil
	}
	if err := makeRootSlave(); err != nil {
		return err
	}
	if ns.Has(reexec.NSPID) {
		return mountProc()
	}
	return nil
}

func recvStart(conn *control.Conn) (control.Message, error) {
	type result struct {
		m   control.Message
		err error
	}
	ch := make(chan result, 1)
	go func() {
		var m control.Message
		err := conn.Recv(&m)
		ch <- result{m, err}
	}()
	select {
	case r := <-ch:
		if r.err == nil && r.m.Type != control.MsgStart {
			r.err = fmt.Errorf("first message is %q, want %q", r.m.Type, control.MsgStart)
		}
		return r.m, r.err
	case <-time.After(startTimeout):
		return control.Message{}, fmt.Errorf("timed out after %v", startTimeout)
	}
}

// fatal reports why the vassal is exiting to the emperor, which shows it as
// the last exit reason.
func (v *vassal) fatal(err error) int {
	v.log.Error("vassal failed", "err", err)
	_ = v.conn.Send(control.Message{Type: control.MsgFatal, Reason: err.Error()})
	v.killEverything()
	return 1
}

func (v *vassal) main(start control.Message) int {
	// Signals first: a Go PID 1 gets no default action for TERM/INT/HUP
	// from inside its namespace, so unhandled they would be ignored.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	v.reaper = NewReaper()
	if !v.pidNS {
		if err := becomeSubreaper(); err != nil {
			return v.fatal(err)
		}
	}
	go v.forwardExits()
	if err := v.configure(start.Content, false); err != nil {
		return v.fatal(err)
	}
	if err := v.setup(); err != nil {
		return v.fatal(err)
	}
	if err := v.startChecker(nil); err != nil {
		return v.fatal(err)
	}
	if v.http != nil {
		if err := v.http.start(); err != nil {
			return v.fatal(err)
		}
	}
	v.proc = v.newProc()
	v.daemons.start(v.spec.Daemons, v.proc)
	v.log.Info("vassal ready", "pid_namespace", v.pidNS, "daemons", len(v.spec.Daemons), "uid", os.Getuid(), "gid", os.Getgid())
	if err := v.conn.Send(control.Message{Type: control.MsgReady}); err != nil {
		return v.fatal(err)
	}
	return v.loop(sigs)
}

// setup runs the first-start phases in order: asap, pre-jail, the jail,
// post-jail, in-jail, as-root, privilege drop, as-user, chdir.
func (v *vassal) setup() error {
	creds, err := userdb.Resolve(v.spec.CredsRequest())
	if err != nil {
		return err
	}
	for _, ph := range []hooks.Phase{hooks.Asap, hooks.PreJail} {
		if err := v.runHooks(v.spec, ph); err != nil {
			return err
		}
	}
	if v.spec.PivotNew != "" || v.spec.Chroot != "" {
		if !v.ns.Has(reexec.NSMount) {
			return fmt.Errorf("pivot_root/chroot need the vassal's own mount namespace (emperor-use-clone or unshare with fs): refusing to change the host's root")
		}
		if v.spec.PivotNew != "" {
			err = pivotRoot(v.spec.PivotNew, v.spec.PivotOld)
		} else {
			err = chrootTo(v.spec.Chroot)
		}
		if err != nil {
			return err
		}
	}
	for _, ph := range []hooks.Phase{hooks.PostJail, hooks.InJail, hooks.AsRoot} {
		if err := v.runHooks(v.spec, ph); err != nil {
			return err
		}
	}
	for _, addr := range v.spec.SharedSockets {
		s, err := bindShared(addr)
		if err != nil {
			return err
		}
		v.sockets = append(v.sockets, s)
	}
	if err := v.bindHTTP(); err != nil {
		return err
	}
	if err := dropPrivileges(creds); err != nil {
		return err
	}
	if err := v.runHooks(v.spec, hooks.AsUser); err != nil {
		return err
	}
	return v.chdir()
}

func (v *vassal) chdir() error {
	if v.spec.Chdir == "" {
		return nil
	}
	if err := os.Chdir(v.spec.Chdir); err != nil {
		return fmt.Errorf("chdir: %w", err)
	}
	return nil
}

func (v *vassal) runHooks(spec *vassalfile.Spec, ph hooks.Phase) error {
	hs := spec.PhaseHooks(ph)
	if len(hs) == 0 {
		return nil
	}
	return hooks.RunPhase(hs, hookEnv{v}, spec.HookTimeout, v.log)
}

// newProc captures how children start now: environment, directory, sockets.
func (v *vassal) newProc() *proc {
	return &proc{reaper: v.reaper, log: v.log, env: v.environ(), dir: v.workdir(), sockets: v.sockets}
}

// forwardExits turns every reaped child into an immediate mount check (a
// FUSE daemon's death shows in milliseconds, not on the next tick) and a
// wake-up for smart daemons.
func (v *vassal) forwardExits() {
	for range v.reaper.Subscribe() {
		select {
		case v.checkNow <- struct{}{}:
		default:
		}
		v.daemons.wakeAll()
	}
}

// startChecker starts mountpoint-check for the current spec. prev carries
// which paths were mount points, so a path unmounted during a reload (an
// atexit fusermount -u) still counts as unmounted.
func (v *vassal) startChecker(prev *mountcheck.Checker) error {
	if v.stopChecker != nil {
		_ = v.stopChecker()
		v.stopChecker = nil
	}
	v.checker = nil
	if len(v.spec.MountChecks) == 0 {
		return nil
	}
	c := mountcheck.New(v.spec.MountChecks, v.spec.CheckTimeout)
	c.Carry(prev)
	if f := c.Check(); f != nil {
		return f
	}
	ctx, cancel := context.WithCancel(context.Background())
	v.checker = c
	v.stopChecker = func() error {
		cancel()
		if ps := c.InFlight(); len(ps) > 0 {
			v.log.Info("mountpoint-check stopping: waiting for a statfs in flight", "paths", strings.Join(ps, ","), "timeout", c.Timeout())
		}
		return c.Stop()
	}
	go func() {
		if f := c.Run(ctx, v.spec.CheckInterval, v.checkNow); f != nil {
			select {
			case v.mountFail <- f:
			default:
			}
		}
	}()
	v.log.Info("mountpoint-check started", "paths", strings.Join(v.spec.MountChecks, ","), "interval", v.spec.CheckInterval, "timeout", v.spec.CheckTimeout)
	return nil
}

// configure parses content (sent by the emperor: after a pivot_root the
// vassal could no longer read the host's file) and decodes it.
func (v *vassal) configure(content []byte, reload bool) error {
	f, err := vassalfile.Parse(v.path, content, vassalfile.ParseOptions{Reload: reload})
	if err != nil {
		return err
	}
	spec, err := vassalfile.Decode(f)
	if err != nil {
		return err
	}
	for _, w := range f.Warnings {
		v.log.Warn(w.String())
	}
	v.file, v.spec, v.content = f, spec, content
	return nil
}

func (v *vassal) environ() []string {
	return mergeEnv(baseEnv(), v.spec.Env, v.extraEnv)
}

func (v *vassal) workdir() string {
	if v.spec.Chdir != "" {
		return v.spec.Chdir
	}
	wd, err := os.Getwd()
	if err != nil {
		return "/"
	}
	return wd
}

func (v *vassal) daemonMercy() time.Duration {
	if v.spec.ReloadMercy > 0 {
		return v.spec.ReloadMercy
	}
	return v.mercy
}

func (v *vassal) loop(sigs chan os.Signal) int {
	msgs := make(chan control.Message)
	gone := make(chan error, 1)
	go func() {
		for {
			var m control.Message
			if err := v.conn.Recv(&m); err != nil {
				gone <- err
				return
			}
			msgs <- m
		}
	}()
	for {
		select {
		case s := <-sigs:
			switch s {
			case syscall.SIGHUP:
				v.log.Info("SIGHUP: reloading with the last configuration")
				if code, done := v.reload(v.content); done {
					return code
				}
			default:
				v.log.Info("stopping", "signal", s.String())
				v.shutdown()
				return 0
			}
		case m := <-msgs:
			if m.Type == control.MsgReload {
				if code, done := v.reload(m.Content); done {
					return code
				}
			}
		case err := <-gone:
			// The emperor is gone (even a SIGKILLed emperor closes its end
			// of the socketpair). A vassal never outlives its emperor.
			v.log.Error("emperor control channel closed; exiting", "err", err)
			v.killEverything()
			return 1
		case f := <-v.mountFail:
			// Destroy: the kernel kills the namespace and drops its mounts,
			// the emperor restarts the vassal from a clean state.
			return v.fatal(f)
		}
	}
}

// reload applies a new configuration in place: same PID 1, same namespaces,
// mounts and sockets; attached daemons restart, smart daemons stay.
func (v *vassal) reload(content []byte) (int, bool) {
	old := v.file
	oldSpec := v.spec
	if err := v.configure(content, true); err != nil {
		v.log.Error("reload: configuration rejected, keeping the running one", "err", err)
		_ = v.conn.Send(control.Message{Type: control.MsgRefuse, Reason: err.Error()})
		v.file, v.spec = old, oldSpec
		return 0, false
	}
	if reason := vassalfile.RestartReason(old, v.file); reason != "" {
		v.log.Warn("reload needs a full restart", "reason", reason)
		_ = v.conn.Send(control.Message{Type: control.MsgRefuse, Reason: reason, Restart: true})
		v.file, v.spec = old, oldSpec
		return 0, false
	}
	// Attached daemons restart; a smart daemon that is still configured
	// stays, which is the point of governing it by pidfile.
	prevChecker := v.checker
	v.releaseMounts(oldSpec)
	v.daemons.stopWhere(v.daemonMercy(), func(d *daemon) bool {
		if !d.spec.Smart {
			return true
		}
		for _, sp := range v.spec.Daemons {
			if sp.Smart && sp.Command == d.spec.Command && sp.Pidfile == d.spec.Pidfile {
				return false
			}
		}
		return true
	})
	if err := v.runHooks(oldSpec, hooks.AsUserAtexit); err != nil {
		v.log.Warn("as-user-atexit hook failed before reload", "err", err)
	}
	if err := v.runHooks(v.spec, hooks.AsUser); err != nil {
		return v.fatal(fmt.Errorf("reload: %w", err)), true
	}
	if err := v.chdir(); err != nil {
		return v.fatal(fmt.Errorf("reload: %w", err)), true
	}
	if err := v.startChecker(prevChecker); err != nil {
		return v.fatal(fmt.Errorf("reload: %w", err)), true
	}
	if v.http != nil {
		if err := v.http.apply(v.spec); err != nil {
			return v.fatal(fmt.Errorf("reload: %w", err)), true
		}
	}
	v.proc = v.newProc()
	var fresh []vassalfile.Daemon
	for _, sp := range v.spec.Daemons {
		if sp.Smart && v.daemons.has(sp) {
			continue
		}
		fresh = append(fresh, sp)
	}
	v.daemons.start(fresh, v.proc)
	v.log.Info("vassal reloaded", "daemons", len(v.spec.Daemons))
	if err := v.conn.Send(control.Message{Type: control.MsgReady, Reload: true}); err != nil {
		return v.fatal(err), true
	}
	return 0, false
}

// shutdown stops every daemon with mercy, then anything left.
func (v *vassal) shutdown() {
	v.stopProfile()
	v.releaseMounts(v.spec)
	if v.http != nil {
		v.http.stop(v.daemonMercy())
	}
	v.daemons.stopWhere(v.daemonMercy(), func(*daemon) bool { return true })
	if err := v.runHooks(v.spec, hooks.AsUserAtexit); err != nil {
		v.log.Warn("as-user-atexit hook failed", "err", err)
	}
	v.killEverything()
}

// releaseMounts readies the tenant's mounts for its as-user-atexit hooks: a
// fusermount -u there fails with EBUSY while anything of ours holds a
// reference into the mount. It stops mountpoint-check and waits for a
// statfs(2) in flight (bounded by the check timeout), and moves PID 1's
// working directory out of spec's chdir (which may be inside the mount) to
// /. Hooks and daemons still start in spec's directory (newProc).
func (v *vassal) releaseMounts(spec *vassalfile.Spec) {
	if v.stopChecker != nil {
		if err := v.stopChecker(); err != nil {
			v.log.Warn("an unmount by the as-user-atexit hooks may fail with EBUSY", "err", err)
		}
		v.stopChecker = nil
	}
	if spec.Chdir != "" {
		if err := os.Chdir("/"); err != nil {
			v.log.Warn("cannot leave the working directory before the as-user-atexit hooks", "dir", spec.Chdir, "err", err)
		}
	}
}

// killEverything makes sure nothing of the vassal survives it. In its own
// PID namespace the kernel does this when PID 1 exits; without one, the
// vassal (a child subreaper) kills what is left under it.
func (v *vassal) killEverything() {
	if v.pidNS {
		return
	}
	for i := 0; i < 50; i++ {
		kids := childrenOf(os.Getpid())
		if len(kids) == 0 {
			return
		}
		for _, k := range kids {
			_ = syscall.Kill(-k, syscall.SIGKILL)
			_ = syscall.Kill(k, syscall.SIGKILL)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
