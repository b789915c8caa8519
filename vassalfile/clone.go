package vassalfile

import (
	"fmt"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// Namespaces is a set of namespaces a vassal is cloned into.
type Namespaces uint

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

var nsNames = map[string]Namespaces{
	"fs": NSMount, "mount": NSMount, "mnt": NSMount, "ns": NSMount,
	"pid": NSPID, "uts": NSUTS, "ipc": NSIPC, "net": NSNet,
}

// ParseCloneFlags reads uWSGI's emperor-use-clone / unshare value: names
// separated by commas, spaces or '|'. "none" (alone) is the empty set.
func ParseCloneFlags(v string) (Namespaces, error) {
	v = strings.TrimSpace(v)
	if v == "none" {
		return 0, nil
	}
	fields := strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == '|' || r == ' ' || r == '\t' })
	if len(fields) == 0 {
		return 0, fmt.Errorf("no namespace named (use fs,pid,uts,ipc,net or none)")
	}
	var ns Namespaces
	for _, f := range fields {
		bit, ok := nsNames[strings.ToLower(f)]
		if !ok {
			if f == "none" {
				return 0, fmt.Errorf("none cannot be combined with other namespaces")
			}
			return 0, fmt.Errorf("unknown namespace %s (known: fs|mount|mnt|ns, pid, uts, ipc, net, none)", QuoteValue(f))
		}
		ns |= bit
	}
	return ns, nil
}

// CloneFlags maps the set to clone(2) flags.
func (n Namespaces) CloneFlags() uintptr {
	var f uintptr
	if n&NSMount != 0 {
		f |= unix.CLONE_NEWNS
	}
	if n&NSPID != 0 {
		f |= unix.CLONE_NEWPID
	}
	if n&NSUTS != 0 {
		f |= unix.CLONE_NEWUTS
	}
	if n&NSIPC != 0 {
		f |= unix.CLONE_NEWIPC
	}
	if n&NSNet != 0 {
		f |= unix.CLONE_NEWNET
	}
	return f
}

func (n Namespaces) String() string {
	if n == 0 {
		return "none"
	}
	var out []string
	for name, bit := range map[string]Namespaces{"fs": NSMount, "pid": NSPID, "uts": NSUTS, "ipc": NSIPC, "net": NSNet} {
		if n&bit != 0 {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}
