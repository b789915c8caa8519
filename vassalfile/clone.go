package vassalfile

import (
	"fmt"
	"strings"

	"github.com/emperor-dev/emperor/reexec"
)

// ParseCloneFlags reads uWSGI's emperor-use-clone / unshare value: names
// separated by commas, spaces or '|'. "none" (alone) is the empty set.
func ParseCloneFlags(v string) (reexec.Namespaces, error) {
	v = strings.TrimSpace(v)
	if v == "none" {
		return 0, nil
	}
	fields := strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == '|' || r == ' ' || r == '\t' })
	if len(fields) == 0 {
		return 0, fmt.Errorf("no namespace named (use fs,pid,uts,ipc,net or none)")
	}
	var ns reexec.Namespaces
	for _, f := range fields {
		bit, ok := reexec.NamespaceNamed(f)
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
