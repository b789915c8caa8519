package vassal

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"sync"
	"syscall"
	"time"

	"github.com/emperor-dev/emperor/control"
	"github.com/emperor-dev/emperor/hooks"
	"github.com/emperor-dev/emperor/procstat"
	"github.com/emperor-dev/emperor/reexec"
	"github.com/emperor-dev/emperor/restart"
	"github.com/emperor-dev/emperor/vassalfile"
	"golang.org/x/sys/unix"
)

// CPUProfileEnv names a file the vassal's PID 1 writes a CPU profile to, from
// start to exit (make bench uses it for the cache-off profile).
const CPUProfileEnv = "EMPEROR_VASSAL_CPUPROFILE"

// startTimeout bounds the wait for the emperor's start message.
const startTimeout = 30 * time.Second

// vassal is PID 1: what the bootstrap sets up and the components share.
type vassal struct {
	name   string
	path   string
	conn   *control.Conn
	log    *slog.Logger
	reaper *Reaper
	ns     reexec.Namespaces // from the start message
	pidNS  bool
	mercy  time.Duration  // the emperor's reload-mercy
	policy restart.Policy // the emperor's restart policy, for daemons
	lc     *lifecycle
	// app is the app server component (app.go), for the components that
	// reload or signal it (nil until components() ran).
	app *appServer
	// procfs is this PID namespace's /proc, opened before the jail: a
	// graceful reload of the app server reads its workers' state there
	// (quiesce.go). nil if it could not be opened.
	procfs *procstat.FS

	// sink is where v.log writes besides the emperor's log: the vassal's
	// log file (logfile.go); report writes to the emperor's log only.
	sink   *logSink
	report *slog.Logger

	// setupEnv and userEnv are what putenv hooks added, in the root phases
	// and in the as-user phase (which runs again on every reload).
	setupEnv, userEnv []string

	// failed carries a component's failure at run time (a mount that
	// died): the vassal is destroyed.
	failed chan error

	// stopProfile ends the CPU profile (CPUProfileEnv) when the vassal
	// starts to stop, so that it covers serving and not the teardown.
	stopProfile func()
}

// Main runs a vassal's PID 1. args are the words after
// reexec.InitCommand: the vassal's name, there for ps. Everything else comes
// in the start message on reexec.ControlFD. It returns the process exit code.
func Main(args []string) int {
	// Signals before anything else: a Go PID 1 gets no default action for
	// TERM/INT/HUP from inside its namespace, and the runtime drops one that
	// nothing asked for, so a SIGTERM from the emperor that arrived while
	// this process waited for its start message or set up its namespaces
	// was lost (the emperor then SIGKILLed it after reload-mercy). From here
	// on it waits in the channel until the loop takes it.
	sigs := make(chan os.Signal, 4)
	// SIGQUIT too: uWSGI 2.0 shuts down on it as on SIGINT, and the Go
	// runtime's own action for it (dump the goroutines and exit 2) would
	// make it a crash that the emperor restarts.
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGHUP, syscall.SIGUSR1)
	// PID 1 mostly waits; one P keeps its threads and memory small when a
	// host runs hundreds of vassals. (Not via the environment: the tenant's
	// daemons inherit that.)
	runtime.GOMAXPROCS(1)
	// Text until the start message says the emperor's format: only a
	// broken contract logs before it.
	base := slog.New(reexec.LogText.Handler(os.Stderr))
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
	base = slog.New(start.LogFormat.Handler(os.Stderr)).With("vassal", start.Name)
	if err := enterNamespaces(start.Namespaces); err != nil {
		base.Error("vassal setup failed", "err", err)
		_ = conn.Send(control.Message{Type: control.MsgFatal, Reason: err.Error()})
		return 1
	}
	emp := start.LogFormat.Handler(os.Stderr)
	sink := &logSink{}
	v := &vassal{
		name: start.Name, path: start.Path, conn: conn, mercy: start.Mercy, stopProfile: stopProfile,
		log:    slog.New(newSinkHandler(emp, sink)).With("vassal", start.Name),
		sink:   sink,
		report: slog.New(emp).With("vassal", start.Name),
		ns:     start.Namespaces,
		pidNS:  start.Namespaces.Has(reexec.NSPID),
		failed: make(chan error, 1),
	}
	if v.procfs, err = procstat.OpenFS("/proc"); err != nil {
		v.log.Warn("no procfs: graceful reloads of the app server cannot hold its workers", "err", err)
	}
	if v.mercy <= 0 {
		v.mercy = vassalfile.DefaultOf[time.Duration]("reload-mercy")
	}
	v.policy = restart.Default()
	if start.Policy != nil {
		v.policy = *start.Policy
	}
	v.lc = &lifecycle{v: v, comps: v.components()}
	code := v.main(start, sigs)
	v.closeLog()
	return code
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
	// An exit:N hook exits with N, as uWSGI's exit() does.
	if exit := (*hooks.ExitError)(nil); errors.As(err, &exit) {
		return exit.Code
	}
	return 1
}

// fail reports a component's failure at run time to the loop, which
// destroys the vassal. Only the first one counts.
func (v *vassal) fail(err error) {
	select {
	case v.failed <- err:
	default:
	}
}

func (v *vassal) main(start control.Message, sigs chan os.Signal) int {
	v.reaper = NewReaper()
	if !v.pidNS {
		if err := becomeSubreaper(); err != nil {
			return v.fatal(err)
		}
	}
	go v.forwardExits()
	v.lc.files, v.lc.owner = start.Files, start.Owner
	if err := v.lc.start(start.Content); err != nil {
		return v.fatal(err)
	}
	spec := v.lc.good.spec
	v.log.Info("vassal ready", "namespaces", v.ns.String(), "daemons", len(spec.Daemons), "uid", os.Getuid(), "gid", os.Getgid())
	if err := v.conn.Send(control.Message{Type: control.MsgReady}); err != nil {
		return v.fatal(err)
	}
	return v.loop(sigs)
}

