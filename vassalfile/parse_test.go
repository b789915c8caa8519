package vassalfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emperor-dev/emperor/reexec"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func parse(t *testing.T, src string, o ParseOptions) (*File, error) {
	t.Helper()
	if o.Getenv == nil {
		o.Getenv = env(nil)
	}
	o.Hostname = "host1"
	o.Now = func() time.Time { return time.Unix(1700000000, 0) }
	return Parse("/etc/uwsgi/vassals/app001.ini", []byte(src), o)
}

func mustParse(t *testing.T, src string, o ParseOptions) *File {
	t.Helper()
	f, err := parse(t, src, o)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return f
}

func diags(t *testing.T, err error) Errors {
	t.Helper()
	var e Errors
	if !errors.As(err, &e) {
		t.Fatalf("want Errors, got %v", err)
	}
	return e
}

func TestTutorialZipVassal(t *testing.T) {
	src := `[uwsgi]
uid = user001
gid = user001

; mount FUSE filesystem under /app (but only if it is not a reload)
if-not-reload =
  attach-daemon = fuse-zip -f -r /var/www/app001.zip /app
endif =

attach-daemon = busybox httpd -f -p 9090 -h /app
`
	f := mustParse(t, src, ParseOptions{})
	if got := len(f.All("attach-daemon")); got != 2 {
		t.Fatalf("first start: %d daemons, want 2", got)
	}
	f = mustParse(t, src, ParseOptions{Reload: true})
	if got := len(f.All("attach-daemon")); got != 1 {
		t.Fatalf("reload: %d daemons, want 1", got)
	}
	s, err := Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if s.UID != "user001" || s.GID != "user001" || s.Name != "app001" {
		t.Fatalf("spec %+v", s)
	}
}

func TestMagicAndReferences(t *testing.T) {
	src := `[uwsgi]
uid = user001
chdir = /cow/%(uid)/%n/%e/%c/%s
env = P=%p
env = D=%d
env = H=%h
env = PCT=100%%
env = HOME_=$(HOME)
env = X=$(NOPE:-fallback)
set-placeholder = base=/ns
env = B=%(base)/precise
`
	f := mustParse(t, src, ParseOptions{Getenv: env(map[string]string{"HOME": "/root"})})
	s, _ := Decode(f)
	if s.Chdir != "/cow/user001/app001/ini/vassals/app001.ini" {
		t.Errorf("chdir = %q", s.Chdir)
	}
	want := []string{"P=/etc/uwsgi/vassals/app001.ini", "D=/etc/uwsgi/vassals/", "H=host1", "PCT=100%", "HOME_=/root", "X=fallback", "B=/ns/precise"}
	if strings.Join(s.Env, "|") != strings.Join(want, "|") {
		t.Errorf("env = %q\nwant %q", s.Env, want)
	}
}

func TestExpansionErrors(t *testing.T) {
	cases := map[string]string{
		"chdir = %q":            "unknown magic variable %q",
		"chdir = /x/%(nope)":    "unresolved reference %(nope)",
		"chdir = $(NOT_SET)":    "environment variable NOT_SET is not set",
		"chdir = /x/%":          "lone %",
		"chdir = %(uid":         "%( is not closed",
		"chdir = $(HOME":        "$( is not closed",
		"chdir = %(_)":          "%(_) has no value here",
		"uid = a\nchdir = %(g)": "unresolved reference %(g)",
	}
	for line, want := range cases {
		_, err := parse(t, "[uwsgi]\n"+line+"\n", ParseOptions{})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", line, err, want)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "/etc/uwsgi/vassals/app001.ini:") {
			t.Errorf("%q: error does not name the file and line: %v", line, err)
		}
	}
}

func TestRepeatedKeys(t *testing.T) {
	f := mustParse(t, "[uwsgi]\nchdir = /a\nenv = A=1\nchdir = /b\nenv = B=2\n", ParseOptions{})
	s, _ := Decode(f)
	if s.Chdir != "/b" || len(s.Env) != 2 || s.Env[0] != "A=1" {
		t.Fatalf("%+v", s)
	}
}

func TestSectionsAndComments(t *testing.T) {
	src := "chdir = /ignored-before-section\n[other]\nbogus = 1\n[uwsgi]\n# c\n; c\n  chdir  =  /x = y  \r\n[more]\nuid = 0\n"
	f := mustParse(t, src, ParseOptions{})
	if len(f.Entries) != 1 || f.Entries[0].Value != "/x = y" || f.Entries[0].Line != 7 {
		t.Fatalf("%+v", f.Entries)
	}
	_, err := parse(t, "[app]\nchdir=/x\n", ParseOptions{})
	if err == nil || !strings.Contains(err.Error(), "no [uwsgi] section") {
		t.Fatalf("got %v", err)
	}
}

func TestUnknownOptionHint(t *testing.T) {
	_, err := parse(t, "[uwsgi]\nattach-deamon = x\n", ParseOptions{})
	d := diags(t, err)
	if len(d) != 1 || d[0].Line != 2 || !strings.Contains(d[0].Message, `did you mean "attach-daemon"`) {
		t.Fatalf("%v", err)
	}
}

