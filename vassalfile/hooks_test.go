package vassalfile

import (
	"strings"
	"testing"

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
