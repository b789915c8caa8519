// Package cloexec marks descriptors close-on-exec, so that nothing a process
// holds reaches what it executes unless it is passed on purpose (Go's
// ProcAttr.Files clears the flag on the descriptors it hands over).
package cloexec

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// AboveStderr marks every descriptor above 2 close-on-exec. The kernel
// passes every descriptor without FD_CLOEXEC across execve, and Go opens
// its own with O_CLOEXEC, but two kinds escape that discipline:
//   - descriptors inherited from whatever started us (a shell's
//     redirection, a service manager, a leaky parent), which would reach
//     every vassal's PID 1, hook and daemon across the privilege drop: the
//     emperor and vassal-init call it first thing;
//   - descriptors that C code opens in-process (libgfapi's sockets to
//     glusterd and the bricks, its log stream), which would reach every
//     daemon a vassal starts after its volumes connected: the vassal's
//     reaper calls it before each fork.
//
// close_range(CLOSE_RANGE_CLOEXEC) does it in one call on Linux 5.11 and
// later; older kernels get a walk of /proc/self/fd.
func AboveStderr() error {
	err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("close_range(3, ~0, CLOSE_RANGE_CLOEXEC): %w", err)
	}
	return byProc()
}

// byProc is the fallback for kernels without CLOSE_RANGE_CLOEXEC:
// FD_CLOEXEC on every descriptor above 2 that /proc/self/fd lists. The
// directory's own descriptor is listed too; it is opened close-on-exec and
// closed at once, so the F_SETFD on it fails harmlessly (EBADF) or is a
// no-op.
func byProc() error {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("close_range(CLOSE_RANGE_CLOEXEC) is not supported and /proc/self/fd cannot be read: %w", err)
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd <= 2 {
			continue
		}
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil && !errors.Is(err, unix.EBADF) {
			return fmt.Errorf("fcntl(%d, F_SETFD, FD_CLOEXEC): %w", fd, err)
		}
	}
	return nil
}
