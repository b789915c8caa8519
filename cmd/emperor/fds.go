package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// closeInheritedOnExec marks every descriptor above 2 close-on-exec. The
// kernel passes every descriptor without FD_CLOEXEC across execve, and Go's
// ForkExec closes only the ones it opened itself (all with O_CLOEXEC): a
// descriptor inherited from whatever started us (a shell's redirection, a
// service manager, a leaky parent) would otherwise reach every vassal's
// PID 1, hook and daemon, across the privilege drop. It runs first thing in
// the emperor and in vassal-init (whose fd 3, the control socket, is
// marked close-on-exec there anyway). close_range(CLOSE_RANGE_CLOEXEC) does
// it in one call on Linux 5.11 and later; older kernels get a walk of
// /proc/self/fd.
func closeInheritedOnExec() error {
	err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("close_range(3, ~0, CLOSE_RANGE_CLOEXEC): %w", err)
	}
	return cloexecByProc()
}

// cloexecByProc is the fallback for kernels without CLOSE_RANGE_CLOEXEC:
// FD_CLOEXEC on every descriptor above 2 that /proc/self/fd lists. The
// directory's own descriptor is listed too; it is opened close-on-exec and
// closed at once, so the F_SETFD on it fails harmlessly (EBADF) or is a
// no-op.
func cloexecByProc() error {
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
