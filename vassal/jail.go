package vassal

import (
	"fmt"
	"os"
	"syscall"

	"github.com/emperor-dev/emperor/mount"
	"github.com/emperor-dev/emperor/mountinfo"
	"github.com/emperor-dev/emperor/reexec"
	"golang.org/x/sys/unix"
)

// JailError is a failed chroot or pivot_root, with the paths involved.
type JailError struct {
	Op   string
	Path string
	Err  error
}

func (e *JailError) Error() string { return fmt.Sprintf("%s %s: %v", e.Op, e.Path, e.Err) }
func (e *JailError) Unwrap() error { return e.Err }

// makeRootPrivate stops all propagation between our mounts and any peer.
// pivot_root(2) refuses (EINVAL) when the current root or the new root's
// parent mount is shared, and a private tree also guarantees that
// detaching the old root below cannot reach a peer group.
func makeRootPrivate() error { return mount.MakeRPrivate("/") }

// ensureMountPoint makes dir a mount point by binding it onto itself:
// pivot_root(2) requires new_root to be a mount point (EINVAL otherwise),
// and a self-bind changes nothing of what the directory shows.
func ensureMountPoint(dir string) error {
	ok, err := mountinfo.IsMountPoint(dir)
	if err != nil {
		return &JailError{Op: "read mountinfo for", Path: dir, Err: err}
	}
	if ok {
		return nil
	}
	return mount.Bind(dir, dir)
}

func requireDir(op, path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return &JailError{Op: op, Path: path, Err: err}
	}
	if !st.IsDir() {
		return &JailError{Op: op, Path: path, Err: syscall.ENOTDIR}
	}
	return nil
}

// pivotRoot makes newRoot the root of this mount namespace and leaves the
// old root mounted at putOld (a path under newRoot), to be detached by an
// as-root hook once /proc and /dev are mounted from it.
func pivotRoot(newRoot, putOld string) error {
	if err := requireDir("pivot_root: new root", newRoot); err != nil {
		return err
	}
	if err := makeRootPrivate(); err != nil {
		return err
	}
	if err := ensureMountPoint(newRoot); err != nil {
		return err
	}
	if err := os.MkdirAll(putOld, 0o700); err != nil {
		return &JailError{Op: "pivot_root: create put_old", Path: putOld, Err: err}
	}
	if err := unix.PivotRoot(newRoot, putOld); err != nil {
		return &JailError{Op: "pivot_root", Path: newRoot + " " + putOld, Err: err}
	}
	// Our cwd still points into the old root; a relative path would escape.
	if err := os.Chdir("/"); err != nil {
		return &JailError{Op: "chdir after pivot_root", Path: "/", Err: err}
	}
	return nil
}

// chrootTo changes the root directory of PID 1 and its future children.
func chrootTo(dir string) error {
	if err := requireDir("chroot", dir); err != nil {
		return err
	}
	if err := unix.Chroot(dir); err != nil {
		return &JailError{Op: "chroot", Path: dir, Err: err}
	}
	if err := os.Chdir("/"); err != nil {
		return &JailError{Op: "chdir after chroot", Path: "/", Err: err}
	}
	return nil
}

// jail is the chroot or pivot_root component. It runs once, on the first
// start: a change of either needs a full restart (RestartReason), and a
// jail is not undone (the kernel drops the mount namespace with PID 1).
type jail struct{ v *vassal }

func (j *jail) Start(c *config) error {
	s := c.spec
	if s.PivotNew == "" && s.Chroot == "" {
		return nil
	}
	if !j.v.ns.Has(reexec.NSMount) {
		return fmt.Errorf("pivot_root/chroot need the vassal's own mount namespace (emperor-use-clone or unshare with fs): refusing to change the host's root")
	}
	if s.PivotNew != "" {
		return pivotRoot(s.PivotNew, s.PivotOld)
	}
	return chrootTo(s.Chroot)
}

func (j *jail) Apply(old, new *config) error { return nil }
func (j *jail) Stop()                        {}
