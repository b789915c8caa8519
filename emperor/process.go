package emperor

import (
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/emperor-dev/emperor/control"
	"github.com/emperor-dev/emperor/reexec"
	"golang.org/x/sys/unix"
)

// sendTimeout bounds one message to a vassal. A vassal that stops reading
// its channel (wedged in a hook) must not wedge its supervisor: past this,
// the send fails and the supervisor can still stop it.
const sendTimeout = 10 * time.Second

// process is one life of a vassal's PID 1: its pidfd, its control channel,
// and two goroutines parked in the netpoller that turn them into events.
type process struct {
	pid     int
	started time.Time
	pidfd   *os.File
	ctl     *os.File
	conn    *control.Conn
	// msgs carries every message from the vassal; it is closed at EOF,
	// which comes when PID 1 (the only holder of the other end) is gone.
	msgs chan control.Message
	// exit gets the wait status once PID 1 has been reaped.
	exit chan exitResult
	// gone is closed when the supervisor is done with the process, so the
	// reader never blocks on a channel nobody reads.
	gone chan struct{}
}

type exitResult struct {
	ws  unix.WaitStatus
	err error
}

// startProcess forks exe as the PID 1 of a vassal in namespaces ns.
func startProcess(exe, name string, ns reexec.Namespaces) (*process, error) {
	ours, theirs, err := controlPair()
	if err != nil {
		return nil, err
	}
	pidfd := -1
	argv := reexec.Argv(exe, name)
	attr, err := vassalAttr(ns, theirs, &pidfd)
	if err != nil {
		ours.Close()
		theirs.Close()
		return nil, &SpawnError{Path: exe, Namespaces: ns.String(), Err: err}
	}
	pid, err := theForker().forkExec(argv, attr)
	theirs.Close()
	if err != nil {
		ours.Close()
		return nil, &SpawnError{Path: exe, Namespaces: ns.String(), Err: err}
	}
	if pidfd < 0 {
		// A kernel without CLONE_PIDFD (before 5.3): refuse rather than
		// fall back to PID-based signals that can hit a recycled PID.
		_ = syscall.Kill(pid, syscall.SIGKILL)
		var ws unix.WaitStatus
		_, _ = unix.Wait4(pid, &ws, 0, nil)
		ours.Close()
		return nil, &SpawnError{Path: exe, Namespaces: ns.String(), Err: fmt.Errorf("the kernel gave no pidfd (CLONE_PIDFD needs Linux 5.3 or later)")}
	}
	pf, err := pidfdFile(pidfd)
	if err != nil {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		var ws unix.WaitStatus
		_, _ = unix.Wait4(pid, &ws, 0, nil)
		ours.Close()
		return nil, err
	}
	p := &process{
		pid: pid, started: time.Now(), pidfd: pf, ctl: ours, conn: control.NewConn(ours),
		msgs: make(chan control.Message, 4), exit: make(chan exitResult, 1), gone: make(chan struct{}),
	}
	go p.read()
	go func() {
		ws, err := waitPidfd(pf, pid)
		p.exit <- exitResult{ws, err}
	}()
	return p, nil
}

func (p *process) read() {
	defer close(p.msgs)
	for {
		var m control.Message
		if err := p.conn.Recv(&m); err != nil {
			return
		}
		select {
		case p.msgs <- m:
		case <-p.gone:
			return
		}
	}
}

// send writes one message, giving up after sendTimeout.
func (p *process) send(m control.Message) error {
	_ = p.ctl.SetWriteDeadline(time.Now().Add(sendTimeout))
	return p.conn.Send(m)
}

func (p *process) signal(sig syscall.Signal) error { return signalPidfd(p.pidfd, sig) }

// drain collects what the vassal said before it exited (its fatal reason
// is usually the last line), waiting at most d for the channel's EOF.
func (p *process) drain(d time.Duration) []control.Message {
	var out []control.Message
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case m, ok := <-p.msgs:
			if !ok {
				return out
			}
			out = append(out, m)
		case <-t.C:
			return out
		}
	}
}

// release closes the process's descriptors once it has been reaped.
func (p *process) release() {
	close(p.gone)
	p.ctl.Close()
	p.pidfd.Close()
}
