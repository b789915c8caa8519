package vassalfile

import (
	"fmt"
	"strings"
	"time"

	"github.com/emperor-dev/emperor/hooks"
	"github.com/emperor-dev/emperor/reexec"
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
	Unshare       reexec.Namespaces

	Hooks         []hooks.Hook // in file order; see PhaseHooks
	Chroot        string
	PivotNew      string
	PivotOld      string
	HookTimeout   time.Duration
	MountChecks   []string
	CheckInterval time.Duration
	CheckTimeout  time.Duration

	HTTPSockets     []string
	Threads         int
	GlusterMounts   []GlusterMount
	GlusterTimeout  time.Duration
	StaticMaps      []StaticMap
	StaticIndex     []string
	StaticAutoindex bool
	StaticSafe      []string
	CacheTTL        time.Duration
	CacheMaxFile    int64
	CacheSize       int64
	DisableLogging  bool
}

// PhaseHooks returns the hooks of phase in run order: hook-<phase> lines
// first, then mount-, umount- and exec-<phase>, each in file order.
func (s *Spec) PhaseHooks(phase hooks.Phase) []hooks.Hook {
	var out []hooks.Hook
	for fam := hooks.FamilyHook; fam <= hooks.FamilyExec; fam++ {
		for _, h := range s.Hooks {
			if h.Phase == phase && h.Family == fam {
				out = append(out, h)
			}
		}
	}
	return out
}

// Decode turns a parsed vassal file into a Spec. Values were validated by
// Parse, so this only fails on a file that was not produced by Parse.
func Decode(f *File) (*Spec, error) {
	s := &Spec{Name: f.Name, Path: f.Path, HookTimeout: 60 * time.Second,
		CheckInterval: time.Second, CheckTimeout: 3 * time.Second,
		Threads: 64, GlusterTimeout: 10 * time.Second, CacheTTL: time.Second,
		CacheMaxFile: 16 << 20, CacheSize: 256 << 20}

	errs := diagList{path: f.Path}
	bad := func(e Entry, err error) {
		errs.add(e.Line, fmt.Sprintf("%s: %v", e.Key, err))
	}
	prefixes := map[string]int{}
	mountAt := func(e Entry, prefix string) {
		if l, dup := prefixes[prefix]; dup {
			bad(e, fmt.Errorf("URL prefix %s is already mounted at line %d", prefix, l))
		}
		prefixes[prefix] = e.Line
	}
	for _, e := range f.Entries {
		if ho, ok := hookOptions[e.Key]; ok {
			var h hooks.Hook
			var err error
			if ho.family == hooks.FamilyHook {
				h, err = hooks.Parse(ho.phase, e.Value, e.Line)
			} else {
				h, err = hooks.ParseFamily(ho.phase, ho.family, e.Value, e.Line)
			}
			if err != nil {
				bad(e, err)
			}
			s.Hooks = append(s.Hooks, h)
			continue
		}
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
		case "chroot":
			s.Chroot = e.Value
		case "pivot_root":
			nr, old, err := ParsePivotRoot(e.Value)
			if err != nil {
				bad(e, err)
			}
			s.PivotNew, s.PivotOld = nr, old
		case "hook-timeout":
			s.HookTimeout = mustDuration(e, time.Second, bad)
		case "mountpoint-check":
			s.MountChecks = append(s.MountChecks, e.Value)
		case "check-interval":
			s.CheckInterval = mustDuration(e, time.Second, bad)
		case "mountpoint-check-timeout":
			s.CheckTimeout = mustDuration(e, time.Second, bad)
		case "http-socket":
			s.HTTPSockets = append(s.HTTPSockets, e.Value)
		case "threads":
			fmt.Sscan(e.Value, &s.Threads)
		case "glusterfs-mount":
			m, err := ParseGlusterMount(e.Value)
			if err != nil {
				bad(e, err)
				continue
			}
			m.Line = e.Line
			mountAt(e, m.Mountpoint)
			s.GlusterMounts = append(s.GlusterMounts, m)
		case "glusterfs-timeout":
			s.GlusterTimeout = mustDuration(e, time.Second, bad)
		case "static-map":
			m, err := ParseStaticMap(e.Value)
			if err != nil {
				bad(e, err)
				continue
			}
			m.Line = e.Line
			mountAt(e, m.Prefix)
			s.StaticMaps = append(s.StaticMaps, m)
		case "static-index":
			s.StaticIndex = append(s.StaticIndex, e.Value)
		case "static-autoindex":
			s.StaticAutoindex, _ = ParseBool(e.Value)
		case "static-safe":
			s.StaticSafe = append(s.StaticSafe, e.Value)
		case "static-cache-ttl":
			s.CacheTTL = mustDuration(e, time.Second, bad)
		case "static-cache-max-file":
			s.CacheMaxFile, _ = ParseSize(e.Value)
		case "static-cache-size":
			s.CacheSize, _ = ParseSize(e.Value)
		case "disable-logging":
			s.DisableLogging, _ = ParseBool(e.Value)
		case "unshare":
			ns, err := ParseCloneFlags(e.Value)
			if err != nil {
				bad(e, err)
			}
			s.Unshare = ns
		}
	}
	if len(s.StaticIndex) == 0 {
		s.StaticIndex = []string{"index.html"}
	}
	if (len(s.GlusterMounts) > 0 || len(s.StaticMaps) > 0) && len(s.HTTPSockets) == 0 {
		e, ok := f.Last("glusterfs-mount")
		if !ok {
			e, _ = f.Last("static-map")
		}
		bad(e, fmt.Errorf("nothing serves this mount: add http-socket = 127.0.0.1:PORT"))
	}
	if s.Chroot != "" && s.PivotNew != "" {
		e, _ := f.Last("chroot")
		bad(e, fmt.Errorf("chroot and pivot_root cannot both be set"))
	}
	if l := errs.done(); len(l) > 0 {
		return nil, Errors(l)
	}
	return s, nil
}

func mustDuration(e Entry, unit time.Duration, bad func(Entry, error)) time.Duration {
	d, err := ParseDuration(e.Value, unit)
	if err != nil {
		bad(e, err)
	}
	return d
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
			return fmt.Sprintf("%s changed (%s -> %s) and cannot change in place", o.Name, QuoteValue(a), QuoteValue(b))
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
