//go:build !nogluster && cgo

// Package gfapi is a small cgo binding of GlusterFS's libgfapi: the calls a
// file server needs (connect, stat, open, positional read, readdir), with no
// FUSE or NFS in between.
//
// Rules this binding keeps, each a bug seen elsewhere:
//   - success is decided from the C return value; errno is read only on
//     failure;
//   - struct stat is copied field by field, never cast;
//   - reads are positional (glfs_pread), so concurrent readers of one fd
//     cannot race on a shared offset;
//   - glfs_fini waits for every in-flight call (a read-write lock), and no
//     call starts after it;
//   - a glfs_t whose glfs_init failed is never initialized again: callers
//     make a fresh one.
package gfapi

/*
#cgo CFLAGS: -D_FILE_OFFSET_BITS=64 -D__USE_FILE_OFFSET64 -D__USE_LARGEFILE64 -I/usr/include/uuid
#cgo LDFLAGS: -ldl
#define _GNU_SOURCE
#include <stdlib.h>
#include <stdio.h>
#include <unistd.h>
#include <fcntl.h>
#include <errno.h>
#include <dlfcn.h>
#include <sys/stat.h>
#include <dirent.h>
#include <glusterfs/api/glfs.h>

// libgfapi is loaded with dlopen on first use, not linked: linking it makes
// the dynamic loader map and relocate libgfapi and libglusterfs (and run
// their constructors) in every vassal's PID 1, gluster or not, which
// doubled the start time and memory of a plain vassal.
// RTLD_GLOBAL: the translators libgfapi dlopens itself resolve symbols of
// libglusterfs from the global scope.
static void *gf_lib;
static __typeof__(&glfs_new) p_new;
static __typeof__(&glfs_set_volfile_server) p_set_volfile_server;
static __typeof__(&glfs_set_volfile) p_set_volfile;
static __typeof__(&glfs_set_logging) p_set_logging;
static __typeof__(&glfs_init) p_init;
static __typeof__(&glfs_fini) p_fini;
static __typeof__(&glfs_open) p_open;
static __typeof__(&glfs_close) p_close;
static __typeof__(&glfs_pread) p_pread;
static __typeof__(&glfs_stat) p_stat;
static __typeof__(&glfs_fstat) p_fstat;
static __typeof__(&glfs_opendir) p_opendir;
static __typeof__(&glfs_readdirplus) p_readdirplus;
static __typeof__(&glfs_closedir) p_closedir;

// sym resolves a symbol at the version the header declares, so a newer
// library's incompatible default cannot slip in.
static void *sym(const char *name, const char *version, const char **missing) {
	void *p = dlvsym(gf_lib, name, version);
	if (!p && !*missing) *missing = name;
	return p;
}

// gf_load returns NULL on success, else a static error string.
static const char *gf_load(void) {
	if (gf_lib) return NULL;
	void *lib = dlopen("libgfapi.so.0", RTLD_NOW | RTLD_GLOBAL);
	if (!lib) return dlerror();
	gf_lib = lib;
	const char *missing = NULL;
	p_new = sym("glfs_new", "GFAPI_3.4.0", &missing);
	p_set_volfile_server = sym("glfs_set_volfile_server", "GFAPI_3.4.0", &missing);
	p_set_volfile = sym("glfs_set_volfile", "GFAPI_3.4.0", &missing);
	p_set_logging = sym("glfs_set_logging", "GFAPI_3.4.0", &missing);
	p_init = sym("glfs_init", "GFAPI_3.4.0", &missing);
	p_fini = sym("glfs_fini", "GFAPI_3.4.0", &missing);
	p_open = sym("glfs_open", "GFAPI_3.4.0", &missing);
	p_close = sym("glfs_close", "GFAPI_3.4.0", &missing);
	p_pread = sym("glfs_pread", "GFAPI_6.0", &missing);
	p_stat = sym("glfs_stat", "GFAPI_3.4.0", &missing);
	p_fstat = sym("glfs_fstat", "GFAPI_3.4.0", &missing);
	p_opendir = sym("glfs_opendir", "GFAPI_3.4.0", &missing);
	p_readdirplus = sym("glfs_readdirplus", "GFAPI_3.5.0", &missing);
	p_closedir = sym("glfs_closedir", "GFAPI_3.4.0", &missing);
	if (missing) { gf_lib = NULL; return missing; }
	return NULL;
}

static glfs_t *c_new(const char *v) { return p_new(v); }
static int c_set_volfile_server(glfs_t *fs, const char *t, const char *h, int p) { return p_set_volfile_server(fs, t, h, p); }
static int c_set_volfile(glfs_t *fs, const char *f) { return p_set_volfile(fs, f); }
// c_set_logging_fd points libgfapi's log at fd. libgfapi logs either to a
// path it opens itself or, given "-", to a dup of its stderr taken during
// the call; so fd stands in for fd 2 for the length of the call only, and
// the real stderr is put back at once. Anything another thread writes to
// stderr in that window lands in fd too. Returns -1 with errno set.
static int c_set_logging_fd(glfs_t *fs, int fd, int level) {
	int saved = fcntl(2, F_DUPFD_CLOEXEC, 3);
	if (saved < 0) return -1;
	fflush(stderr);
	if (dup2(fd, 2) < 0) { int e = errno; close(saved); errno = e; return -1; }
	int r = p_set_logging(fs, "-", level);
	int e = errno;
	dup2(saved, 2);
	close(saved);
	errno = e;
	return r;
}
static int c_init(glfs_t *fs) { return p_init(fs); }
static int c_fini(glfs_t *fs) { return p_fini(fs); }
static glfs_fd_t *c_open(glfs_t *fs, const char *path, int flags) { return p_open(fs, path, flags); }
static int c_close(glfs_fd_t *fd) { return p_close(fd); }
static ssize_t c_pread(glfs_fd_t *fd, void *buf, size_t n, off_t off) { return p_pread(fd, buf, n, off, 0, NULL); }
static int c_stat(glfs_t *fs, const char *path, struct stat *st) { return p_stat(fs, path, st); }
static int c_fstat(glfs_fd_t *fd, struct stat *st) { return p_fstat(fd, st); }
static glfs_fd_t *c_opendir(glfs_t *fs, const char *path) { return p_opendir(fs, path); }
static struct dirent *c_readdirplus(glfs_fd_t *fd, struct stat *st) { return p_readdirplus(fd, st); }
static int c_closedir(glfs_fd_t *fd) { return p_closedir(fd); }

static long long st_mtime_sec(struct stat *st) { return (long long)st->st_mtim.tv_sec; }
static long long st_mtime_nsec(struct stat *st) { return (long long)st->st_mtim.tv_nsec; }
*/
import "C"

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// Available is true when the binary was built with libgfapi.
const Available = true

