// Package emperor is the daemon side: it watches a directory of vassal
// files, keeps a table of vassals, spawns each as PID 1 of its own
// namespaces, restarts it with backoff when it dies, reloads it in place when
// its file changes and stops it, without a trace, when its file goes.
package emperor

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/emperor-dev/emperor/reexec"
	"github.com/emperor-dev/emperor/restart"
	"github.com/emperor-dev/emperor/sdnotify"
	"github.com/emperor-dev/emperor/vassalfile"
)

// DefaultControlPath is where the control socket lives unless --control says
// otherwise.
const DefaultControlPath = "/run/emperor/control.sock"

// Config is how an emperor runs. DefaultConfig gives uWSGI's defaults, except
// for Namespaces (fs,pid rather than none).
type Config struct {
	// VassalsDir is the directory of *.ini vassal files (emperor =).
	VassalsDir string
	// ControlPath is the unix socket that `emperor status` talks to.
	ControlPath string
	// Namespaces every vassal is cloned into (emperor-use-clone); a vassal's
	// own unshare adds to them.
	Namespaces reexec.Namespaces
	// Throttle is the first backoff step (emperor-throttle); it doubles up
	// to MaxThrottle (emperor-max-throttle). See package restart.
	Throttle    time.Duration
	MaxThrottle time.Duration
	// RestartBurst is how many failures in a row a vassal that became
	// ready is restarted at once for (emperor-restart-burst).
	RestartBurst int
	// RestartHalfLife is the running time after which the failure count
	// has halved (emperor-restart-half-life).
	RestartHalfLife time.Duration
	// Rescan is the interval of the safety-net rescan (emperor-freq).
	Rescan time.Duration
	// Mercy is reload-mercy: how long a vassal has after SIGTERM before
	// SIGKILL, unless its own file sets reload-mercy.
	Mercy time.Duration
	// CheckTimeout bounds the check of one vassal file (stat, read,
	// evaluation); see DefaultCheckTimeout. Not an ini option.
	CheckTimeout time.Duration
	// Logger gets every line; each vassal's lines carry vassal=NAME.
	Logger *slog.Logger
	// Stats is the address of the emperor-stats server ("": none).
	Stats string
	// Notifier tells systemd (Type=notify) when the emperor is ready,
	// reloading or stopping, and how many vassals it governs, and feeds
	// its watchdog; nil: not started by a service manager.
	Notifier *sdnotify.Notifier
	// LogFormat is Logger's format, which every vassal's PID 1 uses too
	// (they share stderr).
	LogFormat reexec.LogFormat
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		ControlPath:     DefaultControlPath,
		Namespaces:      reexec.DefaultNamespaces,
		Throttle:        restart.DefaultThrottle,
		MaxThrottle:     restart.DefaultMaxThrottle,
		RestartBurst:    restart.DefaultBurst,
		RestartHalfLife: restart.DefaultHalfLife,
		Rescan:          vassalfile.DefaultOf[time.Duration]("emperor-freq"),
		Mercy:           vassalfile.DefaultOf[time.Duration]("reload-mercy"),
	}
}

// Policy is the restart policy of the vassals and of their attached
// daemons.
func (c *Config) Policy() restart.Policy {
	return restart.Policy{Throttle: c.Throttle, MaxThrottle: c.MaxThrottle, Burst: c.RestartBurst, HalfLife: c.RestartHalfLife}
}

// LoadFile applies the [uwsgi] section of an emperor config file (emperor,
// emperor-use-clone, emperor-throttle, emperor-max-throttle,
// emperor-restart-burst, emperor-restart-half-life, emperor-freq,
// reload-mercy, emperor-stats; emperor-healthy-time is accepted with a warning). Errors
// name the file and line; nothing is applied unless the whole file is valid.
func (c *Config) LoadFile(path string) error {
	f, err := vassalfile.ParseFile(path, vassalfile.ParseOptions{Scope: vassalfile.ScopeEmperor})
	if err != nil {
		return err
	}
	next := *c
	warnings := f.Warnings
	for _, e := range f.Entries {
		if e.Key == "emperor-healthy-time" {
			warnings = append(warnings, f.Locate([]vassalfile.Diag{{File: path, Line: e.Line, Message: HealthyTimeWarning, Warning: true}})...)
			continue
		}
		next.apply(e)
	}
	if next.MaxThrottle < next.Throttle {
		line := 0
		if e, ok := f.Last("emperor-max-throttle"); ok {
			line = e.Line
		}
		return vassalfile.Errors(f.Locate([]vassalfile.Diag{{File: path, Line: line, Message: fmt.Sprintf("emperor-max-throttle (%v) is below emperor-throttle (%v)", next.MaxThrottle, next.Throttle)}}))
	}
	for _, w := range warnings {
		if c.Logger != nil {
			c.Logger.Warn(w.String())
		}
	}
	*c = next
	return nil
}

// HealthyTimeWarning is logged for emperor-healthy-time, which the restart
// policy of package restart replaced: files that set it keep working.
const HealthyTimeWarning = "emperor-healthy-time is no longer used and is ignored: a vassal that became ready is restarted at once for its first emperor-restart-burst failures, counted with a decay of emperor-restart-half-life (see docs/emperor.md, Restart policy)"

// apply sets one option from its value, parsed and range-checked once by
// the parser.
func (c *Config) apply(e vassalfile.Entry) {
	switch e.Key {
	case "emperor":
		c.VassalsDir = e.Value
	case "emperor-use-clone":
		c.Namespaces = e.Val.(reexec.Namespaces)
	case "emperor-throttle":
		c.Throttle = e.Val.(time.Duration)
	case "emperor-max-throttle":
		c.MaxThrottle = e.Val.(time.Duration)
	case "emperor-restart-burst":
		c.RestartBurst = e.Val.(int)
	case "emperor-restart-half-life":
		c.RestartHalfLife = e.Val.(time.Duration)
	case "emperor-freq":
		c.Rescan = e.Val.(time.Duration)
	case "reload-mercy":
		c.Mercy = e.Val.(time.Duration)
	case "emperor-stats":
		c.Stats = e.Value
	}
}

// normalize fills what a Config built by hand (not by DefaultConfig) may
// have left zero.
func (c *Config) normalize() {
	if c.Rescan <= 0 {
		c.Rescan = vassalfile.DefaultOf[time.Duration]("emperor-freq")
	}
	if c.Mercy <= 0 {
		c.Mercy = vassalfile.DefaultOf[time.Duration]("reload-mercy")
	}
	if c.MaxThrottle < c.Throttle {
		c.MaxThrottle = c.Throttle
	}
	if c.CheckTimeout <= 0 {
		c.CheckTimeout = DefaultCheckTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// check is what the daemon needs on top: a directory and a control socket.
func (c *Config) check() error {
	c.normalize()
	if c.VassalsDir == "" {
		return fmt.Errorf("no vassal directory: give --vassals DIR or emperor = DIR in --config")
	}
	if c.ControlPath == "" {
		return fmt.Errorf("no control socket path (--control)")
	}
	return nil
}
