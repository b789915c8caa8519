package emperor

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"time"

	"github.com/emperor-dev/emperor/control"
)

// The operator's actions that change what the loop does with the vassal
// files (the HTTP API): hold a vassal stopped while its file stays, let it
// start again, and pause the reaction to file changes. They run on Run's
// loop, which owns that state, and answer on a channel.

// ErrNoVassal is an action on a name that has no vassal file.
var ErrNoVassal = errors.New("no such vassal")

// ErrConflict is an action that does not apply to the vassal's state: start
// of a vassal that is not held stopped, stop of one already held.
var ErrConflict = errors.New("not in a state for this action")

// StateHeld is the state of a vassal the operator stopped: its file is
// there, its vassal is not running, and no change of the file starts it
// until the operator starts it again.
const StateHeld = "stopped-by-operator"

// op is one action for the loop; reply gets its result.
type op struct {
	do    func() error
	reply chan error
}

// run sends o to the loop and waits for its answer; it fails once the
// emperor has stopped.
func (e *Emperor) run(do func() error) error {
	o := op{do: do, reply: make(chan error, 1)}
	select {
	case e.ops <- o:
	case <-e.quit:
		return errors.New("the emperor is stopping")
	}
	select {
	case err := <-o.reply:
		return err
	case <-e.quit:
		return errors.New("the emperor is stopping")
	}
}

// Stop stops the vassal of name with its mercy, as a deleted file would,
// and holds it stopped while its file stays: file changes and rescans leave
// it alone until Start.
func (e *Emperor) Stop(name string) error {
	return e.run(func() error {
		e.mu.Lock()
		held := e.held[name]
		_, running := e.vassals[name]
		e.mu.Unlock()
		if held {
			return fmt.Errorf("vassal %q: %w (already stopped by the operator)", name, ErrConflict)
		}
		if !running {
			if _, err := os.Lstat(e.pathOf(name)); err != nil {
				return fmt.Errorf("vassal %q: %w", name, ErrNoVassal)
			}
		}
		e.mu.Lock()
		e.held[name] = true
		e.mu.Unlock()
		e.log.Info("vassal stopped by the operator; held until started again", "vassal", name)
		e.remove(name)
		return nil
	})
}

// Start ends the hold of a vassal the operator stopped: its file is checked
// and the vassal starts as for a new file.
func (e *Emperor) Start(name string) error {
	return e.run(func() error {
		e.mu.Lock()
		held := e.held[name]
		delete(e.held, name)
		e.mu.Unlock()
		if !held {
			if _, err := os.Lstat(e.pathOf(name)); err != nil {
				return fmt.Errorf("vassal %q: %w", name, ErrNoVassal)
			}
			return fmt.Errorf("vassal %q: %w (it is not stopped by the operator)", name, ErrConflict)
		}
		e.log.Info("vassal started by the operator", "vassal", name)
		e.sync(name)
		return nil
	})
}

// Pause stops the reaction to the vassal directory: file events and
// rescans are noted, not applied. Running vassals go on, and their
// supervisors still restart them. Resume applies what changed meanwhile.
func (e *Emperor) Pause() error {
	return e.run(func() error {
		e.mu.Lock()
		was := e.paused
		e.paused = true
		e.mu.Unlock()
		if !was {
			e.log.Info("reaction to vassal file changes paused by the operator")
		}
		return nil
	})
}

// Resume ends a Pause and applies every change it held back, with a rescan
// for files that changed without an event being noted.
func (e *Emperor) Resume() error {
	return e.run(func() error {
		e.mu.Lock()
		was := e.paused
		e.paused = false
		deferred := e.deferred
		e.deferred = map[string]bool{}
		e.mu.Unlock()
		if !was {
			return nil
		}
		names := make([]string, 0, len(deferred))
		for name := range deferred {
			names = append(names, name)
		}
		sort.Strings(names)
		e.log.Info("reaction to vassal file changes resumed", "deferred", len(names))
		for _, name := range names {
			e.sync(name)
		}
		e.rescan()
		return nil
	})
}

// Info is the emperor's own state, for the API.
type Info struct {
	PID    int       `json:"pid"`
	Since  time.Time `json:"since"`
	Dir    string    `json:"vassals_dir"`
	Paused bool      `json:"paused"`
	// Deferred counts the vassal files whose changes wait for Resume.
	Deferred int `json:"deferred"`
	Vassals  int `json:"vassals"`
}

// Info returns the emperor's own state.
func (e *Emperor) Info() Info {
	e.mu.Lock()
	defer e.mu.Unlock()
	return Info{PID: os.Getpid(), Since: e.since, Dir: e.dir, Paused: e.paused, Deferred: len(e.deferred), Vassals: len(e.vassals) + e.heldOnlyLocked()}
}

// heldOnlyLocked counts the held vassals that have no entry in the table
// any more (their PID 1 is gone); e.mu is held.
func (e *Emperor) heldOnlyLocked() int {
	n := 0
	for name := range e.held {
		if _, ok := e.vassals[name]; !ok {
			n++
		}
	}
	return n
}

// heldStatus is the status row of a vassal held stopped.
func (e *Emperor) heldStatus(name string) control.VassalStatus {
	return control.VassalStatus{Name: name, File: e.pathOf(name), State: StateHeld}
}

// skip says whether sync or judge must leave name alone: the reaction to
// files is paused (the name is noted for Resume), or the operator holds
// the vassal stopped. A held vassal whose file is gone is held no more.
func (e *Emperor) skip(name string) bool {
	e.mu.Lock()
	held, paused := e.held[name], e.paused
	if paused {
		e.deferred[name] = true
	}
	e.mu.Unlock()
	if paused {
		return true
	}
	if !held {
		return false
	}
	if _, err := os.Lstat(e.pathOf(name)); errors.Is(err, fs.ErrNotExist) {
		e.mu.Lock()
		delete(e.held, name)
		e.mu.Unlock()
		e.log.Info("the file of a vassal stopped by the operator is gone; it is no longer held", "vassal", name)
	}
	return true
}
