// Package mount is the emperor's one wrapper of mount(2) and umount2(2):
// one function per kernel operation, each failing with an *Error that
// names the operation, the paths, the filesystem type and the decoded
// flags ("MS_BIND|MS_REC"). Hooks (mount:, umount:) and the vassal's own
// namespace setup both go through it.
package mount

import (
	"fmt"
	"sort"
	"strings"

	"github.com/emperor-dev/emperor/mountinfo"
	"golang.org/x/sys/unix"
)

// Error is a failed mount(2) or umount2(2).
type Error struct {
	Op     string // "mount", "bind", "make-rslave", "make-rprivate", "umount"
	Source string
	Target string
	FSType string
	Flags  string // decoded: "MS_BIND|MS_REC", "MNT_DETACH"
	Err    error
}

func (e *Error) Error() string {
	switch {
	case e.Op == "umount":
		return fmt.Sprintf("umount %s (flags %s): %v", e.Target, e.Flags, e.Err)
	case e.Source == "":
		return fmt.Sprintf("%s %s (flags %s): %v", e.Op, e.Target, e.Flags, e.Err)
	}
	return fmt.Sprintf("%s %s on %s (type %q, flags %s): %v", e.Op, e.Source, e.Target, e.FSType, e.Flags, e.Err)
}
func (e *Error) Unwrap() error { return e.Err }

// Mount is mount(2) as given: a new mount of fstype from source (or, with
// MS_BIND, MS_REMOUNT, MS_MOVE or a propagation flag, the operation those
// flags select). data is the filesystem's own option string.
func Mount(source, target, fstype string, flags uintptr, data string) error {
	if err := unix.Mount(source, target, fstype, flags, data); err != nil {
		return &Error{Op: "mount", Source: source, Target: target, FSType: fstype, Flags: MountFlags(flags), Err: err}
	}
	return nil
}

// Bind makes the tree at source visible at target too (MS_BIND|MS_REC):
// the kernel attaches the same mount (with the mounts below it) a second
// time, without a filesystem type or options of its own. Binding a
// directory onto itself turns it into a mount point, which pivot_root(2)
// demands of its new root.
func Bind(source, target string) error {
	const flags = unix.MS_BIND | unix.MS_REC
	if err := unix.Mount(source, target, "", flags, ""); err != nil {
		return &Error{Op: "bind", Source: source, Target: target, Flags: MountFlags(flags), Err: err}
	}
	return nil
}

// MakeRSlave makes target and every mount below it a slave of its peer
// group (MS_SLAVE|MS_REC): mounts and unmounts of the peers still reach it,
// but nothing made under it propagates back. CLONE_NEWNS copies the
// propagation types with the mount table, so a new namespace on a host
// whose "/" is shared (systemd) would otherwise leak its mounts back.
func MakeRSlave(target string) error {
	const flags = unix.MS_SLAVE | unix.MS_REC
	if err := unix.Mount("", target, "", flags, ""); err != nil {
		return &Error{Op: "make-rslave", Target: target, Flags: MountFlags(flags), Err: err}
	}
	return nil
}

// MakeRPrivate cuts target and every mount below it from any peer group
// (MS_PRIVATE|MS_REC): no propagation in either direction. pivot_root(2)
// refuses (EINVAL) a shared current root or new root parent.
func MakeRPrivate(target string) error {
	const flags = unix.MS_PRIVATE | unix.MS_REC
	if err := unix.Mount("", target, "", flags, ""); err != nil {
		return &Error{Op: "make-rprivate", Target: target, Flags: MountFlags(flags), Err: err}
	}
	return nil
}

// Unmount is umount2(2) of target alone. The kernel refuses (EBUSY) a
// mount with open files or mounts below it unless MNT_DETACH takes it out
// of the tree now and frees it when its last user goes.
func Unmount(target string, flags int) error {
	if err := unix.Unmount(target, flags); err != nil {
		return &Error{Op: "umount", Target: target, Flags: UnmountFlags(flags), Err: err}
	}
	return nil
}

