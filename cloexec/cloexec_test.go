package cloexec

import (
	"testing"

	"golang.org/x/sys/unix"
)

// Both ways of marking inherited descriptors close-on-exec reach a
// descriptor opened without O_CLOEXEC, and leave 0-2 alone.
func TestAboveStderr(t *testing.T) {
	for name, mark := range map[string]func() error{"close_range": AboveStderr, "/proc/self/fd": byProc} {
		t.Run(name, func(t *testing.T) {
			fd, err := unix.Open("/dev/null", unix.O_RDONLY, 0) // no O_CLOEXEC: what we inherit
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(fd)
			if flags, _ := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); flags&unix.FD_CLOEXEC != 0 {
				t.Fatal("the test descriptor is close-on-exec already")
			}
			before, _ := unix.FcntlInt(2, unix.F_GETFD, 0)
			if err := mark(); err != nil {
				t.Fatal(err)
			}
			if flags, _ := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); flags&unix.FD_CLOEXEC == 0 {
				t.Fatalf("fd %d is not close-on-exec", fd)
			}
			if after, _ := unix.FcntlInt(2, unix.F_GETFD, 0); after != before {
				t.Fatal("stderr's flags changed")
			}
		})
	}
}