// forwardExits tells the components of every reaped child (a FUSE daemon's
// death is checked in milliseconds, not on the next tick; smart daemons
// look at their pidfile again).
func (v *vassal) forwardExits() {
	for range v.reaper.Subscribe() {
		v.lc.childExited()
	}
}

// stop ends the vassal for good: the emperor's stop (its stop message and
// its SIGTERM, whichever comes first), or SIGINT/SIGQUIT/SIGTERM from
// anyone else. by and what say which, for the log.
func (v *vassal) stop(by, what string) int {
	v.log.Info("stopping", by, what)
	v.stopProfile()
	v.emperorHooks(hooks.EmperorStop)
	v.lc.stop()
	v.killEverything()
	return 0
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
			case syscall.SIGUSR1:
				v.log.Info("SIGUSR1: reopening the log file")
				v.reopenLog("SIGUSR1")
			case syscall.SIGHUP:
				v.log.Info("SIGHUP: reloading with the last good file")
				if err := v.reload(v.lc.good.content); err != nil {
					return v.fatal(err)
				}
			default:
				return v.stop("signal", s.String())
			}
		case m := <-msgs:
			if m.Type == control.MsgStop {
				return v.stop("message", "stop from the emperor")
			}
			if m.Type == control.MsgReload {
				v.emperorHooks(hooks.EmperorReload)
				v.lc.files, v.lc.owner = m.Files, m.Owner
				if err := v.reload(m.Content); err != nil {
					return v.fatal(err)
				}
			}
		case err := <-gone:
			// The emperor is gone (even a SIGKILLed emperor closes its end
			// of the socketpair). A vassal never outlives its emperor.
			v.log.Error("emperor control channel closed; exiting", "err", err)
			v.killEverything()
			return 1
		case err := <-v.failed:
			// Destroy: the kernel kills the namespace and drops its mounts,
			// the emperor restarts the vassal from a clean state.
			return v.fatal(err)
		}
	}
}

// reload applies content in place: same PID 1, same namespaces, mounts and
// sockets. A refused reload is reported to the emperor and leaves the vassal
// on its last good file; the error it returns is one that leaves the
// vassal in no known state, to be destroyed.
func (v *vassal) reload(content []byte) error {
	err := v.lc.reload(content)
	var re *ReloadError
	var exit *hooks.ExitError
	switch {
	case errors.As(err, &exit):
		// An exit: hook in the new file's as-user phase: PID 1 exits.
		return err
	case errors.As(err, &re) && re.Restart:
		v.log.Warn("reload needs a full restart", "reason", re.Reason)
		_ = v.conn.Send(control.Message{Type: control.MsgRefuse, Reason: re.Reason, Restart: true})
		return nil
	case errors.As(err, &re):
		v.log.Error("reload refused, keeping the last good file", "err", re.Reason)
		_ = v.conn.Send(control.Message{Type: control.MsgRefuse, Reason: re.Reason})
		return nil
	case err != nil:
		return fmt.Errorf("reload: %w", err)
	}
	v.log.Info("vassal reloaded", "daemons", len(v.lc.good.spec.Daemons))
	return v.conn.Send(control.Message{Type: control.MsgReady, Reload: true})
}

// RequestReload is "reload from inside PID 1": it asks for the reload a
// touch of the vassal file gets. The emperor reloads the vassal in place
// with its current good file, spaced and coalesced with every other reload
// of it (reloadSpacing), logs it with the vassal's name and shows it in
// status, as if the file had been touched. Any component may call it, from
// any goroutine (touch-reload and friends do); reason says why, in both
// logs. It does not wait for the reload.
func (v *vassal) RequestReload(reason string) {
	v.log.Info("asking the emperor for a reload", "reason", reason)
	if err := v.conn.Send(control.Message{Type: control.MsgAskReload, Reason: reason}); err != nil {
		v.log.Error("could not ask the emperor for a reload", "reason", reason, "err", err)
	}
}

// newProc captures how children of c start: environment, directory and
// the sockets they inherit.
func (v *vassal) newProc(c *config, sockets []*os.File) *proc {
	return &proc{reaper: v.reaper, log: v.log, env: v.environ(c.spec), dir: workdirOf(c.spec), sockets: sockets}
}

// environ is what children of spec start with (environ.go): not the
// emperor's environment.
func (v *vassal) environ(spec *vassalfile.Spec) []string {
	return mergeEnv(baseEnv(), spec.Env, v.setupEnv, v.userEnv)
}

// workdirOf is where children start: the vassal's chdir, else PID 1's
// directory.
func workdirOf(spec *vassalfile.Spec) string {
	if spec.Chdir != "" {
		return spec.Chdir
	}
	wd, err := os.Getwd()
	if err != nil {
		return "/"
	}
	return wd
}

// mercyFor is how long daemons and requests get to finish when they stop:
// the file's reload-mercy, else the emperor's.
func (v *vassal) mercyFor(spec *vassalfile.Spec) time.Duration {
	if spec.ReloadMercy > 0 {
		return spec.ReloadMercy
	}
	return v.mercy
}

// killEverything makes sure nothing of the vassal survives it. In its own
// PID namespace the kernel does this when PID 1 exits; without one, the
// vassal (a child subreaper) kills what is left under it.
func (v *vassal) killEverything() {
	// No process starts any more: a supervisor restarting what is killed
	// here would race the kill (and, without a PID namespace, its new
	// process could outlive PID 1).
	v.reaper.Close()
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

// startCPUProfile profiles PID 1 into path until the returned stop runs.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
