package vassalfile

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emperor-dev/emperor/hooks"
)

// Every family of every phase PID 1 runs is an option; call- lines run
// last in their phase, as in uWSGI.
func TestHookFamiliesAndOrder(t *testing.T) {
	for _, ph := range hooks.Phases {
		for _, fam := range hooks.Families {
			if _, ok := Lookup(fam.Prefix() + "-" + string(ph)); !ok {
				t.Errorf("%s-%s is not an option", fam.Prefix(), ph)
			}
		}
	}
	f := mustParse(t, "[uwsgi]\ncall-in-jail = sync\nexec-in-jail = e1\nhook-in-jail = !creat:/x\nhook-emperor-stop = print:bye\nhook-emperor-reload = print:again\n", ParseOptions{})
	s, err := Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range s.PhaseHooks(hooks.InJail) {
		got = append(got, h.String())
	}
	if want := "!creat (private: arguments not shown)|exec:e1|call:sync"; strings.Join(got, "|") != want {
		t.Fatalf("%s", strings.Join(got, "|"))
	}
	if len(s.PhaseHooks(hooks.EmperorStop)) != 1 || len(s.PhaseHooks(hooks.EmperorReload)) != 1 {
		t.Fatal("emperor phases missing")
	}
}

// Hook errors name file and line at check time.
func TestHookCheckErrors(t *testing.T) {
	for line, want := range map[string]string{
		"hook-as-root = callret:my_func /":        "calls the C function my_func",
		"call-as-user = my_init":                  "calls the C function my_init",
		"hook-pre-jail = alarm:mail x":            "uWSGI's alarms",
		"hook-as-user = symlink:/a /b":            "exec:ln -s",
		"hook-asap = chown2:/x www-data www-data": "is not a number",
		"exec-post-jail =":                        "needs an argument",
	} {
		_, err := parse(t, "[uwsgi]\n"+line+"\n", ParseOptions{})
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "app001.ini:2:") {
			t.Errorf("%q: got %v, want %q at line 2", line, err, want)
		}
	}
}

// The phases an Emperor runs from its own config, and emperor-lost, are
// accepted in a vassal file with a warning: uWSGI never runs them from
// there either.
func TestEmperorConfigPhasesWarn(t *testing.T) {
	for _, k := range []string{"hook-as-vassal", "exec-as-emperor", "call-as-emperor4", "hook-emperor-start", "hook-emperor-lost"} {
		f := mustParse(t, "[uwsgi]\n"+k+" = exec:true\n", ParseOptions{})
		if len(f.Warnings) != 1 || !strings.Contains(f.Warnings[0].String(), k) || len(f.Entries) != 0 {
			t.Errorf("%s: %v %v", k, f.Warnings, f.Entries)
		}
	}
}

