package fileserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Local serves a folder (static-map). Paths are resolved by the kernel
// beneath the folder: a symlink pointing outside it fails, unless its target
// lies under one of Safe (uWSGI's static-safe).
type Local struct {
	Root string
	Safe []string
	root *os.File
	safe []safeDir
}

// safeDir is a static-safe folder, opened once: a path that leaves the
// root for it is opened beneath this descriptor.
type safeDir struct {
	path string // with its symlinks resolved
	f    *os.File
}

// NewLocal opens root, and each static-safe folder that exists (one that
// does not, or is no directory, can never be a symlink's target).
func NewLocal(root string, safe []string) (*Local, error) {
	f, err := os.Open(root)
	if err != nil {
		return nil, fmt.Errorf("static-map %s: %w", root, err)
	}
	st, err := f.Stat()
	if err != nil || !st.IsDir() {
		f.Close()
		return nil, fmt.Errorf("static-map %s: not a directory", root)
	}
	l := &Local{Root: root, Safe: safe, root: f}
	for _, s := range safe {
		real, err := filepath.EvalSymlinks(s)
		if err != nil {
			continue
		}
		sf, err := os.Open(real)
		if err != nil {
			continue
		}
		if st, err := sf.Stat(); err != nil || !st.IsDir() {
			sf.Close()
			continue
		}
		l.safe = append(l.safe, safeDir{path: real, f: sf})
	}
	return l, nil
}

// openBeneath opens name relative to the root with openat2(2)
// RESOLVE_BENEATH: the kernel refuses (EXDEV) any resolution, through ".."
// or a symlink, that would leave the root, with no window between a check
// and the open.
func (l *Local) openBeneath(name string) (*os.File, error) {
	rel := strings.TrimPrefix(name, "/")
	if rel == "" {
		rel = "."
	}
	f, err := openBeneathDir(l.root, l.Root, rel)
	if errors.Is(err, unix.EXDEV) && len(l.safe) > 0 {
		return l.openSafe(rel)
	}
	return f, err
}

// openSafe allows a symlink out of the root when its target lies under a
// static-safe folder. Where the symlink leads now only chooses the folder;
// the open itself is one openat2(2) RESOLVE_BENEATH from that folder's
// descriptor, so a component swapped for a symlink between the two (a
// tenant who can write in the folder) can only land beneath the folder
// again, never outside it (issue 9 §2). O_NONBLOCK: opening a FIFO never
// waits for a writer; the caller refuses anything but a regular file or a
// directory after fstat of the descriptor.
func (l *Local) openSafe(rel string) (*os.File, error) {
	full := filepath.Join(l.Root, rel)
	target, err := filepath.EvalSymlinks(full)
	// EINVAL: a component changed from a symlink to something else while
	// it was read (readlink of a directory); look again, and at the end
	// give up as for a symlink out of the folder.
	for i := 0; errors.Is(err, syscall.EINVAL) && i < maxBeneathRetries; i++ {
		target, err = filepath.EvalSymlinks(full)
	}
	if errors.Is(err, syscall.EINVAL) {
		return nil, &fs.PathError{Op: "open", Path: full, Err: syscall.EXDEV}
	}
	if err != nil {
		return nil, err
	}
	for _, s := range l.safe {
		var sub string
		switch {
		case target == s.path:
			sub = "."
		case s.path == "/":
			sub = strings.TrimPrefix(target, "/")
		case strings.HasPrefix(target, s.path+"/"):
			sub = target[len(s.path)+1:]
		default:
			continue
		}
		return openBeneathDir(s.f, s.path, sub)
	}
	return nil, &fs.PathError{Op: "open", Path: full, Err: syscall.EXDEV}
}

const maxBeneathRetries = 64

// openBeneathDir opens rel beneath dir in one kernel step: openat2(2)
// with RESOLVE_BENEATH fails with EXDEV for any "..", absolute symlink or
// symlink leading out of dir, wherever in the path it is met.
func openBeneathDir(dir *os.File, dirPath, rel string) (*os.File, error) {
	how := &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NONBLOCK,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
	}
	fd, err := unix.Openat2(int(dir.Fd()), rel, how)
	// EAGAIN: a rename elsewhere on the filesystem ran during the lookup,
	// and the kernel could not prove it stayed beneath dir; it asks for a
	// retry (openat2(2)). A few, then the request fails.
	for i := 0; err == unix.EAGAIN && i < maxBeneathRetries; i++ {
		fd, err = unix.Openat2(int(dir.Fd()), rel, how)
	}
	if err != nil {
		return nil, &fs.PathError{Op: "openat2", Path: filepath.Join(dirPath, rel), Err: err}
	}
	return os.NewFile(uintptr(fd), filepath.Join(dirPath, rel)), nil
}

func infoOf(st os.FileInfo) Info {
	i := Info{Size: st.Size(), ModTime: st.ModTime(), IsDir: st.IsDir(), Regular: st.Mode().IsRegular()}
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		i.Ino, i.Dev = s.Ino, uint64(s.Dev)
	}
	return i
}

// Stat implements Backend.
func (l *Local) Stat(_ context.Context, name string) (Info, error) {
	f, err := l.openBeneath(name)
	if err != nil {
		return Info{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Info{}, err
	}
	return infoOf(st), nil
}

// localFile is an open local file. Its *os.File lets net/http use
// sendfile(2). A local read waits on nothing a context could stop.
type localFile struct{ f *os.File }

func (l localFile) ReadAt(_ context.Context, p []byte, off int64) (int, error) {
	return l.f.ReadAt(p, off)
}

func (l localFile) Close() error { return l.f.Close() }

// Open implements Backend.
func (l *Local) Open(_ context.Context, name string) (File, Info, error) {
	f, err := l.openBeneath(name)
	if err != nil {
		return nil, Info{}, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, Info{}, err
	}
	return localFile{f}, infoOf(st), nil
}

// ReadDir implements Backend.
func (l *Local) ReadDir(_ context.Context, name string) ([]DirEntry, error) {
	f, err := l.openBeneath(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ents, err := f.ReadDir(maxListing)
	if err != nil && err != io.EOF && len(ents) == 0 {
		return nil, err
	}
	out := make([]DirEntry, 0, len(ents))
	for _, e := range ents {
		st, err := e.Info()
		if err != nil {
			continue
		}
		out = append(out, DirEntry{Name: e.Name(), Info: infoOf(st)})
	}
	return out, nil
}

// Close releases the root and the static-safe folders.
func (l *Local) Close() error {
	for _, s := range l.safe {
		s.f.Close()
	}
	return l.root.Close()
}