// ErrClosed is returned by calls on a volume after Fini.
var ErrClosed = errors.New("gfapi: volume is closed")

// Error is a failed libgfapi call.
type Error struct {
	Op     string
	Volume string
	Path   string
	Err    error // a syscall.Errno
}

func (e *Error) Error() string {
	if e.Path != "" {
		return fmt.Sprintf("gfapi %s %s:%s: %v", e.Op, e.Volume, e.Path, e.Err)
	}
	return fmt.Sprintf("gfapi %s %s: %v", e.Op, e.Volume, e.Err)
}
func (e *Error) Unwrap() error { return e.Err }

// errnoOr returns the C errno, or EIO when the library failed without
// setting one.
func errnoOr(err error) error {
	var en syscall.Errno
	if errors.As(err, &en) && en != 0 {
		return en
	}
	return syscall.EIO
}

// Stat is a copy of struct stat.
type Stat struct {
	Dev     uint64
	Ino     uint64
	Mode    uint32
	Nlink   uint64
	UID     uint32
	GID     uint32
	Size    int64
	ModTime time.Time
}

// IsDir says whether the entry is a directory.
func (s Stat) IsDir() bool { return s.Mode&syscall.S_IFMT == syscall.S_IFDIR }

// IsRegular says whether the entry is a regular file.
func (s Stat) IsRegular() bool { return s.Mode&syscall.S_IFMT == syscall.S_IFREG }

// checkStat rejects a stat without a file type. libgfapi was seen to return
// success with an all-zero struct stat while a volume's bricks came back
// after all were down; such an answer says nothing, so it is an EIO.
func checkStat(s Stat, op, vol, path string) (Stat, error) {
	if s.Mode&syscall.S_IFMT == 0 {
		return Stat{}, &Error{Op: op, Volume: vol, Path: path, Err: syscall.EIO}
	}
	return s, nil
}

