package vassal

import "golang.org/x/sys/unix"

// quietSyscallsArch are the quiet system calls that only some
// architectures have (arm64 has only the p- and 2-variants).
var quietSyscallsArch = []int64{unix.SYS_EPOLL_WAIT, unix.SYS_POLL, unix.SYS_SELECT}
