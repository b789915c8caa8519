package fileserver

import (
	"context"
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
}

// NewLocal opens root.
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
	return &Local{Root: root, Safe: safe, root: f}, nil
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
	fd, err := unix.Openat2(int(l.root.Fd()), rel, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NONBLOCK,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err == unix.EXDEV && len(l.Safe) > 0 {
		return l.openSafe(rel)
	}
	if err != nil {
		return nil, &fs.PathError{Op: "openat2", Path: filepath.Join(l.Root, rel), Err: err}
	}
	return os.NewFile(uintptr(fd), filepath.Join(l.Root, rel)), nil
}

// openSafe allows a symlink out of the root when its target lies under a
// static-safe prefix.
func (l *Local) openSafe(rel string) (*os.File, error) {
	full := filepath.Join(l.Root, rel)
	target, err := filepath.EvalSymlinks(full)
	if err != nil {
		return nil, err
	}
	for _, s := range l.Safe {
		if target == s || strings.HasPrefix(target, strings.TrimSuffix(s, "/")+"/") {
			return os.Open(target)
		}
	}
	return nil, &fs.PathError{Op: "open", Path: full, Err: syscall.EXDEV}
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

// Close releases the root.
func (l *Local) Close() error { return l.root.Close() }