// UnmountTree unmounts every mount strictly below target, deepest first,
// then target itself: umount2(2) works on one mount at a time, and a mount
// with mounts below it is busy. A mount already gone with a parent's
// detach (EINVAL: no longer a mount point; ENOENT) is skipped.
func UnmountTree(target string, flags int) error {
	below, err := mountsBelow(target)
	if err != nil {
		return &Error{Op: "umount", Target: target, Flags: UnmountFlags(flags), Err: err}
	}
	for _, t := range below {
		if err := unix.Unmount(t, flags); err != nil && err != unix.EINVAL && err != unix.ENOENT {
			return &Error{Op: "umount", Target: t, Flags: UnmountFlags(flags), Err: err}
		}
	}
	return Unmount(target, flags)
}

// mountsBelow lists the mount points strictly under dir, deepest first.
func mountsBelow(dir string) ([]string, error) {
	pts, err := mountinfo.Points()
	if err != nil {
		return nil, err
	}
	prefix := strings.TrimSuffix(dir, "/") + "/"
	var out []string
	for _, mp := range pts {
		if strings.HasPrefix(mp, prefix) {
			out = append(out, mp)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out, nil
}

type flagName struct {
	bit  uintptr
	name string
}

// msFlags are mount(2)'s flags in bit order.
var msFlags = []flagName{
	{unix.MS_RDONLY, "MS_RDONLY"}, {unix.MS_NOSUID, "MS_NOSUID"}, {unix.MS_NODEV, "MS_NODEV"},
	{unix.MS_NOEXEC, "MS_NOEXEC"}, {unix.MS_SYNCHRONOUS, "MS_SYNCHRONOUS"}, {unix.MS_REMOUNT, "MS_REMOUNT"},
	{unix.MS_MANDLOCK, "MS_MANDLOCK"}, {unix.MS_DIRSYNC, "MS_DIRSYNC"}, {unix.MS_NOSYMFOLLOW, "MS_NOSYMFOLLOW"},
	{unix.MS_NOATIME, "MS_NOATIME"}, {unix.MS_NODIRATIME, "MS_NODIRATIME"}, {unix.MS_BIND, "MS_BIND"},
	{unix.MS_MOVE, "MS_MOVE"}, {unix.MS_REC, "MS_REC"}, {unix.MS_SILENT, "MS_SILENT"},
	{unix.MS_POSIXACL, "MS_POSIXACL"}, {unix.MS_UNBINDABLE, "MS_UNBINDABLE"}, {unix.MS_PRIVATE, "MS_PRIVATE"},
	{unix.MS_SLAVE, "MS_SLAVE"}, {unix.MS_SHARED, "MS_SHARED"}, {unix.MS_RELATIME, "MS_RELATIME"},
	{unix.MS_KERNMOUNT, "MS_KERNMOUNT"}, {unix.MS_I_VERSION, "MS_I_VERSION"}, {unix.MS_STRICTATIME, "MS_STRICTATIME"},
	{unix.MS_LAZYTIME, "MS_LAZYTIME"},
}

// umount2(2)'s flags.
var mntFlags = []flagName{
	{unix.MNT_FORCE, "MNT_FORCE"}, {unix.MNT_DETACH, "MNT_DETACH"}, {unix.MNT_EXPIRE, "MNT_EXPIRE"},
	{unix.UMOUNT_NOFOLLOW, "UMOUNT_NOFOLLOW"},
}

// MountFlags decodes mount(2) flags: "MS_BIND|MS_REC", "0" for none, and
// any bit without a name in hex.
func MountFlags(flags uintptr) string { return decode(flags, msFlags) }

// UnmountFlags decodes umount2(2) flags: "MNT_DETACH", "0" for none.
func UnmountFlags(flags int) string { return decode(uintptr(flags), mntFlags) }

func decode(flags uintptr, names []flagName) string {
	if flags == 0 {
		return "0"
	}
	var out []string
	for _, f := range names {
		if flags&f.bit != 0 {
			out = append(out, f.name)
			flags &^= f.bit
		}
	}
	if flags != 0 {
		out = append(out, fmt.Sprintf("%#x", flags))
	}
	return strings.Join(out, "|")
}
