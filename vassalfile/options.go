package vassalfile

import (
	"errors"
	"fmt"
	"math"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/emperor-dev/emperor/reexec"
	"github.com/emperor-dev/emperor/restart"
)

// Scope says which file an option belongs in.
type Scope int

const (
	// ScopeVassal options go in vassal files.
	ScopeVassal Scope = 1 << iota
	// ScopeEmperor options go in the emperor's --config file.
	ScopeEmperor
)

// Kind is the type of an option's value.
type Kind int

const (
	KindString Kind = iota
	KindInt
	KindBool
	KindMillis  // a duration; a bare number is milliseconds (uWSGI's unit for throttles)
	KindSeconds // a duration; a bare number is seconds (uWSGI's unit for mercy and intervals)
	KindIgnored // accepted for compatibility, ignored with a warning
)

func (k Kind) String() string {
	switch k {
	case KindInt:
		return "integer"
	case KindBool:
		return "boolean"
	case KindMillis:
		return "duration (bare number = ms)"
	case KindSeconds:
		return "duration (bare number = s)"
	case KindIgnored:
		return "ignored"
	}
	return "string"
}

// unit is what a bare number means for a duration kind.
func (k Kind) unit() time.Duration {
	if k == KindMillis {
		return time.Millisecond
	}
	return time.Second
}

// Option describes one known option. The README's reference table is
// generated from this list (see `emperor options --markdown`), so the docs
// cannot drift from what the parser accepts.
type Option struct {
	Name    string
	Aliases []string
	Scope   Scope
	Kind    Kind
	List    bool // repeated keys append; otherwise the last value wins
	// Default is the documented default. Unless it is a note in parentheses
	// ("(none)"), it is parsed like a value at registration, and that typed
	// value is the default every consumer reads (DefaultOf): one place.
	Default string
	Doc     string
	UWSGI   string // how it differs from uWSGI, or "same"
	// Restart is true when a change to the option cannot be applied by an
	// in-place reload and forces a full stop and clean start.
	Restart bool
	// Min and Max bound a duration (KindMillis, KindSeconds): every duration
	// option has a range, so that 0, nan, inf and absurd values are errors
	// naming the line, not a PID 1 that panics or never starts.
	Min, Max time.Duration
	// Parse reads a value into its typed form; the parser calls it once per
	// value and keeps the result in Entry.Val. Nil: the Kind's parser (int,
	// bool, time.Duration in its range, or the string itself).
	Parse func(string) (any, error)
	// Validate is an extra check of the value as written.
	Validate func(string) error
	// Group names a family of options documented as one row (the hook
	// options: hook-, exec-, mount-, umount- for each phase).
	Group string
	// Owner says who acts on the option: us, uWSGI's app server, or us
	// unless the vassal runs an app (see Owner).
	Owner Owner
	// NoApp, for an OwnerApp option that makes no sense without uWSGI's
	// app server, is the error of a vassal that runs none (instead of the
	// "has no effect" warning). Its Parse checks the value handed to uWSGI.
	NoApp string

	def any // the typed Default
}

// parse reads v as this option's typed value, with every check the option
// has.
func (o *Option) parse(v string) (any, error) {
	var val any = v
	var err error
	switch {
	case o.Parse != nil:
		val, err = o.Parse(v)
	case o.Kind == KindInt:
		val, err = strconv.Atoi(v)
		if err != nil {
			err = fmt.Errorf("%s is not an integer", QuoteValue(v))
		}
	case o.Kind == KindBool:
		val, err = ParseBool(v)
	case o.Kind == KindMillis || o.Kind == KindSeconds:
		var d time.Duration
		if d, err = ParseDuration(v, o.Kind.unit()); err == nil {
			err = o.checkRange(d)
		}
		val = d
	}
	if err == nil && o.Validate != nil {
		err = o.Validate(v)
	}
	return val, err
}

// millis and seconds write a default kept in another package (the restart
// policy's) the way the registry documents it.
func millis(d time.Duration) string  { return strconv.FormatInt(d.Milliseconds(), 10) }
func seconds(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) }

