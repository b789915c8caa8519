package mount

import (
	"errors"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestFlagNames(t *testing.T) {
	for _, c := range []struct {
		flags uintptr
		want  string
	}{
		{0, "0"},
		{unix.MS_BIND | unix.MS_REC, "MS_BIND|MS_REC"},
		{unix.MS_REC | unix.MS_SLAVE, "MS_REC|MS_SLAVE"},
		{unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "MS_NOSUID|MS_NODEV|MS_NOEXEC"},
		{unix.MS_RDONLY | 1<<40, "MS_RDONLY|0x10000000000"},
	} {
		if got := MountFlags(c.flags); got != c.want {
			t.Errorf("MountFlags(%#x) = %q, want %q", c.flags, got, c.want)
		}
	}
	if got := UnmountFlags(unix.MNT_DETACH | unix.MNT_FORCE); got != "MNT_FORCE|MNT_DETACH" {
		t.Errorf("UnmountFlags = %q", got)
	}
	if got := UnmountFlags(0); got != "0" {
		t.Errorf("UnmountFlags(0) = %q", got)
	}
}

// Each operation fails (no such path; or EPERM without root) with an
// *Error naming it, its paths and its decoded flags, and wrapping the errno.
func TestErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	for _, c := range []struct {
		err   error
		op    string
		flags string
		text  string
	}{
		{Mount("proc", missing, "proc", unix.MS_NOSUID|unix.MS_NODEV, ""), "mount", "MS_NOSUID|MS_NODEV", `mount proc on ` + missing + ` (type "proc", flags MS_NOSUID|MS_NODEV): `},
		{Bind(missing, missing), "bind", "MS_BIND|MS_REC", "bind " + missing + " on " + missing},
		{MakeRSlave(missing), "make-rslave", "MS_REC|MS_SLAVE", "make-rslave " + missing + " (flags MS_REC|MS_SLAVE): "},
		{MakeRPrivate(missing), "make-rprivate", "MS_REC|MS_PRIVATE", "make-rprivate " + missing},
		{Unmount(missing, unix.MNT_DETACH), "umount", "MNT_DETACH", "umount " + missing + " (flags MNT_DETACH): "},
		{UnmountTree(missing, unix.MNT_DETACH), "umount", "MNT_DETACH", "umount " + missing},
	} {
		var me *Error
		if !errors.As(c.err, &me) {
			t.Errorf("%v: not a *mount.Error", c.err)
			continue
		}
		if me.Op != c.op || me.Flags != c.flags || !strings.Contains(me.Error(), c.text) {
			t.Errorf("got %+v (%q), want op %s flags %s text %q", me, me.Error(), c.op, c.flags, c.text)
		}
		if !errors.Is(c.err, syscall.ENOENT) && !errors.Is(c.err, syscall.EPERM) && !errors.Is(c.err, syscall.EINVAL) {
			t.Errorf("%v: wraps neither ENOENT, EPERM nor EINVAL", c.err)
		}
	}
}
