package vassal

import (
	"github.com/emperor-dev/emperor/vassalfile"
)

// logTo is the logto component (first in the list: opened as root before
// the hooks and the jail) or, late, the logto2 component (right after the
// privilege drop, as the tenant). Both put their file in the vassal's log
// sink (logfile.go); logto2 replaces logto's file, as in uWSGI.
//
// The file outlives Stop on purpose: the records that say why the vassal
// stops or failed to start come after the components stopped, and belong in
// the tenant's file. PID 1 closes it when it exits (closeLog).
type logTo struct {
	v    *vassal
	late bool
	w    *logWriter
}

func (l *logTo) path(s *vassalfile.Spec) string {
	if l.late {
		return s.Log.To2
	}
	return s.Log.To
}

func (l *logTo) Start(c *config) error {
	path := l.path(c.spec)
	if path == "" {
		return nil
	}
	dir, name, err := openLogDir(path)
	if err != nil {
		return err
	}
	f, err := openLogIn(dir, name, c.spec.Log.Truncate)
	if err != nil {
		dir.Close()
		return &LogFileError{Op: "open", Path: path, Err: err}
	}
	fail := func(err error) error { f.Close(); dir.Close(); return err }
	if c.spec.Log.Chown && c.creds.Set && !l.late {
		if err := chownLog(f, c.creds.UID, c.creds.GID); err != nil {
			return fail(&LogFileError{Op: "chown (logfile-chown)", Path: path, Err: err})
		}
	}
	if m := c.spec.Log.Chmod; m != 0 {
		if err := chmodLog(f, m); err != nil {
			return fail(&LogFileError{Op: "chmod (logfile-chmod)", Path: path, Err: err})
		}
	}
	cfg, err := logConfigOf(c.spec)
	if err != nil {
		return fail(err)
	}
	l.w = newLogWriter(path, dir, name, f, cfg, l.v.report)
	if old := l.v.sink.swap(l.w); old != nil {
		old.close(logCloseWait)
	}
	l.v.log.Info("vassal log file opened", "logto", path)
	return nil
}

// Apply hands the new rotation settings to the writer, and reopens the file
// when log-reopen is set. A change of the file itself needs a restart
// (logto and logto2 are Restart options).
func (l *logTo) Apply(old, new *config) error {
	if l.w == nil || l.v.sink.writer() != l.w {
		return nil // none, or logto's file replaced by logto2's
	}
	cfg, err := logConfigOf(new.spec)
	if err != nil {
		return err
	}
	l.w.configure(cfg)
	if new.spec.Log.Reopen {
		l.w.requestReopen("log-reopen on reload")
	}
	return nil
}

func (l *logTo) Stop() {}

// logConfigOf is the writer's config for spec; it opens log-backupname's
// directory (see openLogDir).
func logConfigOf(s *vassalfile.Spec) (logConfig, error) {
	cfg := logConfig{maxSize: s.Log.MaxSize, chmod: s.Log.Chmod, date: s.Log.Date}
	if s.Log.Backup != "" {
		bdir, bname, err := openLogDir(s.Log.Backup)
		if err != nil {
			return cfg, err
		}
		cfg.bdir, cfg.bname = bdir, bname
	}
	return cfg, nil
}

// closeLog writes the vassal's last lines and closes its log file, as PID
// 1 exits.
func (v *vassal) closeLog() {
	if w := v.sink.swap(nil); w != nil {
		w.close(logCloseWait)
	}
}

// reopenLog asks for the log file to be reopened (SIGUSR1,
// touch-logreopen).
func (v *vassal) reopenLog(why string) {
	if w := v.sink.writer(); w != nil {
		w.requestReopen(why)
		return
	}
	v.log.Info("no log file to reopen (no logto or logto2)", "asked_by", why)
}

// rotateLog asks for a rotation (touch-logrotate).
func (v *vassal) rotateLog(why string) {
	if w := v.sink.writer(); w != nil {
		w.requestRotate(why)
		return
	}
	v.log.Info("no log file to rotate (no logto or logto2)", "asked_by", why)
}