// intRange parses an integer from lo to hi.
func intRange(lo, hi int) func(string) (any, error) {
	return func(v string) (any, error) {
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			return nil, fmt.Errorf("%s is not a count from %d to %d", QuoteValue(v), lo, hi)
		}
		return n, nil
	}
}

// DefaultOf returns the typed default of option name: the registry's
// Default, parsed once. It panics on an unknown name or a wrong type, which
// are programming errors a test catches.
func DefaultOf[T any](name string) T {
	o, ok := registry[name]
	if !ok {
		panic("vassalfile: DefaultOf unknown option " + name)
	}
	if o.def == nil {
		var zero T
		return zero
	}
	return o.def.(T)
}

var registry = map[string]*Option{}
var canonical = map[string]string{}

func register(opts ...*Option) {
	for _, o := range opts {
		if _, dup := canonical[o.Name]; dup {
			panic("vassalfile: option registered twice: " + o.Name)
		}
		if o.Default != "" && o.Default != "-" && !strings.HasPrefix(o.Default, "(") && o.Kind != KindIgnored {
			d, err := o.parse(o.Default)
			if err != nil {
				panic("vassalfile: default of " + o.Name + ": " + err.Error())
			}
			o.def = d
		}
		registry[o.Name] = o
		canonical[o.Name] = o.Name
		for _, a := range o.Aliases {
			if _, dup := canonical[a]; dup {
				panic("vassalfile: alias registered twice: " + a)
			}
			canonical[a] = o.Name
		}
	}
}

// Lookup finds an option by name or alias.
func Lookup(name string) (*Option, bool) {
	c, ok := canonical[name]
	if !ok {
		return nil, false
	}
	return registry[c], true
}

// Options returns every known option, sorted by name.
func Options() []*Option {
	out := make([]*Option, 0, len(registry))
	for _, o := range registry {
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// appOptions are uWSGI's process-model and plugin options that vassal
// files commonly set: uWSGI's app server reads them in a vassal that runs
// an app; without one they have no meaning (there is no uWSGI master or
// worker pool) and are accepted with a warning. The other options of
// uWSGI's catalog behave the same way; these are listed in the docs.
var appOptions = []string{
	"plugin", "plugins", "plugins-dir", "plugin-dir", "master", "processes", "workers",
	"vacuum", "die-on-term", "enable-threads", "strict", "need-app", "no-orphans",
	"memory-report", "lazy-apps", "single-interpreter", "harakiri", "max-requests",
	"buffer-size", "post-buffering", "thunder-lock", "auto-procname", "procname-prefix",
	"procname-prefix-spaced", "procname", "pidfile", "pidfile2",
}

// appNoApp are the errors of appOptions that make no sense without an app
// (Option.NoApp).
var appNoApp = map[string]string{
	// uWSGI exits at start without an app; here there would be no app
	// server at all: the file lacks what it says it needs.
	"need-app": "need-app: this vassal loads no app (no loader such as module, wsgi-file, psgi or php-docroot), so uWSGI's app server does not run: add the loader, or remove need-app",
}

// ParseBool reads uWSGI's boolean spellings. An empty value means true, as a
// bare flag does in uWSGI.
func ParseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "", "1", "true", "yes", "on", "y", "t":
		return true, nil
	case "0", "false", "no", "off", "n", "f":
		return false, nil
	}
	return false, fmt.Errorf("%s is not a boolean (use true or false)", QuoteValue(v))
}

// ParseDuration reads a duration where a bare number is in unit. nan, inf,
// negative values and values past what a time.Duration holds are errors.
func ParseDuration(v string, unit time.Duration) (time.Duration, error) {
	if n, err := strconv.ParseFloat(v, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		switch {
		case math.IsNaN(n) || math.IsInf(n, 0) || err != nil:
			return 0, fmt.Errorf("%s is not a finite duration", QuoteValue(v))
		case n < 0:
			return 0, fmt.Errorf("%s is negative", QuoteValue(v))
		case n*float64(unit) >= math.MaxInt64:
			return 0, fmt.Errorf("%s is too large a duration", QuoteValue(v))
		}
		return time.Duration(n * float64(unit)), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%s is not a duration (a number, or e.g. 500ms, 2s)", QuoteValue(v))
	}
	if d < 0 {
		return 0, fmt.Errorf("%s is negative", QuoteValue(v))
	}
	return d, nil
}

