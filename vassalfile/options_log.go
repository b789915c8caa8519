package vassalfile

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// LogSpec is the vassal's own log file: logto, logto2 and their modifiers.
type LogSpec struct {
	// To is logto: opened by PID 1 as root, before the hooks and the jail
	// (a path in the host's view). To2 is logto2: opened after the
	// privilege drop, as the tenant, in the jail's view. With both, To2
	// replaces To after the drop, as in uWSGI.
	To, To2 string
	// MaxSize (log-maxsize, bytes) rotates the file before a record would
	// take it past this size; 0 never rotates by size.
	MaxSize int64
	// Backup (log-backupname) is the name a rotated file gets; "" means
	// the file's name plus "." and the Unix time of the rotation.
	Backup string
	// Chown (logfile-chown) gives the file to the vassal's uid and gid
	// when it is opened as root.
	Chown bool
	// Chmod (logfile-chmod) is the mode set on the file when it is opened
	// or created; 0 leaves the creation mode (0640).
	Chmod os.FileMode
	// Reopen (log-reopen) reopens the file on every reload of the vassal.
	Reopen bool
	// Truncate (log-truncate) empties the file when the vassal starts.
	Truncate bool
	// Date (log-date, logdate, log-prefix) prefixes the lines of the
	// vassal's processes in the file.
	Date LogDate
}

// LogDate is a log-date value: on, with an optional strftime format.
type LogDate struct {
	On     bool
	Format string // "" : uWSGI's ctime form, "Wed Dec  2 12:29:28 2026"
}

// Touch is one touch-* line: a file whose change triggers Action.
type Touch struct {
	Action string // the option: touch-reload, touch-logreopen, ...
	Path   string // as written; relative paths are relative to chdir
	Arg    string // touch-exec's command
	Line   int
	Ref    string // Line for messages (File.LineRef)
}

// TouchOptions are the touch-* options PID 1 watches with inotify, in the
// order a change to one file runs them.
var TouchOptions = []string{"touch-reload", "touch-chain-reload", "touch-workers-reload", "touch-logrotate", "touch-logreopen", "touch-exec"}

// validateLogPath checks a logto/logto2/log-backupname path.
func validateLogPath(v string) error {
	if strings.TrimSpace(v) == "" {
		return fmt.Errorf("a file path is required")
	}
	if strings.Contains(v, ":") {
		return fmt.Errorf("%s: uWSGI reads a value with ':' as a UDP address HOST:PORT, and logging over UDP is not supported here; write a file path", QuoteValue(v))
	}
	if strings.HasSuffix(v, "/") || filepath.Base(v) == "." || filepath.Base(v) == ".." {
		return fmt.Errorf("%s names a directory, not a file", QuoteValue(v))
	}
	return nil
}

// parseLogChmod reads logfile-chmod's three octal digits, as uWSGI does.
func parseLogChmod(v string) (any, error) {
	if len(v) != 3 || strings.Trim(v, "01234567") != "" {
		return nil, fmt.Errorf("%s is not a mode of three octal digits (e.g. 640)", QuoteValue(v))
	}
	m := os.FileMode(v[0]-'0')<<6 | os.FileMode(v[1]-'0')<<3 | os.FileMode(v[2]-'0')
	if m&0o600 != 0o600 {
		return nil, fmt.Errorf("mode %s leaves the owner unable to read and write the log file", v)
	}
	return m, nil
}

// parseLogDate reads log-date: a boolean spelling turns it on (or off),
// anything else is a strftime format.
func parseLogDate(v string) (any, error) {
	if b, err := ParseBool(v); err == nil {
		return LogDate{On: b}, nil
	}
	if err := checkStrftime(v); err != nil {
		return nil, err
	}
	return LogDate{On: true, Format: v}, nil
}

// checkStrftime accepts the strftime conversions the log writer knows.
func checkStrftime(f string) error {
	for i := 0; i < len(f); i++ {
		if f[i] != '%' {
			continue
		}
		if i+1 == len(f) {
			return fmt.Errorf("strftime format %s ends with a lone %%", QuoteValue(f))
		}
		i++
		if !strings.ContainsRune(StrftimeConversions, rune(f[i])) {
			return fmt.Errorf("strftime format %s: %%%c is not supported (use %s)", QuoteValue(f), f[i], strftimeList())
		}
	}
	return nil
}

// StrftimeConversions are the strftime conversions log-date knows.
const StrftimeConversions = "aAbBcdDeFHIjmMnpsSTyYzZ%"

func strftimeList() string {
	var b []string
	for _, c := range StrftimeConversions {
		b = append(b, "%"+string(c))
	}
	return strings.Join(b, " ")
}

// parseTouch reads touch-reload and the other single-path touch options.
func parseTouch(v string) (any, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil, fmt.Errorf("a file path is required")
	}
	return Touch{Path: filepath.Clean(v)}, nil
}

