package fileserver

import (
	"context"
	"io/fs"
	"path"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/emperor-dev/emperor/gfapi"
)

// Creds are the vassal's credentials. libgfapi does not apply them: its
// requests carry no caller identity the bricks check (a root-only file is
// readable through it by any process), so the gluster backend checks the
// mode bits itself, as the kernel does for a FUSE mount of the volume with
// default_permissions: read on the file (and on a listed directory), search
// on every directory above it.
type Creds struct {
	UID    uint32
	GID    uint32
	Groups []uint32
}

const (
	permRead   = 4
	permSearch = 1
)

// may says whether c may use st with the given permission bit.
func (c Creds) may(st gfapi.Stat, bit uint32) bool {
	if c.UID == 0 {
		// root: CAP_DAC_OVERRIDE, except search on a directory needs one x
		// bit somewhere, and read needs nothing.
		return bit != permSearch || st.Mode&0o111 != 0
	}
	var shift uint32
	switch {
	case st.UID == c.UID:
		shift = 6
	case st.GID == c.GID || slices.Contains(c.Groups, st.GID):
		shift = 3
	}
	return (st.Mode>>shift)&bit != 0
}

// dirPerms memoizes the search check of ancestor directories for a second,
// so a request does not pay one stat per path component.
type dirPerms struct {
	mu sync.Mutex
	m  map[string]dirPerm
}

type dirPerm struct {
	ok     bool
	notDir bool // exists and is not a directory
	at     time.Time
}

const dirPermTTL = time.Second

// checkAncestors verifies search permission on every directory above name.
func (g *Gluster) checkAncestors(ctx context.Context, name string) error {
	var dirs []string
	for d := path.Dir(name); ; d = path.Dir(d) {
		dirs = append(dirs, d)
		if d == "/" {
			break
		}
	}
	now := time.Now()
	for i := len(dirs) - 1; i >= 0; i-- {
		d := dirs[i]
		g.perms.mu.Lock()
		p, ok := g.perms.m[d]
		g.perms.mu.Unlock()
		if !ok || now.Sub(p.at) > dirPermTTL {
			st, err := call(g, ctx, func(v *gfapi.Volume) (gfapi.Stat, error) { return v.Stat(d) }, nil)
			if err != nil {
				return err
			}
			p = dirPerm{ok: st.IsDir() && g.creds.may(st, permSearch), notDir: !st.IsDir(), at: now}
			g.perms.mu.Lock()
			if len(g.perms.m) > 10000 {
				clear(g.perms.m)
			}
			g.perms.m[d] = p
			g.perms.mu.Unlock()
		}
		if p.notDir {
			// A file used as a directory: ENOTDIR, as a lookup through the
			// kernel (and the local backend) gives, so a 404, not a 403.
			return &fs.PathError{Op: "search", Path: d, Err: syscall.ENOTDIR}
		}
		if !p.ok {
			return &fs.PathError{Op: "search", Path: d, Err: fs.ErrPermission}
		}
	}
	return nil
}
