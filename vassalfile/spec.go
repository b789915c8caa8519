package vassalfile

import (
	"fmt"
	"strings"
	"time"
)

// Daemon is one attach-daemon or smart-attach-daemon line.
type Daemon struct {
	Command string
	Pidfile string // smart daemons only
	Smart   bool
	Line    int
}

// Spec is a vassal file decoded into typed settings.
type Spec struct {
	Name          string
	Path          string
	UID           string
	GID           string
	AddGIDs       []string
	NoInitgroups  bool
	Chdir         string
	Env           []string
	Daemons       []Daemon
	SharedSockets []string
	ReloadMercy   time.Duration // 0: the emperor's
	Unshare       Namespaces
}

// Decode turns a parsed vassal file into a Spec. Values were validated by
// Parse, so this only fails on a file that was not produced by Parse.
func Decode(f *File) (*Spec, error) {
	s := &Spec{Name: f.Name, Path: f.Path}
	var errs Errors
	bad := func(e Entry, err error) {
		errs = append(errs, Diag{File: f.Path, Line: e.Line, Message: fmt.Sprintf("%s: %v", e.Key, err)})
	}
	for _, e := range f.Entries {
		switch e.Key {
		case "uid":
			s.UID = e.Value
		case "gid":
			s.GID = e.Value
		case "add-gid":
			s.AddGIDs = append(s.AddGIDs, e.Value)
		case "no-initgroups":
			b, err := ParseBool(e.Value)
			if err != nil {
				bad(e, err)
			}
			s.NoInitgroups = b
		case "chdir":
			s.Chdir = e.Value
		case "env":
			s.Env = append(s.Env, e.Value)
		case "attach-daemon":
			s.Daemons = append(s.Daemons, Daemon{Command: e.Value, Line: e.Line})
		case "smart-attach-daemon":
			pid, cmd, _ := strings.Cut(strings.TrimSpace(e.Value), " ")
			s.Daemons = append(s.Daemons, Daemon{Command: strings.TrimSpace(cmd), Pidfile: pid, Smart: true, Line: e.Line})
		case "shared-socket":
			s.SharedSockets = append(s.SharedSockets, e.Value)
		case "reload-mercy":
			d, err := ParseDuration(e.Value, time.Second)
			if err != nil {
				bad(e, err)
			}
			s.ReloadMercy = d
		case "unshare":
			ns, err := ParseCloneFlags(e.Value)
			if err != nil {
				bad(e, err)
			}
			s.Unshare = ns
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return s, nil
}

// RestartReason compares two parses of one vassal file and says why the
// change cannot be applied in place ("" when it can). Options marked Restart
// (uid, gid, namespaces, sockets bound as root ...) are fixed for the life of
// a vassal's PID 1.
func RestartReason(old, cur *File) string {
	for _, o := range Options() {
		if !o.Restart {
			continue
		}
		a, b := values(old, o.Name), values(cur, o.Name)
		if a != b {
			return fmt.Sprintf("%s changed (%q -> %q) and cannot change in place", o.Name, a, b)
		}
	}
	return ""
}

func values(f *File, key string) string {
	var vs []string
	for _, e := range f.All(key) {
		vs = append(vs, e.Value)
	}
	return strings.Join(vs, "\x00")
}