// checkRange checks a duration against an option's range.
func (o *Option) checkRange(d time.Duration) error {
	if d < o.Min || d > o.Max {
		return fmt.Errorf("%s is out of range: %s", FormatDuration(d), o.RangeDoc())
	}
	return nil
}

// RangeDoc describes an option's allowed durations ("from 10ms to 1h").
func (o *Option) RangeDoc() string {
	if o.Min == 0 {
		return "from 0 to " + FormatDuration(o.Max)
	}
	return "from " + FormatDuration(o.Min) + " to " + FormatDuration(o.Max)
}

// FormatDuration writes a duration the short way: 1h, 30m, 10s, 250ms.
func FormatDuration(d time.Duration) string {
	for _, u := range []struct {
		d    time.Duration
		name string
	}{{time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}, {time.Millisecond, "ms"}} {
		if d != 0 && d%u.d == 0 {
			return strconv.FormatInt(int64(d/u.d), 10) + u.name
		}
	}
	if d == 0 {
		return "0"
	}
	return d.String()
}

// checkBytes refuses control bytes in a value (tab is allowed): a NUL cuts
// a C string (an exec argument, an environment entry, a path) short, and the
// others have no meaning in any option.
func checkBytes(v string) error {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return fmt.Errorf("control byte 0x%02x at byte %d of the value (only tab is allowed)", c, i+1)
		}
	}
	return nil
}

func validateEnv(v string) error {
	k, _, ok := strings.Cut(v, "=")
	if !ok || k == "" || strings.ContainsAny(k, " \t") {
		return fmt.Errorf("env wants KEY=VALUE, got %s", QuoteValue(v))
	}
	return nil
}

func validateNotEmpty(v string) error {
	if strings.TrimSpace(v) == "" {
		return fmt.Errorf("a value is required")
	}
	return nil
}

// parseSmartDaemon reads smart-attach-daemon's PIDFILE COMMAND.
func parseSmartDaemon(v string) (any, error) {
	pid, cmd, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok || pid == "" || strings.TrimSpace(cmd) == "" {
		return nil, fmt.Errorf("smart-attach-daemon wants PIDFILE COMMAND, got %s", QuoteValue(v))
	}
	return Daemon{Command: strings.TrimSpace(cmd), Pidfile: pid, Smart: true}, nil
}

func validateSocket(v string) error {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return fmt.Errorf("%s is not [ADDR]:PORT: %v", QuoteValue(v), err)
	}
	if host != "" && net.ParseIP(host) == nil && host != "localhost" {
		return fmt.Errorf("%s: address %s is not an IP address", QuoteValue(v), QuoteValue(host))
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("%s: bad port %s", QuoteValue(v), QuoteValue(port))
	}
	return nil
}

func parseClone(v string) (any, error) { return ParseCloneFlags(v) }

func validateUser(v string) error {
	if strings.TrimSpace(v) == "" {
		return fmt.Errorf("a user name or number is required")
	}
	return nil
}

