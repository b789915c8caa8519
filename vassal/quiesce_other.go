//go:build !amd64

package vassal

// quietSyscallsArch: see quiesce_amd64.go.
var quietSyscallsArch []int64
