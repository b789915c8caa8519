package emperor

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"time"

	"github.com/emperor-dev/emperor/vassalfile"
)

// DefaultCheckTimeout bounds the check of one vassal file: its stat, its read and
// its evaluation, which touches the filesystem (if-exists, if-file, if-dir,
// for-glob, @(file), uid/gid lookups). A path into a hung mount (a FUSE
// daemon that stopped answering) blocks a thread in the kernel for as long
// as the mount hangs, and nothing can cancel it; so a check runs off the
// emperor's loop, and a check past Config.CheckTimeout fails the file
// (failed-config, or the last good file keeps running) while every other
// vassal is served.
const DefaultCheckTimeout = 10 * time.Second

// maxChecks bounds the checks in flight. Each check stuck in a hung mount
// pins an OS thread until the mount answers, and there is at most one per
// file: a file is not checked again while its last check is stuck. Past
// maxChecks, further checks wait for a free slot (Go's runtime aborts the
// whole process at 10000 threads, which would take every vassal down).
const maxChecks = 128

// checking is the check of one file in flight.
type checking struct {
	path     string
	timer    *time.Timer
	timedOut bool // the file was failed for it; its verdict is stale
	again    bool // sync was asked for meanwhile: check once more after it
}

// verdict is what a check found.
type verdict struct {
	name      string
	c         *checking
	missing   bool  // no file, or not a regular file: stop the vassal
	statErr   error // cannot tell: leave the vassal as it is
	unchanged bool  // nothing to do but record st
	st        fileState
	readErr   error
	v         *Loaded
	checkErr  error
}

// readVassalFile is vassalfile.ReadFileStat; tests make it fail or block.
var readVassalFile = vassalfile.ReadFileStat

// checkFile stats, reads and checks a vassal file; it runs off the loop.
// prev is what was last recorded of the file and known says a vassal runs
// on it, so that an untouched file is neither read nor checked again.
func checkFile(name, path string, prev fileState, known bool) verdict {
	r := verdict{name: name}
	fi, err := os.Stat(path) // follows a symlink to the real file
	switch {
	case errors.Is(err, fs.ErrNotExist) || (err == nil && !fi.Mode().IsRegular()):
		r.missing = true
		return r
	case err != nil:
		r.statErr = err
		return r
	}
	r.st = statOf(fi)
	depsSame := !known || prev.depsSame()
	if known && !prev.retry && prev.sameStat(r.st) && depsSame {
		r.unchanged = true
		r.st = prev
		return r
	}
	content, rfi, err := readVassalFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			r.missing = true
			return r
		}
		// Not recorded as read: the next rescan reads it again, even if
		// its stat has not changed (a FIFO swapped in for a moment, EMFILE).
		r.readErr = err
		r.st.retry = true
		return r
	}
	// What was read, not what was stat'ed a moment before.
	r.st = statOf(rfi)
	r.st.sum = sha256.Sum256(content)
	if known && !prev.retry && !prev.changed(r.st) && depsSame {
		r.unchanged = true
		r.st.deps = prev.deps
		return r
	}
	v, rd, err := checkVassal(path, content, vassalfile.OwnerOf(rfi))
	r.v, r.checkErr = v, err
	r.st.deps = statDeps(rd.tried)
	r.st.sum = sumOf(content, rd.files)
	if known && !prev.retry && !prev.changed(r.st) {
		r.unchanged = true // a named file was touched, and reads the same
	}
	return r
}