// parseTouchExec reads touch-exec's FILE COMMAND.
func parseTouchExec(v string) (any, error) {
	p, cmd, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok || p == "" || strings.TrimSpace(cmd) == "" {
		return nil, fmt.Errorf("touch-exec wants FILE COMMAND, got %s", QuoteValue(v))
	}
	return Touch{Path: filepath.Clean(p), Arg: strings.TrimSpace(cmd)}, nil
}

// decodeLog gathers the log and touch options into s. Warnings go to
// orig, the file as parsed (d.f is its emperor part in a vassal with an
// app).
func decodeLog(d *decoder, s *Spec, orig *File) {
	s.Log = LogSpec{
		To:       last[string](d, "logto"),
		To2:      last[string](d, "logto2"),
		MaxSize:  last[int64](d, "log-maxsize"),
		Backup:   last[string](d, "log-backupname"),
		Chown:    last[bool](d, "logfile-chown"),
		Chmod:    last[os.FileMode](d, "logfile-chmod"),
		Reopen:   last[bool](d, "log-reopen"),
		Truncate: last[bool](d, "log-truncate"),
		Date:     last[LogDate](d, "log-date"),
	}
	for _, e := range d.f.Entries {
		for _, name := range TouchOptions {
			if e.Key != name {
				continue
			}
			if t, ok := typed[Touch](d, e); ok {
				t.Action, t.Line, t.Ref = name, e.Line, d.f.LineRef(e.Line)
				s.Touches = append(s.Touches, t)
			}
		}
	}
	for _, name := range []string{"log-maxsize", "log-backupname", "logfile-chown", "logfile-chmod", "log-reopen", "log-truncate", "touch-logrotate", "touch-logreopen"} {
		// A warning, as uWSGI ignores these without a log file: an
		// existing file keeps working.
		if e, ok := d.f.Last(name); ok && s.Log.To == "" && s.Log.To2 == "" {
			orig.Warnings = append(orig.Warnings, Diag{File: d.f.Path, Line: e.Line, Warning: true,
				Message: name + " has no effect: there is no log file; add logto = /path/to/file (opened as root, before the jail) or logto2 (opened as the vassal's user, after the privilege drop)"})
		}
	}
}

