package vassal

import (
	"context"
	"strings"

	"github.com/emperor-dev/emperor/mountcheck"
)

// mountCheck is the mountpoint-check component: it statfs()es the checked
// paths every check-interval and whenever a child exits, and reports a
// failed, hung or unmounted path on the vassal's failure channel, which
// destroys the vassal so the emperor restarts it clean. A reload stops it
// and starts it again, carrying which paths were mount points, so a path a
// reload left unmounted still counts as unmounted.
type mountCheck struct {
	v       *vassal
	trigger chan struct{} // a child exited: check now
	checker *mountcheck.Checker
	cancel  context.CancelFunc
	// last is the latest checker that started, running or stopped: its
	// record of mount points carries over to the next one.
	last *mountcheck.Checker
}

func newMountCheck(v *vassal) *mountCheck {
	return &mountCheck{v: v, trigger: make(chan struct{}, 1)}
}

func (m *mountCheck) Start(c *config) error {
	s := c.spec
	if len(s.MountChecks) == 0 {
		return nil
	}
	chk := mountcheck.New(s.MountChecks, s.CheckTimeout)
	chk.Carry(m.last)
	if f := chk.Check(); f != nil {
		_ = chk.Stop()
		return f
	}
	m.last = chk
	ctx, cancel := context.WithCancel(context.Background())
	m.checker, m.cancel = chk, cancel
	go func() {
		if f := chk.Run(ctx, s.CheckInterval, m.trigger); f != nil {
			m.v.fail(f)
		}
	}()
	m.v.log.Info("mountpoint-check started", "paths", strings.Join(s.MountChecks, ","), "interval", s.CheckInterval, "timeout", s.CheckTimeout)
	return nil
}

func (m *mountCheck) Release(old, new *config)     { m.Stop() }
func (m *mountCheck) Apply(old, new *config) error { return m.Start(new) }

// Stop ends the check and waits for a statfs(2) in flight (bounded by the
// check timeout): it holds a reference to the mount, and the tenant's
// fusermount -u in its as-user-atexit hooks, which run after this, would
// fail with EBUSY.
func (m *mountCheck) Stop() {
	if m.checker == nil {
		return
	}
	m.cancel()
	if ps := m.checker.InFlight(); len(ps) > 0 {
		m.v.log.Info("mountpoint-check stopping: waiting for a statfs in flight", "paths", strings.Join(ps, ","), "timeout", m.checker.Timeout())
	}
	if err := m.checker.Stop(); err != nil {
		m.v.log.Warn("an unmount by the as-user-atexit hooks may fail with EBUSY", "err", err)
	}
	m.checker, m.cancel = nil, nil
}

func (m *mountCheck) childExited() {
	select {
	case m.trigger <- struct{}{}:
	default:
	}
}