func copyStat(st *C.struct_stat) Stat {
	return Stat{
		Dev:     uint64(st.st_dev),
		Ino:     uint64(st.st_ino),
		Mode:    uint32(st.st_mode),
		Nlink:   uint64(st.st_nlink),
		UID:     uint32(st.st_uid),
		GID:     uint32(st.st_gid),
		Size:    int64(st.st_size),
		ModTime: time.Unix(int64(C.st_mtime_sec(st)), int64(C.st_mtime_nsec(st))),
	}
}

// Volume is one glfs_t.
type Volume struct {
	name string
	fs   *C.glfs_t
	// life is held shared by every call and exclusively by Fini, so
	// glfs_fini never runs while a call is in flight.
	life   sync.RWMutex
	closed bool
	inited bool
}

var (
	loadOnce sync.Once
	loadErr  error
)

// Load dlopens libgfapi.so.0 once; New calls it.
func Load() error {
	loadOnce.Do(func() {
		if msg := C.gf_load(); msg != nil {
			loadErr = fmt.Errorf("gfapi: cannot load libgfapi.so.0 (Debian package libgfapi0): %s", C.GoString(msg))
		}
	})
	return loadErr
}

// New makes a glfs_t for volume (glfs_new). It is not connected yet.
func New(volume string) (*Volume, error) {
	if err := Load(); err != nil {
		return nil, err
	}
	cname := C.CString(volume)
	defer C.free(unsafe.Pointer(cname))
	fs, err := C.c_new(cname)
	if fs == nil {
		return nil, &Error{Op: "glfs_new", Volume: volume, Err: errnoOr(err)}
	}
	return &Volume{name: volume, fs: fs}, nil
}

// SetVolfileServer adds a volfile server. Called for every server before
// Init, libgfapi tries them in turn (uWSGI's plugin called it in a loop
// around glfs_init and so failed over the wrong way). transport is "tcp"
// (host and port) or "unix" (host is a socket path, port 0).
func (v *Volume) SetVolfileServer(transport, host string, port int) error {
	ct, ch := C.CString(transport), C.CString(host)
	defer C.free(unsafe.Pointer(ct))
	defer C.free(unsafe.Pointer(ch))
	if r, err := C.c_set_volfile_server(v.fs, ct, ch, C.int(port)); r != 0 {
		return &Error{Op: "glfs_set_volfile_server", Volume: v.name, Path: fmt.Sprintf("%s:%s:%d", transport, host, port), Err: errnoOr(err)}
	}
	return nil
}

// SetVolfile uses a local volfile instead of a server.
func (v *Volume) SetVolfile(path string) error {
	cp := C.CString(path)
	defer C.free(unsafe.Pointer(cp))
	if r, err := C.c_set_volfile(v.fs, cp); r != 0 {
		return &Error{Op: "glfs_set_volfile", Volume: v.name, Path: path, Err: errnoOr(err)}
	}
	return nil
}

// logMu serializes the moment in which c_set_logging_fd lends fd 2.
var logMu sync.Mutex

// SetLoggingFD sends libgfapi's own log to fd (a pipe's write end, say) at
// level (GF_LOG_ERROR = 4). libgfapi writes to a dup of fd, which it
// closes in Fini; the caller keeps fd and closes it when it likes. Unlike
// a path, nothing is opened, so it works after a privilege drop and in a
// jail without /proc. The writes block when fd's reader stops reading.
func (v *Volume) SetLoggingFD(fd int, level int) error {
	logMu.Lock()
	defer logMu.Unlock()
	if r, err := C.c_set_logging_fd(v.fs, C.int(fd), C.int(level)); r != 0 {
		return &Error{Op: "glfs_set_logging", Volume: v.name, Path: fmt.Sprintf("fd %d", fd), Err: errnoOr(err)}
	}
	return nil
}

// Init connects (glfs_init). It blocks until the volume graph is up or
// fails; run it off the request path.
func (v *Volume) Init() error {
	if r, err := C.c_init(v.fs); r != 0 {
		return &Error{Op: "glfs_init", Volume: v.name, Err: errnoOr(err)}
	}
	v.inited = true
	return nil
}

// Fini waits for in-flight calls, then frees the glfs_t. Later calls get
// ErrClosed.
func (v *Volume) Fini() error {
	v.life.Lock()
	defer v.life.Unlock()
	if v.closed {
		return nil
	}
	v.closed = true
	if r, err := C.c_fini(v.fs); r != 0 {
		return &Error{Op: "glfs_fini", Volume: v.name, Err: errnoOr(err)}
	}
	return nil
}