func TestPluginsWarnWithoutApp(t *testing.T) {
	f := mustParse(t, "[uwsgi]\nplugins-dir = /x\nplugin = psgi\nmaster = true\n", ParseOptions{})
	if len(f.Warnings) != 3 || !strings.Contains(f.Warnings[0].Message, "no effect: this vassal runs no app server") {
		t.Fatalf("warnings %v", f.Warnings)
	}
}

func TestTypedValues(t *testing.T) {
	cases := map[string]string{
		"no-initgroups = maybe":      "not a boolean",
		"reload-mercy = soon":        "not a duration",
		"env = NOEQUALS":             "KEY=VALUE",
		"shared-socket = nope":       "not [ADDR]:PORT",
		"shared-socket = :99999":     "bad port",
		"unshare = fs,bogus":         "unknown namespace",
		"smart-attach-daemon = only": "PIDFILE COMMAND",
		"emperor = /x":               "belongs in the emperor's config",
	}
	for line, want := range cases {
		_, err := parse(t, "[uwsgi]\n"+line+"\n", ParseOptions{})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", line, err, want)
		}
	}
}

func TestLogicBlocks(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	os.WriteFile(file, nil, 0o644)
	src := `[uwsgi]
set-ph = d=` + dir + `
if-dir = %(d)
env = DIR=%(_)
else =
env = NODIR=1
endif =
if-file = %(d)
env = WRONG=1
else =
env = NOTFILE=1
endif =
if-exists = ` + file + `
env = EXISTS=1
endif =
if-not-exists = %(d)/missing
env = MISSING=%(_)
endif =
if-env = MODE
env = MODE=%(_)
endif =
if-not-env = ABSENT
env = ABSENT=1
endif =
chdir = /srv
if-opt = chdir=/srv
env = OPT=%(_)
endif =
if-not-opt = uid
env = NOUID=1
endif =
if-reload =
env = RELOAD=1
endif =
for = a b c
env = F_%(_)=1
endfor =
for-times = 2
env = T%(_)=1
endfor =
`
	f := mustParse(t, src, ParseOptions{Getenv: env(map[string]string{"MODE": "prod"})})
	s, _ := Decode(f)
	want := []string{"DIR=" + dir, "NOTFILE=1", "EXISTS=1", "MISSING=" + dir + "/missing", "MODE=prod", "ABSENT=1", "OPT=/srv", "NOUID=1", "F_a=1", "F_b=1", "F_c=1", "T1=1", "T2=1"}
	if strings.Join(s.Env, " ") != strings.Join(want, " ") {
		t.Fatalf("env\n got %q\nwant %q", s.Env, want)
	}
}

// Conditions see expanded values: a condition on %(option) works, unlike
// uWSGI (issue #1513), and a false block's unresolved references are not errors.
func TestConditionAfterExpansion(t *testing.T) {
	src := "[uwsgi]\nset-ph = root=/definitely/missing\nif-exists = %(root)\nchdir = %(undefined)\nendif =\n"
	mustParse(t, src, ParseOptions{})
}

func TestNestingAndUnclosed(t *testing.T) {
	_, err := parse(t, "[uwsgi]\nif-not-reload =\nif-env = X\nenv = A=1\nendif =\nendif =\n", ParseOptions{})
	d := diags(t, err)
	if len(d) != 1 || d[0].Line != 3 || !strings.Contains(d[0].Message, "opened at line 2") {
		t.Fatalf("%v", err)
	}
	_, err = parse(t, "[uwsgi]\nuid = a\nif-not-reload =\nenv = A=1\n", ParseOptions{})
	d = diags(t, err)
	if len(d) != 1 || d[0].Line != 3 || !strings.Contains(d[0].Message, "never closed") {
		t.Fatalf("%v", err)
	}
	_, err = parse(t, "[uwsgi]\nendif =\nelse =\nendfor =\n", ParseOptions{})
	if d = diags(t, err); len(d) != 3 {
		t.Fatalf("%v", err)
	}
}

func TestAllErrorsReported(t *testing.T) {
	_, err := parse(t, "[uwsgi]\nbogus1 = 1\nuid = x\nbogus2 = 2\nnot a pair\n", ParseOptions{})
	d := diags(t, err)
	if len(d) != 3 || d[0].Line != 2 || d[1].Line != 4 || d[2].Line != 5 {
		t.Fatalf("%v", err)
	}
}

func TestLoopLimits(t *testing.T) {
	_, err := parse(t, "[uwsgi]\nfor-times = 100000000\nenv = A=1\nendfor =\n", ParseOptions{})
	if err == nil || !strings.Contains(err.Error(), "over the limit") {
		t.Fatalf("%v", err)
	}
}

