// Package fileserver serves files over HTTP (RFC 9110: GET/HEAD, ranges,
// conditional requests, directories) from mounts chosen by the longest URL
// prefix. A mount's backend is a local folder (static-map) or a GlusterFS
// volume read through libgfapi (glusterfs-mount).
package fileserver

import (
	"context"
	"errors"
	"time"
)

// Info is what the server needs to know of a file.
type Info struct {
	Size    int64
	ModTime time.Time
	Ino     uint64
	Dev     uint64
	IsDir   bool
	Regular bool
}

// same reports whether two stats describe the same unchanged file: the
// cache's revalidation rule (mtime, size, inode).
func (i Info) same(o Info) bool {
	return i.Size == o.Size && i.ModTime.Equal(o.ModTime) && i.Ino == o.Ino && i.Dev == o.Dev && i.IsDir == o.IsDir
}

// File is an open file: positional reads only. Each read carries the
// request's context: a backend that has to wait for an answer (a volume
// busy, reconnecting, or with a brick that stopped answering) stops waiting
// when the client has gone away. A blocking call already in the kernel or
// in libgfapi is not interrupted; its result is dropped when it returns.
type File interface {
	ReadAt(ctx context.Context, p []byte, off int64) (int, error)
	Close() error
}

// DirEntry is one listing entry.
type DirEntry struct {
	Name string
	Info Info
}

// Backend reads one mount. Names are cleaned, absolute within the mount
// ("/", "/a/b.txt"). Errors wrap fs.ErrNotExist, fs.ErrPermission,
// syscall errnos, or ErrUnavailable.
type Backend interface {
	Stat(ctx context.Context, name string) (Info, error)
	Open(ctx context.Context, name string) (File, Info, error)
	ReadDir(ctx context.Context, name string) ([]DirEntry, error)
}

// ErrUnavailable means the backend cannot answer now (a volume still
// connecting, bricks down, a call past glusterfs-timeout): 503.
var ErrUnavailable = errors.New("backend unavailable")
