// Package reexec is the contract between the emperor and the PID 1 it
// re-executes for each vassal: the hidden init command and its argv, the
// descriptor of the control channel, the set of namespaces the vassal is
// cloned into, and how an exit status is described. Both sides import it;
// neither imports the other.
//
// The namespace set has one source of truth: the emperor picks it, clones
// the vassal with its flags and sends it in the start message
// (control.Message.Namespaces). argv carries only the vassal's name, so that
// ps shows which vassal a PID 1 belongs to.
package reexec

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// InitCommand is argv[1] of a re-executed vassal. It is not a CLI command and
// is not shown in help.
const InitCommand = "vassal-init"

// ControlFD is the descriptor on which a vassal's PID 1 inherits its end of
// the emperor's socketpair (stdin, stdout and stderr come first).
const ControlFD = 3

// Argv is the argv of a vassal's PID 1: the binary, InitCommand and the
// vassal's name (for ps; the vassal reads everything else from its start
// message).
func Argv(exe, name string) []string { return []string{exe, InitCommand, name} }

// Namespaces is a set of namespaces a vassal is cloned into.
type Namespaces uint

// The namespaces a vassal can get.
const (
	NSMount Namespaces = 1 << iota
	NSPID
	NSUTS
	NSIPC
	NSNet
)

// DefaultNamespaces is fs,pid: a vassal's mounts stay in its own mount
// namespace and its processes die with its PID 1.
const DefaultNamespaces = NSMount | NSPID

// names are the canonical names, in the order String lists them.
var names = []struct {
	name string
	ns   Namespaces
}{{"fs", NSMount}, {"pid", NSPID}, {"uts", NSUTS}, {"ipc", NSIPC}, {"net", NSNet}}

// aliases are uWSGI's other names for the mount namespace.
var aliases = map[string]Namespaces{"mount": NSMount, "mnt": NSMount, "ns": NSMount}

// NamespaceNamed looks up one namespace by its uWSGI name (fs, mount, mnt,
// ns, pid, uts, ipc, net), ignoring case.
func NamespaceNamed(name string) (Namespaces, bool) {
	name = strings.ToLower(name)
	for _, n := range names {
		if n.name == name {
			return n.ns, true
		}
	}
	ns, ok := aliases[name]
	return ns, ok
}

// Has reports whether every namespace of x is in n.
func (n Namespaces) Has(x Namespaces) bool { return n&x == x }

// CloneFlags maps the set to clone(2) flags.
func (n Namespaces) CloneFlags() uintptr {
	var f uintptr
	if n.Has(NSMount) {
		f |= unix.CLONE_NEWNS
	}
	if n.Has(NSPID) {
		f |= unix.CLONE_NEWPID
	}
	if n.Has(NSUTS) {
		f |= unix.CLONE_NEWUTS
	}
	if n.Has(NSIPC) {
		f |= unix.CLONE_NEWIPC
	}
	if n.Has(NSNet) {
		f |= unix.CLONE_NEWNET
	}
	return f
}

// String lists the set with canonical names, comma separated ("fs,pid"), or
// "none".
func (n Namespaces) String() string {
	var out []string
	for _, c := range names {
		if n.Has(c.ns) {
			out = append(out, c.name)
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ",")
}

// MarshalText writes the set as String does, so the start message reads
// "namespaces":"fs,pid".
func (n Namespaces) MarshalText() ([]byte, error) { return []byte(n.String()), nil }

// UnmarshalText reads what MarshalText wrote.
func (n *Namespaces) UnmarshalText(b []byte) error {
	s := string(b)
	if s == "none" || s == "" {
		*n = 0
		return nil
	}
	var set Namespaces
	for _, f := range strings.Split(s, ",") {
		ns, ok := NamespaceNamed(f)
		if !ok {
			return fmt.Errorf("reexec: unknown namespace %q in %q", f, s)
		}
		set |= ns
	}
	*n = set
	return nil
}

// DescribeStatus renders a wait status the way an operator reads it.
func DescribeStatus(ws unix.WaitStatus) string {
	switch {
	case ws.Exited():
		return fmt.Sprintf("exit status %d", ws.ExitStatus())
	case ws.Signaled():
		return fmt.Sprintf("killed by %v", ws.Signal())
	}
	return fmt.Sprintf("wait status %#x", uint32(ws))
}
