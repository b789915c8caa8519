package vassal

import (
	"errors"
	"fmt"
	"strings"

	"github.com/emperor-dev/emperor/control"
	"github.com/emperor-dev/emperor/userdb"
	"github.com/emperor-dev/emperor/vassalfile"
)

// component is one part of a running vassal (components.go lists them).
// The lifecycle drives every component the same way: Start in list order on
// the first start, Apply in list order on a reload, Stop in reverse order on
// shutdown. A component owns what it opens and closes it in Stop.
type component interface {
	// Start brings the component up for c. On an error it has closed
	// whatever it opened: Stop is not called for it.
	Start(c *config) error
	// Apply moves the running component from old to new in place. old and
	// new may be the same config (a touch reloads an unchanged file). It
	// is all or nothing: on an error the component is as it was before
	// the call, so the lifecycle can roll the reload back.
	Apply(old, new *config) error
	// Stop stops the component and closes what it opened.
	Stop()
}

// A releaser is a component that a reload restarts rather than changes in
// place (attached daemons, mountpoint-check, the as-user hooks). A reload
// first releases, in reverse order, what it will replace, so that nothing
// of the vassal holds the tenant's mounts when the as-user-atexit hooks
// run; its Apply then brings up the replacement. Release cannot fail: it
// logs what went wrong.
type releaser interface {
	Release(old, new *config)
}

// An exitWatcher wants to hear of every child the reaper reaped (a FUSE
// daemon's death is seen at once, not on the next check).
type exitWatcher interface {
	childExited()
}

// config is one accepted vassal file: its content (kept so that a SIGHUP
// and a refused reload reuse it), parsed, decoded, and with its users and
// groups resolved.
type config struct {
	content []byte
	file    *vassalfile.File
	spec    *vassalfile.Spec
	creds   userdb.Creds
}

// namedComponent is a component with the name its errors carry.
type namedComponent struct {
	name string
	c    component
}

// lifecycle holds the components of a vassal and its last good config.
type lifecycle struct {
	v     *vassal
	comps []namedComponent
	// good is the config the components run: replaced only by a reload
	// that every component applied.
	good *config
	// started counts the components that started, so that a shutdown
	// after a failed start stops just those.
	started int
	// files are the files the vassal file names, as the emperor read
	// them with the file owner's credentials (control.Message.Files):
	// PID 1 reads no other, as root, and maybe after a pivot_root.
	files map[string][]byte
	// owner is the vassal file's owner, whose credentials test the
	// paths of its conditions and for-glob, as in the emperor's check.
	owner *control.Owner
}

// ComponentError is a component that failed to start or apply.
type ComponentError struct {
	Component string
	Op        string // "start", "apply", "roll back"
	Err       error
}

func (e *ComponentError) Error() string {
	if e.Op == "roll back" {
		return fmt.Sprintf("rolling back %s: %v", e.Component, e.Err)
	}
	if msg := e.Err.Error(); strings.HasPrefix(msg, e.Component) {
		return msg // "mountpoint-check /app: ...", "chdir /x: ..." say it already
	}
	return fmt.Sprintf("%s: %v", e.Component, e.Err)
}
func (e *ComponentError) Unwrap() error { return e.Err }

// ReloadError is a reload that was not applied. Restart says the file is
// valid but changes what a running vassal cannot change: the emperor
// restarts the vassal with it. Otherwise the vassal keeps running on its
// last good file.
type ReloadError struct {
	Reason  string
	Restart bool
	Err     error
}

func (e *ReloadError) Error() string { return e.Reason }
func (e *ReloadError) Unwrap() error { return e.Err }

// load parses content (sent by the emperor: after a pivot_root the vassal
// could no longer read the host's file), decodes it, and resolves its users
// and groups in the host's database. On a reload (prev set) the resolved
// credentials are carried over: the file may not change them in place
// (RestartReason), and the jail may have no user database.
func (l *lifecycle) load(content []byte, prev *config) (*config, error) {
	files := l.files
	if files == nil {
		files = map[string][]byte{}
	}
	o := vassalfile.ParseOptions{Reload: prev != nil, Files: files}
	if l.owner != nil {
		o.Owner = &vassalfile.FileOwner{UID: l.owner.UID, GID: l.owner.GID}
	}
	f, err := vassalfile.Parse(l.v.path, content, o)
	if err != nil {
		return nil, err
	}
	spec, err := vassalfile.Decode(f)
	if err != nil {
		return nil, err
	}
	for _, w := range f.Warnings {
		l.v.log.Warn(w.String())
	}
	c := &config{content: content, file: f, spec: spec}
	if prev != nil {
		c.creds = prev.creds
		return c, nil
	}
	if c.creds, err = userdb.Resolve(spec.CredsRequest()); err != nil {
		return nil, err
	}
	return c, nil
}

// start loads content and starts every component in order. On an error the
// components that started are stopped again, in reverse.
func (l *lifecycle) start(content []byte) error {
	c, err := l.load(content, nil)
	if err != nil {
		return err
	}
	l.good = c
	for _, nc := range l.comps {
		if err := nc.c.Start(c); err != nil {
			l.stop()
			return &ComponentError{Component: nc.name, Op: "start", Err: err}
		}
		l.started++
	}
	return nil
}

// reload moves the vassal to content in place. A *ReloadError means the
// reload was refused and the vassal still runs its last good file, every
// component rolled back; any other error means the vassal could not be put
// back in a known state and must be destroyed.
func (l *lifecycle) reload(content []byte) error {
	old := l.good
	cur, err := l.load(content, old)
	if err != nil {
		return &ReloadError{Reason: err.Error(), Err: err}
	}
	if reason := vassalfile.RestartReason(old.file, cur.file); reason != "" {
		return &ReloadError{Reason: reason, Restart: true}
	}
	for i := len(l.comps) - 1; i >= 0; i-- {
		if r, ok := l.comps[i].c.(releaser); ok {
			r.Release(old, cur)
		}
	}
	for k, nc := range l.comps {
		if err := nc.c.Apply(old, cur); err != nil {
			applyErr := &ComponentError{Component: nc.name, Op: "apply", Err: err}
			if rbErr := l.rollback(k, old, cur); rbErr != nil {
				return errors.Join(applyErr, rbErr)
			}
			return &ReloadError{Reason: applyErr.Error() + " (reload rolled back: the vassal runs its last good file)", Err: applyErr}
		}
	}
	l.good = cur
	return nil
}

// rollback undoes a reload from old to cur whose component k failed to
// apply. Components before k run cur: they are released and applied back
// to old, as a reload would. Component k is as before its Apply, and so are
// the ones after it, but the releasers among them were released: they are
// applied to old again to come back up.
func (l *lifecycle) rollback(k int, old, cur *config) error {
	for i := k - 1; i >= 0; i-- {
		if r, ok := l.comps[i].c.(releaser); ok {
			r.Release(cur, old)
		}
	}
	for i, nc := range l.comps {
		from := old
		if i < k {
			from = cur
		} else if _, ok := nc.c.(releaser); !ok {
			continue
		}
		if err := nc.c.Apply(from, old); err != nil {
			return &ComponentError{Component: nc.name, Op: "roll back", Err: err}
		}
	}
	return nil
}

// stop stops the started components in reverse order.
func (l *lifecycle) stop() {
	for i := l.started - 1; i >= 0; i-- {
		l.comps[i].c.Stop()
	}
	l.started = 0
}

// childExited tells the components that watch exits that a child was reaped.
func (l *lifecycle) childExited() {
	for _, nc := range l.comps {
		if w, ok := nc.c.(exitWatcher); ok {
			w.childExited()
		}
	}
}
