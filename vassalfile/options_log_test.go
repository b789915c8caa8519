package vassalfile

import (
	"os"
	"strings"
	"testing"
)

func TestLogOptions(t *testing.T) {
	f, err := Parse("/v/a.ini", []byte("[uwsgi]\ndaemonize = /var/log/a.log\nlog-maxsize = 1M\nlog-backupname = /var/log/a.old\nlogfile-chmod = 640\nlogfile-chown = true\nlog-reopen = true\nlogdate = %%Y-%%m-%%d\ntouch-reload = /app/reload\ntouch-exec = /app/x echo hi there\ntouch-logreopen = /app/reopen\n"), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	want := LogSpec{To: "/var/log/a.log", MaxSize: 1 << 20, Backup: "/var/log/a.old", Chown: true, Chmod: os.FileMode(0o640), Reopen: true, Date: LogDate{On: true, Format: "%Y-%m-%d"}}
	if s.Log != want {
		t.Errorf("log spec %+v, want %+v", s.Log, want)
	}
	if len(s.Touches) != 3 || s.Touches[1].Action != "touch-exec" || s.Touches[1].Path != "/app/x" || s.Touches[1].Arg != "echo hi there" || s.Touches[2].Line != 11 {
		t.Errorf("touches %+v", s.Touches)
	}
	if len(f.Warnings) != 0 {
		t.Errorf("warnings %v", f.Warnings)
	}
}

func TestLogOptionErrors(t *testing.T) {
	for _, c := range []struct{ line, want string }{
		{"logto = 127.0.0.1:514", "UDP"},
		{"logto = /var/log/", "directory"},
		{"logfile-chmod = 64", "three octal digits"},
		{"logfile-chmod = 440", "owner unable"},
		{"log-date = %%Q", "%Q is not supported"},
		{"touch-exec = /app/x", "FILE COMMAND"},
		{"log-maxsize = lots", "not a size"},
	} {
		_, err := Parse("/v/a.ini", []byte("[uwsgi]\n"+c.line+"\n"), ParseOptions{})
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "a.ini:2") {
			t.Errorf("%s: %v, want an error at line 2 saying %q", c.line, err, c.want)
		}
	}
	f, err := Parse("/v/a.ini", []byte("[uwsgi]\nlog-maxsize = 10\n"), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decode(f); err != nil {
		t.Fatal(err)
	}
	if len(f.Warnings) != 1 || !strings.Contains(f.Warnings[0].String(), "a.ini:2: warning: log-maxsize has no effect") {
		t.Errorf("warnings %v", f.Warnings)
	}
}

// touch-chain-reload and touch-workers-reload are uWSGI's in a vassal that
// runs an app (its master reloads the workers), ours otherwise;
// touch-reload and the log options are ours either way.
func TestTouchOwners(t *testing.T) {
	body := "[uwsgi]\ntouch-reload = /app/r\ntouch-chain-reload = /app/c\ntouch-workers-reload = /app/w\nlog-maxsize = 1M\n"
	f, err := Parse("/v/a.ini", []byte(body), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Touches) != 3 || s.App != nil {
		t.Errorf("without an app: touches %+v, app %v", s.Touches, s.App)
	}
	f, err = Parse("/v/a.ini", []byte(body+"module = app\nsocket = 127.0.0.1:3031\n"), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s, err = Decode(f); err != nil {
		t.Fatal(err)
	}
	if len(s.Touches) != 1 || s.Touches[0].Action != "touch-reload" {
		t.Errorf("with an app: touches %+v, want only touch-reload", s.Touches)
	}
	var keys []string
	for _, l := range s.App.Lines {
		keys = append(keys, l.Key)
	}
	if got := strings.Join(keys, " "); !strings.Contains(got, "touch-chain-reload touch-workers-reload") || strings.Contains(got, "touch-reload ") || strings.Contains(got, "log-maxsize") {
		t.Errorf("app lines %s", got)
	}
	var warned bool
	for _, w := range f.Warnings {
		warned = warned || strings.Contains(w.Message, "log-maxsize has no effect")
	}
	if !warned {
		t.Errorf("with an app, log-maxsize without a log file is not warned about: %v", f.Warnings)
	}
}
