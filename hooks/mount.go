package hooks

import (
	"fmt"
	"sort"
	"strings"

	"github.com/emperor-dev/emperor/spell"
	"golang.org/x/sys/unix"
)

// uWSGI's mount flag names (core/mount.c), plus slave, unbindable,
// relatime, nodiratime and strictatime, which uWSGI lacks.
var mountFlags = map[string]uintptr{
	"bind": unix.MS_BIND, "dirsync": unix.MS_DIRSYNC, "mandlock": unix.MS_MANDLOCK,
	"move": unix.MS_MOVE, "noatime": unix.MS_NOATIME, "nodev": unix.MS_NODEV,
	"noexec": unix.MS_NOEXEC, "rdonly": unix.MS_RDONLY, "readonly": unix.MS_RDONLY,
	"ro": unix.MS_RDONLY, "remount": unix.MS_REMOUNT, "nosuid": unix.MS_NOSUID,
	"sync": unix.MS_SYNCHRONOUS, "rec": unix.MS_REC, "recursive": unix.MS_REC,
	"private": unix.MS_PRIVATE, "shared": unix.MS_SHARED, "slave": unix.MS_SLAVE,
	"unbindable": unix.MS_UNBINDABLE, "relatime": unix.MS_RELATIME,
	"nodiratime": unix.MS_NODIRATIME, "strictatime": unix.MS_STRICTATIME,
}

// umount flags: force and detach are umount2(2) flags; rec (recursive)
// means "every mount below the target first", as in uWSGI.
var umountFlags = map[string]int{
	"force": unix.MNT_FORCE, "detach": unix.MNT_DETACH, "lazy": unix.MNT_DETACH,
	"expire": unix.MNT_EXPIRE, "nofollow": unix.UMOUNT_NOFOLLOW,
	"rec": 0, "recursive": 0,
}

type mountSpec struct {
	fstype, source, target string
	flags                  uintptr
	data                   string
}

// umountSpec: with rec, every mount below the target goes first, deepest
// first. A lazy (detach) unmount of the old root after pivot_root is what
// cuts a vassal off from the host's filesystem.
type umountSpec struct {
	target string
	flags  int
	rec    bool
}

func splitFlags(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '|' })
}

func parseMountHook(h *Hook) error {
	f := fieldsN(h.Args, 5)
	if len(f) < 3 {
		return fmt.Errorf("wants FSTYPE SOURCE TARGET [FLAGS [DATA]], got %q", h.Args)
	}
	m := &mountSpec{fstype: f[0], source: f[1], target: f[2]}
	if m.fstype == "none" {
		m.fstype = ""
	}
	if len(f) >= 4 {
		for _, name := range splitFlags(f[3]) {
			v, ok := mountFlags[name]
			if !ok {
				return unknownFlag("mount", name, mountFlags)
			}
			m.flags |= v
		}
	}
	if len(f) == 5 {
		// The rest of the line, spaces included, as uWSGI passes it.
		m.data = f[4]
	}
	h.mount = m
	return nil
}

// fieldsN splits s at runs of spaces into at most n fields; the last one
// is the rest of s.
func fieldsN(s string, n int) []string {
	var out []string
	s = strings.TrimSpace(s)
	for s != "" {
		if len(out) == n-1 {
			return append(out, s)
		}
		i := strings.IndexAny(s, " \t")
		if i < 0 {
			return append(out, s)
		}
		out = append(out, s[:i])
		s = strings.TrimLeft(s[i:], " \t")
	}
	return out
}

func parseUmountHook(h *Hook) error {
	f := strings.Fields(h.Args)
	if len(f) < 1 || len(f) > 2 {
		return fmt.Errorf("wants TARGET [FLAGS], got %q", h.Args)
	}
	u := &umountSpec{target: f[0]}
	if len(f) == 2 {
		for _, name := range splitFlags(f[1]) {
			v, ok := umountFlags[name]
			if !ok {
				return unknownFlag("umount", name, umountFlags)
			}
			if name == "rec" || name == "recursive" {
				u.rec = true
			}
			u.flags |= v
		}
	}
	h.umount = u
	return nil
}

func keys[V any](m map[string]V) string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// unknownFlag names a flag that is not in known, with the nearest one when
// it looks like a typo of it.
func unknownFlag[V any](kind, name string, known map[string]V) error {
	names := make([]string, 0, len(known))
	for k := range known {
		names = append(names, k)
	}
	if s := spell.Nearest(name, names, nil); s != "" {
		return fmt.Errorf("unknown %s flag %q (did you mean %s?)", kind, name, s)
	}
	return fmt.Errorf("unknown %s flag %q (known: %s)", kind, name, keys(known))
}