func init() {
	const logTo = "Writes every line of the vassal's own log to this file: PID 1's records, the output of its hooks, daemons, cron jobs and app server. PID 1's records still go to the emperor's log too; the output of the vassal's processes goes only to the file. The file is opened with O_APPEND|O_CREAT (mode 0640), never through a symlink as its last component"
	register(
		&Option{Name: "logto", Aliases: []string{"daemonize"}, Scope: ScopeVassal, Kind: KindString, Restart: true,
			Validate: validateLogPath, Default: "(none: the emperor's log)",
			Doc:   logTo + ". Opened by PID 1 as root before the hooks and the jail, so the path is in the host's view and may be in a directory only root can write. As root, a symlink on the path is followed only when it and its directory belong to root and that directory is not writable by group or others; the directory is kept open, so a rotation or a reopen after the jail and the privilege drop happens in that same directory (as the vassal's user: it must be able to write there, see logfile-chown). A relative path is relative to PID 1's starting directory.",
			UWSGI: "Same moment (before the privilege drop) and same file. UDP addresses (HOST:PORT) are not supported. daemonize is an alias, as under uWSGI's Emperor (which turns daemonize into logto). Rotation and reopen use the directory opened at start, not the path again (uWSGI reopens the path as seen after its chroot)."},
		&Option{Name: "logto2", Aliases: []string{"daemonize2"}, Scope: ScopeVassal, Kind: KindString, Restart: true,
			Validate: validateLogPath, Default: "(none)",
			Doc:   logTo + ". Opened after the jail and the privilege drop, as the vassal's user, so the path is in the jail's view and the user's permissions apply; before that moment the vassal logs to logto if set, else to the emperor's log. A relative path is relative to PID 1's directory at that moment (before chdir).",
			UWSGI: "same (daemonize2 is an alias, as under uWSGI's Emperor). UDP addresses are not supported."},
		&Option{Name: "log-maxsize", Scope: ScopeVassal, Kind: KindString, Parse: parseSize, Default: "0",
			Doc:   "Rotates the log file by size: before a line would take the file past this many bytes (or k, M, G) it is renamed to log-backupname and a new file is started. 0 never rotates by size.",
			UWSGI: "uWSGI checks the size once per master cycle, so its file grows past the limit; here it never does, unless one line alone is bigger. No log-master needed."},
		&Option{Name: "log-backupname", Scope: ScopeVassal, Kind: KindString, Validate: validateLogPath, Default: "(the file's name + .UNIXTIME)",
			Doc:   "Name a rotated log file is renamed to (each rotation replaces the last backup). Without it each rotation keeps its own FILE.UNIXTIME. It is renamed in place, so it must be on the same filesystem as the log file; its directory is opened like the log file's (safely when root, with the vassal's permissions after the drop).",
			UWSGI: "same"},
		&Option{Name: "logfile-chown", Scope: ScopeVassal, Kind: KindBool, Restart: true, Default: "false",
			Doc:   "Gives the log file to the vassal's uid and gid (fchown on the open file, no path lookup) when PID 1 opens it as root, so that the tenant can read it and a rotation or reopen after the privilege drop can replace it.",
			UWSGI: "same"},
		&Option{Name: "logfile-chmod", Scope: ScopeVassal, Kind: KindString, Parse: parseLogChmod, Default: "(0640 at creation)",
			Doc:   "Mode of the log file, three octal digits (640), set with fchmod each time the file is opened or created (start, rotation, reopen). The owner must keep read and write.",
			UWSGI: "uWSGI sets it only when it opens logto, not on a rotation."},
		&Option{Name: "log-reopen", Scope: ScopeVassal, Kind: KindBool, Default: "false",
			Doc:   "Reopens the log file on every reload of the vassal (a touched vassal file, touch-reload, SIGHUP, emperor reload), so that a file moved away by logrotate is replaced. touch-logreopen and SIGUSR1 to the vassal's PID 1 ask for a reopen too, with or without this option.",
			UWSGI: "uWSGI has no signal for a reopen (its master FIFO's 'l' does it); SIGUSR1 is ours, after nginx."},
		&Option{Name: "log-truncate", Scope: ScopeVassal, Kind: KindBool, Default: "false",
			Doc:   "Empties the log file when the vassal starts.",
			UWSGI: "uWSGI also truncates when log-reopen reopens the file on a reload; here only at start."},
		&Option{Name: "log-date", Aliases: []string{"logdate", "log-prefix"}, Scope: ScopeVassal, Kind: KindString, Parse: parseLogDate, Default: "false",
			Doc:   "Prefixes each line of the vassal's processes in the log file with the date (true: \"Wed Dec  2 12:29:28 2026 - \") or with a strftime format and \" - \" (" + strftimeList() + "). PID 1's own records carry their time already. In the file write %% for each % of the format (%Y is a magic variable there, as in uWSGI).",
			UWSGI: "uWSGI prefixes its own lines; here the lines of the vassal's processes (the app server's included). log-prefix takes a strftime format too, as in uWSGI (it shares log-date's handler)."},
		&Option{Name: "touch-reload", Scope: ScopeVassal, Kind: KindString, List: true, Parse: parseTouch, Default: "(none)",
			Doc:   "Reloads the vassal when this file changes: created, removed, renamed over, or its mtime, inode or size changes. Repeatable. Watched with inotify (no poll) from inside the vassal, so the path is in the jail's view, relative to chdir when relative; the file and its directories may appear later, symlinks on the path are followed, and a symlink swapped to a new target counts as a change. The reload is the one a touch of the vassal file gets: the emperor reloads the vassal in place with its current file (same PID 1; daemons and the app server reload).",
			UWSGI: "uWSGI polls once a second and reacts only to a newer mtime in whole seconds (or the file appearing or going away); here any change is seen at once."},
		&Option{Name: "touch-chain-reload", Owner: OwnerShared, Scope: ScopeVassal, Kind: KindString, List: true, Parse: parseTouch, Default: "(none)",
			Doc:   "In a vassal that runs an app, handed to uWSGI: its master chain-reloads the workers one at a time when the file changes. In a vassal without an app, as touch-reload (there are no workers to reload one by one).",
			UWSGI: "same with an app (uWSGI's once-a-second check applies then); without one, a reload of the vassal, seen at once by inotify."},
		&Option{Name: "touch-workers-reload", Owner: OwnerShared, Scope: ScopeVassal, Kind: KindString, List: true, Parse: parseTouch, Default: "(none)",
			Doc:   "In a vassal that runs an app, handed to uWSGI: its master reloads only the workers when the file changes. In a vassal without an app, as touch-reload.",
			UWSGI: "same with an app (uWSGI's once-a-second check applies then); without one, a reload of the vassal, seen at once by inotify."},
		&Option{Name: "touch-logreopen", Scope: ScopeVassal, Kind: KindString, List: true, Parse: parseTouch, Default: "(none)",
			Doc:   "Reopens the log file (logto/logto2) when this file changes (as touch-reload sees changes): what logrotate's postrotate needs after it moved the file away.",
			UWSGI: "Watched with inotify, no log-master needed."},
		&Option{Name: "touch-logrotate", Scope: ScopeVassal, Kind: KindString, List: true, Parse: parseTouch, Default: "(none)",
			Doc:   "Rotates the log file (as log-maxsize would) when this file changes.",
			UWSGI: "Watched with inotify, no log-master needed."},
		&Option{Name: "touch-exec", Scope: ScopeVassal, Kind: KindString, List: true, Parse: parseTouchExec, Default: "(none)",
			Doc:   "FILE COMMAND: runs COMMAND (as attach-daemon runs a command: as the vassal's user, in its jail, output in its log) when FILE changes. A run still going when FILE changes again is not started twice.",
			UWSGI: "Watched with inotify instead of once a second."},
	)
}