func TestRestartReason(t *testing.T) {
	a := mustParse(t, "[uwsgi]\nuid = a\nenv = X=1\n", ParseOptions{})
	b := mustParse(t, "[uwsgi]\nuid = a\nenv = X=2\n", ParseOptions{})
	c := mustParse(t, "[uwsgi]\nuid = b\n", ParseOptions{})
	if r := RestartReason(a, b); r != "" {
		t.Fatalf("env change needs restart? %s", r)
	}
	if r := RestartReason(a, c); !strings.Contains(r, "uid changed") {
		t.Fatalf("got %q", r)
	}
}

func TestCloneFlags(t *testing.T) {
	ns, err := ParseCloneFlags("fs|pid,uts ipc net")
	if err != nil || ns != reexec.NSMount|reexec.NSPID|reexec.NSUTS|reexec.NSIPC|reexec.NSNet {
		t.Fatalf("%v %v", ns, err)
	}
	if ns, err := ParseCloneFlags("none"); err != nil || ns != 0 {
		t.Fatal(ns, err)
	}
	for _, bad := range []string{"", "fs,none", "user"} {
		if _, err := ParseCloneFlags(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestEmperorScope(t *testing.T) {
	f := mustParse(t, "[uwsgi]\nemperor = /etc/uwsgi/vassals\nemperor-use-clone = fs,pid,uts\nemperor-throttle = 500\nreload-mercy = 5\n", ParseOptions{Scope: ScopeEmperor})
	if len(f.Entries) != 4 {
		t.Fatal(f.Entries)
	}
	_, err := parse(t, "[uwsgi]\nattach-daemon = x\n", ParseOptions{Scope: ScopeEmperor})
	if err == nil || !strings.Contains(err.Error(), "belongs in a vassal file") {
		t.Fatal(err)
	}
}

func TestTutorialCowVassal(t *testing.T) {
	src := `[uwsgi]
plugins-dir = /ns/precise/opt/uwsgi/plugins
plugins-dir = /opt/uwsgi/plugins
plugin = psgi
uid = user001
gid = user001
hook-pre-jail = callret:chdir /
hook-pre-jail = exec:unionfs-fuse -ocow,chroot=/ns,default_permissions,allow_other /precise=RO:/cow/%(uid)=RW /ufs
pivot_root = /ufs /ufs/.old_root
hook-as-root = mount:proc none /proc
hook-as-root = mount:none /.old_root/dev /dev bind
hook-as-root = umount:/.old_root rec,detach
mountpoint-check = /
exec-as-user-atexit = fusermount -u /app
`
	f := mustParse(t, src, ParseOptions{})
	s, err := Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	pre := s.PhaseHooks("pre-jail")
	if len(pre) != 2 || pre[0].Action != "chdir" || !strings.Contains(pre[1].Args, "/cow/user001=RW") {
		t.Fatalf("pre-jail %+v", pre)
	}
	if s.PivotNew != "/ufs" || s.PivotOld != "/ufs/.old_root" || len(s.PhaseHooks("as-root")) != 3 {
		t.Fatalf("%+v", s)
	}
	if len(s.MountChecks) != 1 || s.CheckInterval != time.Second || s.CheckTimeout != 3*time.Second || s.HookTimeout != time.Minute {
		t.Fatalf("%+v", s)
	}
	if len(s.PhaseHooks("as-user-atexit")) != 1 {
		t.Fatal("atexit missing")
	}
}

func TestHookOrderWithinPhase(t *testing.T) {
	f := mustParse(t, "[uwsgi]\nexec-as-root = e1\numount-as-root = /u\nmount-as-root = proc none /proc\nhook-as-root = print:h1\nexec-as-root = e2\n", ParseOptions{})
	s, _ := Decode(f)
	var got []string
	for _, h := range s.PhaseHooks("as-root") {
		got = append(got, h.String())
	}
	want := "print:h1|mount:proc none /proc|umount:/u|exec:e1|exec:e2"
	if strings.Join(got, "|") != want {
		t.Fatalf("%s", strings.Join(got, "|"))
	}
}

func TestJailAndHookErrors(t *testing.T) {
	for line, want := range map[string]string{
		"hook-as-root = frob:x":               "unknown hook action",
		"hook-as-root = mount:none /a /b bnd": `unknown mount flag "bnd"`,
		"pivot_root = /ufs":                   "NEW_ROOT PUT_OLD",
		"pivot_root = /ufs /elsewhere":        "must be under the new root",
		"pivot_root = ufs ufs/old":            "absolute",
		"mountpoint-check = app":              "not an absolute path",
		"hook-as-wizard = exec:x":             "unknown option",
		"check-interval = often":              "not a duration",
	} {
		_, err := parse(t, "[uwsgi]\n"+line+"\n", ParseOptions{})
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "app001.ini:2:") {
			t.Errorf("%q: got %v, want %q at line 2", line, err, want)
		}
	}
	f := mustParse(t, "[uwsgi]\nchroot = /a\npivot_root = /b /b/old\n", ParseOptions{})
	if _, err := Decode(f); err == nil {
		t.Fatal("chroot and pivot_root together accepted")
	}
}
