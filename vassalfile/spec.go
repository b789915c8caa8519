package vassalfile

import (
	"fmt"
	"strings"
	"time"

	"github.com/emperor-dev/emperor/cron"
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
	Name string
	Path string
	// Sources are the files the vassal file read, itself first (see
	// Where).
	Sources       []Source
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
	Waits         []hooks.Hook // wait-for-interface, -fs, -file, -dir, -mountpoint: before as-root
	WaitSockets   []hooks.Hook // wait-for-socket (no app): after as-user
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

	Log     LogSpec // logto & co (options_log.go)
	Touches []Touch // touch-* lines in file order (options_log.go)

	// App is what uWSGI's app server runs, nil when the file asks for no
	// app. In a vassal with an app, the shared options (http-socket,
	// static-map, threads...) are in App.Lines, not in the fields above.
	App *App

	Crons        []cron.Job    // cron, unique-cron and cron2, in file order
	CronHarakiri time.Duration // 0: no bound

	// Stats is our stats server's address ("": none); set only in a
	// vassal without an app (with one, uWSGI's app server has the line).
	Stats         string
	StatsHTTP     bool
	StatsMinified bool
}

// Where is "path:line" of a Line of the spec, for messages: a line of an
// included file names that file.
func (s *Spec) Where(line int) string {
	return (&File{Path: s.Path, Sources: s.Sources}).Where(line)
}

// Position is where a Line of the spec is: n, its number in its own file,
// and file, that file's path when it is a file the vassal file included
// ("" for the vassal file itself).
func (s *Spec) Position(line int) (file string, n int) {
	p, n, _ := (&File{Path: s.Path, Sources: s.Sources}).locate(line)
	if p == s.Path {
		p = ""
	}
	return p, n
}

// PhaseHooks returns the hooks of phase in run order: hook-<phase> lines
// first, then mount-, umount-, exec- and call-<phase>, each in file order.
func (s *Spec) PhaseHooks(phase hooks.Phase) []hooks.Hook {
	var out []hooks.Hook
	for _, fam := range hooks.Families {
		for _, h := range s.Hooks {
			if h.Phase == phase && h.Family == fam {
				out = append(out, h)
			}
		}
	}
	return out
}