func (v *Volume) enter() error {
	v.life.RLock()
	if v.closed {
		v.life.RUnlock()
		return ErrClosed
	}
	return nil
}

func (v *Volume) leave() { v.life.RUnlock() }

// Stat is glfs_stat (follows symlinks).
func (v *Volume) Stat(path string) (Stat, error) {
	if err := v.enter(); err != nil {
		return Stat{}, err
	}
	defer v.leave()
	cp := C.CString(path)
	defer C.free(unsafe.Pointer(cp))
	var st C.struct_stat
	if r, err := C.c_stat(v.fs, cp, &st); r != 0 {
		return Stat{}, &Error{Op: "glfs_stat", Volume: v.name, Path: path, Err: errnoOr(err)}
	}
	return checkStat(copyStat(&st), "glfs_stat", v.name, path)
}

// File is an open glfs_fd_t.
type File struct {
	v    *Volume
	fd   *C.glfs_fd_t
	path string
	mu   sync.Mutex // guards fd against Close racing a read
}

// Open opens path read-only.
func (v *Volume) Open(path string) (*File, error) {
	if err := v.enter(); err != nil {
		return nil, err
	}
	defer v.leave()
	cp := C.CString(path)
	defer C.free(unsafe.Pointer(cp))
	fd, err := C.c_open(v.fs, cp, C.O_RDONLY)
	if fd == nil {
		return nil, &Error{Op: "glfs_open", Volume: v.name, Path: path, Err: errnoOr(err)}
	}
	return &File{v: v, fd: fd, path: path}, nil
}

// Stat is glfs_fstat.
func (f *File) Stat() (Stat, error) {
	if err := f.v.enter(); err != nil {
		return Stat{}, err
	}
	defer f.v.leave()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fd == nil {
		return Stat{}, fs.ErrClosed
	}
	var st C.struct_stat
	if r, err := C.c_fstat(f.fd, &st); r != 0 {
		return Stat{}, &Error{Op: "glfs_fstat", Volume: f.v.name, Path: f.path, Err: errnoOr(err)}
	}
	return checkStat(copyStat(&st), "glfs_fstat", f.v.name, f.path)
}

// ReadAt is glfs_pread: a positional read, safe for concurrent use.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if err := f.v.enter(); err != nil {
		return 0, err
	}
	defer f.v.leave()
	f.mu.Lock()
	fd := f.fd
	f.mu.Unlock()
	if fd == nil {
		return 0, fs.ErrClosed
	}
	total := 0
	for total < len(p) {
		n, err := C.c_pread(fd, unsafe.Pointer(&p[total]), C.size_t(len(p)-total), C.off_t(off+int64(total)))
		if n < 0 {
			return total, &Error{Op: "glfs_pread", Volume: f.v.name, Path: f.path, Err: errnoOr(err)}
		}
		if n == 0 {
			return total, io.EOF
		}
		total += int(n)
	}
	return total, nil
}

// Close is glfs_close.
func (f *File) Close() error {
	if err := f.v.enter(); err != nil {
		return err
	}
	defer f.v.leave()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fd == nil {
		return nil
	}
	fd := f.fd
	f.fd = nil
	if r, err := C.c_close(fd); r != 0 {
		return &Error{Op: "glfs_close", Volume: f.v.name, Path: f.path, Err: errnoOr(err)}
	}
	return nil
}

// DirEntry is one readdirplus result.
type DirEntry struct {
	Name string
	Stat Stat
}

// ReadDir lists a directory with glfs_readdirplus (name and stat in one
// call), without "." and "..".
func (v *Volume) ReadDir(path string, max int) ([]DirEntry, error) {
	if err := v.enter(); err != nil {
		return nil, err
	}
	defer v.leave()
	cp := C.CString(path)
	defer C.free(unsafe.Pointer(cp))
	dfd, err := C.c_opendir(v.fs, cp)
	if dfd == nil {
		return nil, &Error{Op: "glfs_opendir", Volume: v.name, Path: path, Err: errnoOr(err)}
	}
	defer C.c_closedir(dfd)
	var out []DirEntry
	for len(out) < max {
		var st C.struct_stat
		de := C.c_readdirplus(dfd, &st)
		if de == nil {
			break
		}
		name := C.GoString(&de.d_name[0])
		if name == "." || name == ".." {
			continue
		}
		out = append(out, DirEntry{Name: name, Stat: copyStat(&st)})
	}
	return out, nil
}
