package hooks

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/emperor-dev/emperor/mount"
)

func TestParseTutorialHooks(t *testing.T) {
	for _, c := range []struct {
		phase Phase
		line  string
		act   string
		args  string
	}{
		{PreJail, "callret:chdir /", "chdir", "/"},
		{PreJail, "exec:unionfs-fuse -ocow,chroot=/ns,default_permissions,allow_other /precise=RO:/cow/user001=RW /ufs", "exec", "unionfs-fuse -ocow,chroot=/ns,default_permissions,allow_other /precise=RO:/cow/user001=RW /ufs"},
		{AsRoot, "mount:proc none /proc", "mount", "proc none /proc"},
		{AsRoot, "mount:none /.old_root/dev /dev bind", "mount", "none /.old_root/dev /dev bind"},
		{AsRoot, "umount:/.old_root rec,detach", "umount", "/.old_root rec,detach"},
		{AsRoot, "cd:/tmp", "chdir", "/tmp"},
		{AsUser, "writen:/tmp/f hello world", "writen", "/tmp/f hello world"},
		{AsUser, "sethostname:box", "hostname", "box"},
	} {
		h, err := Parse(c.phase, c.line, 7)
		if err != nil {
			t.Fatalf("%q: %v", c.line, err)
		}
		if h.Action != c.act || h.Args != c.args || h.Line != 7 || h.Phase != c.phase {
			t.Fatalf("%q: %+v", c.line, h)
		}
	}
	h, _ := Parse(AsRoot, "mount:none /.old_root/dev /dev bind", 1)
	if h.mount.fstype != "" || h.mount.source != "/.old_root/dev" || h.mount.flags == 0 {
		t.Fatalf("%+v", h.mount)
	}
	h, _ = Parse(AsRoot, "umount:/.old_root rec,detach", 1)
	if !h.umount.rec || h.umount.flags == 0 {
		t.Fatalf("%+v", h.umount)
	}
}

func TestParseErrors(t *testing.T) {
	for line, want := range map[string]string{
		"noaction":                     "not action:arguments",
		"frobnicate:x":                 "unknown hook action",
		"creta:/x":                     `did you mean creat?`,
		"symlink:/a /b":                "not a hook action of uWSGI 2.0: write exec:ln -s",
		"alarm:mail hello":             "PID 1 has none",
		"unix_signal:10 myfunc":        "no C symbols",
		"callret:my_c_function /":      "calls the C function my_c_function",
		"callint:chdir 3":              "passes a number to chdir",
		"callret:sleep 3":              "passes a string to sleep",
		"callret:sync now":             "takes no argument",
		"chown2:/x root 0":             `uid "root" is not a number`,
		"chown2:/x 0":                  "PATH UID GID",
		"chmod:/x 17777":               "not an octal mode",
		"exit:300":                     "from 0 to 255",
		"wait_for_socket:127.0.0.1:x":  "not a number from 1 to 65535",
		"appendn:":                     "FILE [DATA]",
		"mount:proc /proc":             "wants FSTYPE SOURCE TARGET",
		"mount:none /a /b bind,wobbly": `unknown mount flag "wobbly"`,
		"umount:/x rec,sideways":       `unknown umount flag "sideways"`,
		"call:my_c_function":           "calls the C function",
		"exec:":                        "needs an argument",
		"chmod:/x rwx":                 "not an octal mode",
		"putenv:NOEQ":                  "KEY=VALUE",
		"write:/only-a-file":           "FILE DATA",
		"chown:/x -1 0":                `user "-1": negative id`,
		"chown:/x 0 -2":                `group "-2": negative id`,
		"chown:/x 4294967295 0":        `user "4294967295": id out of range`,
		"chown:/x root":                "PATH USER GROUP",
	} {
		_, err := Parse(AsRoot, line, 1)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", line, err, want)
		}
	}
}

func TestFamilies(t *testing.T) {
	h, err := ParseFamily(AsRoot, FamilyMount, "tmpfs none /tmp nosuid,nodev size=1m", 3)
	if err != nil || h.Family != FamilyMount || h.mount.data != "size=1m" {
		t.Fatalf("%+v %v", h, err)
	}
	if _, err := ParseFamily(AsRoot, FamilyUmount, "/a b c", 3); err == nil {
		t.Fatal("bad umount accepted")
	}
}

// A failed mount hook names the hook and line, and wraps a *mount.Error
// with the decoded flags.
func TestMountHookError(t *testing.T) {
	missing := t.TempDir() + "/missing"
	h, err := Parse(AsRoot, "mount:none "+missing+" "+missing+" bind,rec", 4)
	if err != nil {
		t.Fatal(err)
	}
	err = RunPhase([]Hook{h}, nil, time.Minute, slog.New(slog.DiscardHandler))
	var me *mount.Error
	if !errors.As(err, &me) || me.Op != "mount" || me.Flags != "MS_BIND|MS_REC" || me.Target != missing {
		t.Fatalf("got %v", err)
	}
	if !strings.Contains(err.Error(), "line 4") || !strings.Contains(err.Error(), "MS_BIND|MS_REC") {
		t.Fatalf("got %q", err)
	}
}

// chown resolves through userdb: a negative id never reaches chown(2)
// (where -1 means "leave unchanged") even when the hook was built without
// Parse.
func TestChownRejectsNegativeIDs(t *testing.T) {
	h := Hook{Phase: AsUser, Action: "chown", Args: t.TempDir() + " -1 -1"}
	err := run(t.Context(), &h, &runner{log: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), "negative id") {
		t.Fatalf("got %v", err)
	}
}
