package emperor

import (
	"crypto/sha256"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Events for one file are coalesced: a sync runs settleDelay after the
// last event, and at most settleMax after the first, so a file written in
// several steps (echo > f, an editor saving in place) is read once it is
// whole, while a rename into the directory, the atomic way to install a
// vassal file, costs only settleDelay.
const (
	settleDelay = 10 * time.Millisecond
	settleMax   = 100 * time.Millisecond
)

// settleWait is how long to wait, after an event at now, before reading a
// file whose first unread event came at first.
func settleWait(first, now time.Time) time.Duration {
	return max(0, min(settleDelay, first.Add(settleMax).Sub(now)))
}

// isVassalFile says whether a directory entry is a vassal file: *.ini, not
// a dotfile. That leaves out editors' temporary and backup files (.x.swp,
// x.ini~, #x.ini#, .#x.ini, vim's 4913) and the dotfile-then-rename idiom's
// temporary name.
func isVassalFile(base string) bool {
	return filepath.Ext(base) == ".ini" && !strings.HasPrefix(base, ".") && len(base) > len(".ini")
}

// fileState is what the emperor last saw of a vassal file.
type fileState struct {
	ino   uint64
	size  int64
	mtime time.Time
	ctime time.Time
	sum   [sha256.Size]byte
	// retry: the last read or check did not complete (a read error, a
	// check past Config.CheckTimeout), so the file is read again at the next
	// rescan even if its stat is the same. readErr is that read error,
	// reported once.
	retry   bool
	readErr string
	// deps are the files the vassal file named (included files, @(file),
	// for-readline) as they were when it was last checked, read or not: a
	// change to one of them (found by the rescan, emperor-freq) checks
	// the vassal file again, and reloads the vassal when what it reads
	// changed (sum covers them).
	deps []depState
}

// depState is a file a vassal file named, as the emperor last stat'ed it.
type depState struct {
	path   string
	exists bool
	st     fileState
}

// statDeps stats the files a check tried to read. The stat is the
// emperor's (it only tells whether to check again); the check itself
// reads them with the vassal file owner's credentials.
func statDeps(paths []string) []depState {
	out := make([]depState, 0, len(paths))
	for _, p := range paths {
		d := depState{path: p}
		if fi, err := os.Stat(p); err == nil {
			d.exists, d.st = true, statOf(fi)
		}
		out = append(out, d)
	}
	return out
}

// depsSame says whether the files a vassal file named are as they were.
func (a fileState) depsSame() bool {
	for _, d := range a.deps {
		fi, err := os.Stat(d.path)
		if (err == nil) != d.exists || (err == nil && !d.st.sameStat(statOf(fi))) {
			return false
		}
	}
	return true
}

func statOf(fi fs.FileInfo) fileState {
	st := fileState{size: fi.Size(), mtime: fi.ModTime()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = sys.Ino
		st.ctime = time.Unix(sys.Ctim.Unix())
	}
	return st
}

// sameStat says the file was not touched since: a rescan then need not read
// it. Any write changes ctime, so a change that kept mtime and size is
// still seen.
func (a fileState) sameStat(b fileState) bool {
	return a.ino == b.ino && a.size == b.size && a.mtime.Equal(b.mtime) && a.ctime.Equal(b.ctime)
}

// changed says whether a file read again differs from the last one: a new
// mtime (touch, uWSGI's way to ask for a reload) or new content.
func (a fileState) changed(b fileState) bool {
	return !a.mtime.Equal(b.mtime) || a.sum != b.sum
}