// sumOf is the digest of a vassal file and of the files it named, read:
// what the vassal is made of.
func sumOf(content []byte, files map[string][]byte) [sha256.Size]byte {
	if len(files) == 0 {
		return sha256.Sum256(content)
	}
	h := sha256.New()
	h.Write(content)
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		fmt.Fprintf(h, "\x00%s\x00%d\x00", p, len(files[p]))
		h.Write(files[p])
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

// sync brings one vassal in line with its file: spawn, reload, report a bad
// file, or stop. The check runs off the loop; its verdict comes back to
// judge.
func (e *Emperor) sync(name string) {
	if e.skip(name) {
		return
	}
	if c := e.checks[name]; c != nil {
		c.again = true // one check per file in flight, even a stuck one
		return
	}
	e.mu.Lock()
	sup, leaving := e.vassals[name], e.leaving[name]
	e.mu.Unlock()
	if leaving {
		return // forget syncs it again once the old vassal is gone
	}
	if len(e.checks) >= maxChecks {
		if !e.queued[name] {
			e.queued[name] = true
			e.queue = append(e.queue, name)
			e.log.Warn("too many vassal file checks in flight; this one waits for a free slot", "vassal", name, "in_flight", len(e.checks))
		}
		return
	}
	path := e.pathOf(name)
	prev, known := e.files[name]
	known = known && sup != nil
	c := &checking{path: path}
	e.checks[name] = c
	c.timer = time.AfterFunc(e.cfg.CheckTimeout, func() {
		select {
		case e.checkTimeouts <- verdict{name: name, c: c}:
		case <-e.quit:
		}
	})
	go func() {
		r := checkFile(name, path, prev, known)
		r.c = c
		select {
		case e.verdicts <- r:
		case <-e.quit:
		}
	}()
}

// timedOut fails a file whose check has not returned within Config.CheckTimeout.
// The check stays in flight (nothing can cancel it); no other check of the
// file starts until it returns.
func (e *Emperor) timedOut(name string, c *checking) {
	if e.checks[name] != c {
		return // it returned meanwhile
	}
	c.timedOut, c.again = true, true
	if st, ok := e.files[name]; ok {
		st.retry = true
		e.files[name] = st
	}
	sup := e.supervisorFor(name)
	if sup == nil {
		return
	}
	e.metrics.configErrors.Inc()
	sup.post(cmdBroken{fmt.Errorf("%s: the check of this file did not finish within %v: a path it looks into may be on a hung mount (if-exists, if-file, if-dir, for-glob, @(file) and uid/gid lookups touch the filesystem); it is checked again once that check returns", c.path, e.cfg.CheckTimeout)})
}

// judge applies a verdict on the loop.
func (e *Emperor) judge(r verdict) {
	if e.checks[r.name] != r.c {
		return
	}
	r.c.timer.Stop()
	delete(e.checks, r.name)
	defer e.nextQueued()
	if r.c.timedOut {
		e.log.Info("a vassal file check that timed out has returned; checking the file again", "vassal", r.name)
		e.sync(r.name)
		return
	}
	if e.skip(r.name) {
		return // Resume or Start checks the file again
	}
	if r.c.again {
		defer e.sync(r.name)
	}
	e.mu.Lock()
	leaving := e.leaving[r.name]
	e.mu.Unlock()
	switch {
	case leaving:
		return
	case r.missing:
		e.remove(r.name)
		return
	case r.statErr != nil:
		e.log.Error("cannot stat the vassal file; the vassal is left as it is", "vassal", r.name, "err", r.statErr)
		return
	}
	prev, known := e.files[r.name]
	e.files[r.name] = r.st
	e.mu.Lock()
	e.mtimes[r.name] = r.st.mtime
	e.mu.Unlock()
	if r.unchanged {
		return
	}
	sup := e.supervisorFor(r.name)
	if sup == nil {
		return
	}
	switch {
	case r.readErr != nil:
		// A file that keeps failing the same way is reported once, not at
		// every rescan.
		if known && prev.retry && prev.readErr == r.readErr.Error() {
			r.st.readErr = prev.readErr
			e.files[r.name] = r.st
			return
		}
		r.st.readErr = r.readErr.Error()
		e.files[r.name] = r.st
		e.metrics.configErrors.Inc()
		sup.post(cmdBroken{fmt.Errorf("%s: %w", r.c.path, r.readErr)})
	case r.checkErr != nil:
		e.metrics.configErrors.Inc()
		sup.post(cmdBroken{r.checkErr})
	default:
		sup.post(cmdUpdate{r.v})
	}
}

// supervisorFor returns the supervisor of name, starting one if there is
// none; nil while the old vassal of that name is still stopping.
func (e *Emperor) supervisorFor(name string) *supervisor {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.leaving[name] {
		return nil
	}
	sup := e.vassals[name]
	if sup == nil {
		sup = newSupervisor(name, e.pathOf(name), &e.cfg, e.exe, false)
		sup.onReady = e.metrics.spawn.Observe
		e.vassals[name] = sup
		go sup.run()
	}
	return sup
}

// nextQueued starts the checks that waited for a slot.
func (e *Emperor) nextQueued() {
	for len(e.queue) > 0 && len(e.checks) < maxChecks {
		name := e.queue[0]
		e.queue = e.queue[1:]
		delete(e.queued, name)
		e.sync(name)
	}
}
