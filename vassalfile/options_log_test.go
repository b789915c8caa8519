package vassalfile

import (
	"os"
	"strings"
	"testing"
)

func TestLogOptions(t *testing.T) {
	f, err := Parse("/v/a.ini", []byte("[uwsgi]\ndaemonize = /var/log/a.log\nlog-maxsize = 1M\nlog-backupname = /var/log/a.old\nlogfile-chmod = 640\nlogfile-chown = true\nlog-reopen = true\nlogdate = %%Y-%%m-%%d\n"), ParseOptions{})
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
