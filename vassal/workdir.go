package vassal

import "os"

// workdir is the chdir component: PID 1 changes to the vassal's directory
// after the as-user hooks (which may mount it), and leaves it for / before
// the as-user-atexit hooks, so that PID 1's working directory does not hold
// a mount the tenant unmounts there (EBUSY). Hooks and daemons start in
// the configured directory either way (newProc).
type workdir struct {
	v   *vassal
	dir string // the chdir PID 1 is in; "" when it left it or had none
}

func (w *workdir) Start(c *config) error {
	if c.spec.Chdir == "" {
		return nil
	}
	if err := os.Chdir(c.spec.Chdir); err != nil {
		return err // "chdir DIR: ..."
	}
	w.dir = c.spec.Chdir
	return nil
}

func (w *workdir) Apply(old, new *config) error { return w.Start(new) }
func (w *workdir) Release(old, new *config)     { w.leave() }
func (w *workdir) Stop()                        { w.leave() }

func (w *workdir) leave() {
	if w.dir == "" {
		return
	}
	if err := os.Chdir("/"); err != nil {
		w.v.log.Warn("cannot leave the working directory before the as-user-atexit hooks", "dir", w.dir, "err", err)
	}
	w.dir = ""
}