func init() {
	register(
		&Option{Name: "uid", Scope: ScopeVassal, Kind: KindString, Restart: true,
			Default: "(none: stays root)", Validate: validateUser,
			Doc:   "User (name or number) the vassal's PID 1 and its daemons drop to, after the jail is set up.",
			UWSGI: "Names are resolved in the host's user database before the jail, so the jail needs no /etc/passwd."},
		&Option{Name: "gid", Scope: ScopeVassal, Kind: KindString, Restart: true,
			Default: "(uid's primary group, else none)", Validate: validateUser,
			Doc:   "Group (name or number) to drop to. Dropped in the order setgid, setgroups, setuid.",
			UWSGI: "Defaults to the uid's primary group when only uid is set; uWSGI keeps root's gid."},
		&Option{Name: "add-gid", Scope: ScopeVassal, Kind: KindString, List: true, Restart: true,
			Validate: validateUser, Default: "(none)",
			Doc:   "Extra supplementary group (name or number). Repeatable.",
			UWSGI: "same"},
		&Option{Name: "no-initgroups", Scope: ScopeVassal, Kind: KindBool, Restart: true, Default: "false",
			Doc:   "Do not add the uid's supplementary groups from the group database.",
			UWSGI: "same"},
		&Option{Name: "chdir", Scope: ScopeVassal, Kind: KindString, Default: "(unchanged)",
			Validate: validateNotEmpty,
			Doc:      "Directory the vassal changes to after the privilege drop; daemons start there.",
			UWSGI:    "same"},
		&Option{Name: "env", Scope: ScopeVassal, Kind: KindString, List: true, Validate: validateEnv,
			Default: "(none)",
			Doc:     "KEY=VALUE added to the environment of the vassal's daemons. Repeatable.",
			UWSGI:   "same"},
		&Option{Name: "attach-daemon", Aliases: []string{"attach-control-daemon"}, Scope: ScopeVassal,
			Kind: KindString, List: true, Validate: validateNotEmpty, Default: "(none)",
			Doc:   "Command run as /bin/sh -c would run it, as the vassal's user, in the foreground; respawned when it dies, restarted on reload; output logged with the vassal's name. A command of plain words whose program is found is exec'd directly, without a shell process; anything with quotes, $, globs, redirections, pipes or builtins goes through /bin/sh -c.",
			UWSGI: "Respawns follow the emperor's restart policy (emperor-restart-burst, emperor-throttle; a daemon counts as ready once it has run 1 s) instead of uWSGI's fixed 10 tries."},
		&Option{Name: "smart-attach-daemon", Scope: ScopeVassal, Kind: KindString, List: true,
			Parse: parseSmartDaemon, Default: "(none)",
			Doc:   "PIDFILE COMMAND: a daemon that backgrounds itself and writes PIDFILE. It is watched through the pidfile, respawned when that pid is gone, and kept across reloads.",
			UWSGI: "same"},
		&Option{Name: "shared-socket", Owner: OwnerShared, Scope: ScopeVassal, Kind: KindString, List: true, Restart: true,
			Validate: validateSocket, Default: "(none)",
			Doc:   "[ADDR]:PORT bound by the vassal as root before the privilege drop and kept open across reloads. Attached daemons inherit the sockets as fds 3, 4, ... with LISTEN_FDS set, so requests queue instead of failing while a daemon restarts.",
			UWSGI: "uWSGI only shares them with its own workers; here any daemon can use them (LISTEN_PID is not set: the pid is not known before the fork, and under /bin/sh it would be the shell's)."},
		&Option{Name: "reload-mercy", Scope: ScopeVassal | ScopeEmperor, Kind: KindSeconds, Min: time.Millisecond, Max: time.Hour, Default: "30",
			Doc:   "How long a vassal's daemons get after SIGTERM before SIGKILL, on stop and on reload. The emperor SIGKILLs a stopping vassal's PID 1 (and so its namespace) 2 s after that, which leaves time for the as-user-atexit hooks.",
			UWSGI: "Also accepts Go durations (500ms)."},
		&Option{Name: "unshare", Scope: ScopeVassal, Kind: KindString, Restart: true, Parse: parseClone,
			Default: "(none)",
			Doc:     "Extra namespaces for this vassal on top of emperor-use-clone (fs, pid, uts, ipc, net).",
			UWSGI:   "The emperor creates them at clone time, so pid works here too."},
		&Option{Name: "set-placeholder", Aliases: []string{"set-ph"}, Scope: ScopeVassal | ScopeEmperor,
			Kind: KindString, List: true, Default: "(none)",
			Doc:   "NAME=VALUE defines %(NAME) without setting an option (NAME must not be an option's name). A key that is no option and that %(key) refers to is a placeholder too; `set = NAME=VALUE` sets an option or a placeholder (docs/dialect.md).",
			UWSGI: "same"},

		&Option{Name: "emperor", Scope: ScopeEmperor, Kind: KindString, Validate: validateNotEmpty,
			Default: "(required, or --vassals)",
			Doc:     "Directory of vassal files (*.ini) to watch.",
			UWSGI:   "Only a directory; uWSGI's glob and imperial monitors are not supported."},
		&Option{Name: "emperor-use-clone", Scope: ScopeEmperor, Kind: KindString, Parse: parseClone,
			Default: reexec.DefaultNamespaces.String(),
			Doc:     "Namespaces each vassal gets: fs|mount|mnt|ns, pid, uts, ipc, net, comma separated; none for no isolation.",
			UWSGI:   "uWSGI's default is no namespaces; ours is fs,pid."},
		&Option{Name: "emperor-throttle", Scope: ScopeEmperor, Kind: KindMillis, Min: time.Millisecond, Max: time.Hour, Default: millis(restart.DefaultThrottle),
			Doc:   "First backoff step of the restart policy (vassals and their attached daemons): the wait after the second failure in a row of a run that never became ready, or after the first failure above emperor-restart-burst. Doubles with each further failure, up to emperor-max-throttle.",
			UWSGI: "Same unit (ms). uWSGI throttles every respawn of a vassal that lived less than a few seconds; here a vassal that became ready is restarted at once for its first failures (emperor-restart-burst)."},
		&Option{Name: "emperor-max-throttle", Scope: ScopeEmperor, Kind: KindMillis, Min: time.Millisecond, Max: 24 * time.Hour, Default: millis(restart.DefaultMaxThrottle),
			Doc:   "Cap on the backoff.",
			UWSGI: "same"},
		&Option{Name: "emperor-restart-burst", Scope: ScopeEmperor, Kind: KindInt, Parse: intRange(0, 1000), Default: strconv.Itoa(restart.DefaultBurst),
			Doc:   "A vassal or attached daemon that became ready is restarted at once while its failure count (this failure included) is at most this; above it the wait is emperor-throttle × 2ⁿ, n+1 being how far the count is above the burst. 0 backs off from the first failure.",
			UWSGI: "Ours, not in uWSGI (after systemd's StartLimitBurst)."},
		&Option{Name: "emperor-restart-half-life", Scope: ScopeEmperor, Kind: KindSeconds, Min: 0, Max: 24 * time.Hour, Default: seconds(restart.DefaultHalfLife),
			Doc:   "The failure count decays: it halves for every this much time the vassal or daemon runs (time waiting in backoff does not count). 0 forgets past failures as soon as a run lasts any time.",
			UWSGI: "Ours, not in uWSGI (after suture's decaying failure count)."},
		&Option{Name: "emperor-healthy-time", Scope: ScopeEmperor, Kind: KindSeconds, Min: 0, Max: 24 * time.Hour, Default: "-",
			Doc:   "No longer used: accepted so older config files keep working, and ignored with a warning. emperor-restart-burst and emperor-restart-half-life replaced it.",
			UWSGI: "Not in uWSGI."},
		&Option{Name: "emperor-stats", Aliases: []string{"emperor-stats-server"}, Scope: ScopeEmperor, Kind: KindString, Default: "-",
			Doc:   "Serve the emperor's stats on this address (host:port for TCP, else a unix socket path, @name abstract): every connection gets one JSON document (the emperor and each vassal: pid, state, times, restarts), then is closed. Unauthenticated, like uWSGI's: bind it to 127.0.0.1 or a socket with the right mode. The HTTP API's /metrics and /v1/vassals say more.",
			UWSGI: "Same fields as uWSGI's emperor stats; uWSGI's output is not valid JSON (its attrs are key/values in a list), ours is. Always raw JSON: stats-http does not apply to it."},
		&Option{Name: "emperor-freq", Scope: ScopeEmperor, Kind: KindSeconds, Min: 10 * time.Millisecond, Max: time.Hour, Default: "3",
			Doc:   "Interval of the safety-net rescan of the vassal directory. Events come from inotify at once; the rescan only catches lost events.",
			UWSGI: "In uWSGI this scan is the only trigger, so it bounds spawn latency; here it does not."},
	)
	for _, n := range appOptions {
		register(&Option{Name: n, Scope: ScopeVassal | ScopeEmperor, Kind: KindString, List: true,
			Owner: OwnerApp, Default: "-", NoApp: appNoApp[n],
			Doc:   "uWSGI's: handed to its app server in a vassal that runs an app; otherwise accepted with a warning.",
			UWSGI: "same with an app; no effect without one."})
	}
}