// The app server's phases are uWSGI's: handed to it in a vassal that runs
// an app, checked as uWSGI 2.0.21 runs them, and an error that says why in
// a vassal without one.
func TestAppHookPhases(t *testing.T) {
	const app = "[uwsgi]\nhttp-socket = :9090\npsgi = /app/myapp.pl\n"
	lines := "hook-pre-app = !write:/tmp/key s3cr3t\nexec-post-app = echo loaded\nhook-accepting1-once = print:first worker ready\n" +
		"hook-master-start = callret:my_c_function\ncall-pre-app = my_init\nhook-touch = /tmp/flag exec:true\n"
	f := mustParse(t, app+lines, ParseOptions{})
	got := map[string]string{}
	for _, l := range BuildApp(f).Lines {
		got[l.Key] = l.Value
	}
	for k, v := range map[string]string{"hook-pre-app": "!write:/tmp/key s3cr3t", "exec-post-app": "echo loaded",
		"hook-accepting1-once": "print:first worker ready", "hook-master-start": "callret:my_c_function",
		"call-pre-app": "my_init", "hook-touch": "/tmp/flag exec:true"} {
		if got[k] != v {
			t.Errorf("%s: handed %q to uWSGI, want %q", k, got[k], v)
		}
	}
	s, err := Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Hooks) != 0 {
		t.Fatalf("PID 1 would run the app's hooks: %v", s.Hooks)
	}

	// What uWSGI would fail on is a check error, with an app.
	for line, want := range map[string]string{
		"hook-pre-app = symlink:/a /b":                 "exec:ln -s",
		"hook-post-app = sethostname:x":                "hostname, not sethostname",
		"hook-accepting = mount:none /a /b bind,slave": `"slave" is not a mount flag of uWSGI 2.0.21`,
		"hook-post-fork = chown:/x 33 33":              "write chown2",
		"hook-pre-app = ffi:x":                         "libffi plugin",
		"hook-touch = /only-a-file":                    "FILE ACTION:ARGS",
		"call-post-app = two words":                    "C function",
	} {
		_, err := parse(t, app+line+"\n", ParseOptions{})
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "app001.ini:4:") {
			t.Errorf("%q: got %v, want %q at line 4", line, err, want)
		}
	}

	// Without an app: an error that says where the phase runs, and never
	// a hint towards a phase run as root.
	for line, want := range map[string]string{
		"hook-pre-app = exec:./migrate": "hook-pre-app runs in the app server before the app loads; this vassal runs no app server (to run it as the tenant before the daemons start, write hook-as-user)",
		"exec-post-app = true":          "exec-post-app runs in the app server after the app loaded; this vassal runs no app server (to run it as the tenant before the daemons start, write exec-as-user)",
		"hook-accepting1 = print:x":     "hook-accepting1 runs in the app server's first worker when it starts accepting requests; this vassal runs no app server",
		"call-pre-app = my_init":        "call-pre-app runs in the app server before the app loads; this vassal runs no app server",
	} {
		_, err := parse(t, "[uwsgi]\nattach-daemon = sleep 1000\n"+line+"\n", ParseOptions{})
		if err == nil || !strings.Contains(err.Error(), "app001.ini:3: "+want) || strings.Contains(err.Error(), "jail") || strings.Contains(err.Error(), "as-root") {
			t.Errorf("%q: got %v, want %q", line, err, want)
		}
	}
}

// wait-for-* options become PID 1's hooks in uWSGI's order; wait-for-socket
// is uWSGI's in a vassal that runs an app.
func TestWaitOptionsDecode(t *testing.T) {
	f := mustParse(t, "[uwsgi]\nwait-for-mountpoint = /m\nwait-for-file = /f\nwait-iface = eth0\nwait-for-dir = /d\nwait-for-fs-timeout = 5\nwait-for-socket = 127.0.0.1:5432\nwait-for-socket-timeout = 0\n", ParseOptions{})
	s, err := Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range s.Waits {
		got = append(got, fmt.Sprintf("%s=%s/%v", h.Written, h.Args, h.Timeout))
	}
	if want := "wait-for-interface=eth0/1m0s wait-for-file=/f/5s wait-for-dir=/d/5s wait-for-mountpoint=/m/5s"; strings.Join(got, " ") != want {
		t.Fatalf("%s", strings.Join(got, " "))
	}
	if len(s.WaitSockets) != 1 || s.WaitSockets[0].Timeout != time.Minute || s.WaitSockets[0].Line != 7 {
		t.Fatalf("%+v", s.WaitSockets)
	}
	f = mustParse(t, "[uwsgi]\npsgi = /a.pl\nhttp-socket = :9090\nwait-for-socket = /run/db.sock\nwait-for-dir = /d\n", ParseOptions{})
	s, _ = Decode(f)
	if len(s.WaitSockets) != 0 || len(s.Waits) != 1 {
		t.Fatalf("%+v %+v", s.WaitSockets, s.Waits)
	}
	handed := false
	for _, l := range s.App.Lines {
		handed = handed || (l.Key == "wait-for-socket" && l.Value == "/run/db.sock")
		if l.Key == "wait-for-dir" {
			t.Fatal("wait-for-dir handed to uWSGI, which skips it as non-root")
		}
	}
	if !handed {
		t.Fatalf("wait-for-socket not handed to uWSGI: %+v", s.App.Lines)
	}
}