// Decode turns a parsed vassal file into a Spec. Every value was parsed
// once, by Parse, into its typed form (Entry.Val), and every default comes
// from the option registry (DefaultOf); Decode only gathers them and checks
// what involves several options. It fails on a file that was not produced by
// Parse, and on those cross-option errors. The Spec is returned with the
// errors too, as far as it could be decoded, so that a checker goes on to
// the checks that follow (the user lookups) and reports every problem at
// once. A File with errors of its own (Parse failed) can be decoded: an
// option whose line was rejected is not reported missing.
func Decode(f *File) (*Spec, error) {
	app := BuildApp(f)
	orig := f
	if app != nil {
		f = emperorPart(f)
	}
	d := decoder{f: f, errs: diagList{path: f.Path}}
	s := &Spec{Name: f.Name, Path: f.Path, App: app, Sources: orig.Sources,
		UID:             last[string](&d, "uid"),
		GID:             last[string](&d, "gid"),
		AddGIDs:         all[string](&d, "add-gid"),
		NoInitgroups:    last[bool](&d, "no-initgroups"),
		Chdir:           last[string](&d, "chdir"),
		Env:             all[string](&d, "env"),
		SharedSockets:   all[string](&d, "shared-socket"),
		Unshare:         last[reexec.Namespaces](&d, "unshare"),
		Chroot:          last[string](&d, "chroot"),
		HookTimeout:     last[time.Duration](&d, "hook-timeout"),
		MountChecks:     all[string](&d, "mountpoint-check"),
		CheckInterval:   last[time.Duration](&d, "check-interval"),
		CheckTimeout:    last[time.Duration](&d, "mountpoint-check-timeout"),
		HTTPSockets:     all[string](&d, "http-socket"),
		Threads:         last[int](&d, "threads"),
		GlusterTimeout:  last[time.Duration](&d, "glusterfs-timeout"),
		StaticIndex:     all[string](&d, "static-index"),
		StaticAutoindex: last[bool](&d, "static-autoindex"),
		StaticSafe:      all[string](&d, "static-safe"),
		CacheTTL:        last[time.Duration](&d, "static-cache-ttl"),
		CacheMaxFile:    last[int64](&d, "static-cache-max-file"),
		CacheSize:       last[int64](&d, "static-cache-size"),
		DisableLogging:  last[bool](&d, "disable-logging"),
		CronHarakiri:    last[time.Duration](&d, "cron-harakiri"),
		Stats:           last[string](&d, "stats"),
		StatsHTTP:       last[bool](&d, "stats-http"),
		StatsMinified:   last[bool](&d, "stats-minified"),
	}
	// reload-mercy: 0 in the Spec means the emperor's.
	if _, ok := f.Last("reload-mercy"); ok {
		s.ReloadMercy = last[time.Duration](&d, "reload-mercy")
	}
	decodeLog(&d, s, orig)
	decodeWaits(&d, s)
	pr := last[PivotRoot](&d, "pivot_root")
	s.PivotNew, s.PivotOld = pr.New, pr.Old
	if len(s.StaticIndex) == 0 {
		s.StaticIndex = []string{DefaultOf[string]("static-index")}
	}
	// The options whose order across keys matters: hooks, daemons, mounts.
	prefixes := map[string]int{}
	mountAt := func(e Entry, prefix string) {
		if l, dup := prefixes[prefix]; dup {
			d.bad(e, fmt.Errorf("URL prefix %s is already mounted at line %d", prefix, l))
		}
		prefixes[prefix] = e.Line
	}
	for _, e := range f.Entries {
		if _, ok := hookOptions[e.Key]; ok {
			if h, ok := typed[hooks.Hook](&d, e); ok {
				h.Line, h.Ref = e.Line, orig.LineRef(e.Line)
				s.Hooks = append(s.Hooks, h)
			}
			continue
		}
		switch e.Key {
		case "cron", "unique-cron", "cron2":
			if j, ok := typed[cron.Job](&d, e); ok {
				j.Line, j.Ref = e.Line, orig.LineRef(e.Line)
				s.Crons = append(s.Crons, j)
			}
		case "attach-daemon":
			s.Daemons = append(s.Daemons, Daemon{Command: e.Value, Line: e.Line})
		case "smart-attach-daemon":
			if dm, ok := typed[Daemon](&d, e); ok {
				dm.Line = e.Line
				s.Daemons = append(s.Daemons, dm)
			}
		case "glusterfs-mount":
			if m, ok := typed[GlusterMount](&d, e); ok {
				m.Line = e.Line
				mountAt(e, m.Mountpoint)
				s.GlusterMounts = append(s.GlusterMounts, m)
			}
		case "static-map":
			if m, ok := typed[StaticMap](&d, e); ok {
				m.Line = e.Line
				mountAt(e, m.Prefix)
				s.StaticMaps = append(s.StaticMaps, m)
			}
		}
	}
	// With an app, http-socket is uWSGI's and a glusterfs-mount is an
	// error of its own (Parse): no "add http-socket" then.
	if s.App == nil && (len(s.GlusterMounts) > 0 || len(s.StaticMaps) > 0) && len(s.HTTPSockets) == 0 && !f.Rejected("http-socket") {
		e, ok := f.Last("glusterfs-mount")
		if !ok {
			e, _ = f.Last("static-map")
		}
		d.bad(e, fmt.Errorf("nothing serves this mount: add http-socket = 127.0.0.1:PORT"))
	}
	if s.Chroot != "" && s.PivotNew != "" {
		e, _ := f.Last("chroot")
		d.bad(e, fmt.Errorf("chroot and pivot_root cannot both be set"))
	}
	orig.Warnings = orig.Locate(orig.Warnings)
	if l := d.errs.done(); len(l) > 0 {
		return s, Errors(orig.Locate(l))
	}
	return s, nil
}

// decoder gathers a File's typed values.
type decoder struct {
	f    *File
	errs diagList
}

func (d *decoder) bad(e Entry, err error) {
	d.errs.add(e.Line, fmt.Sprintf("%s: %v", e.Key, err))
}

// typed is an entry's parsed value; an entry that Parse did not produce is
// an error.
func typed[T any](d *decoder, e Entry) (T, bool) {
	v, ok := e.Val.(T)
	if !ok {
		d.bad(e, fmt.Errorf("value %s was not parsed (a File must come from Parse)", QuoteValue(e.Value)))
	}
	return v, ok
}

// last is the value of the last line of option name, or its default.
func last[T any](d *decoder, name string) T {
	if e, ok := d.f.Last(name); ok {
		v, _ := typed[T](d, e)
		return v
	}
	return DefaultOf[T](name)
}

// all is the values of every line of a repeatable option, in file order.
func all[T any](d *decoder, name string) []T {
	var out []T
	for _, e := range d.f.All(name) {
		if v, ok := typed[T](d, e); ok {
			out = append(out, v)
		}
	}
	return out
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
