package vassalfile

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// writeTree writes files (path relative to dir: content) and returns dir.
func writeTree(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// includeTree uses every shape of inclusion uWSGI 2.0 has: ini = FILE,
// FILE:section, :section (the vassal file's own, then another file's
// again), nested inclusion (relative to the vassal's directory), include,
// an ini in an if-exists (and an ini = :section there) and in a for loop
// (with %(_)), inherit (read
// last, magic variables only), placeholders set in one file and used in
// another both ways, and the magic variables of each file.
var includeTree = map[string]string{
	"vassals/app.ini": `[uwsgi]
project = shop
ini = :local
print = after-local o=%o x=%x %(local_val)
print = app n=%n o=%o x=%x O=%O X=%X base=%(base_port)
ini = ../conf/base.ini
print = app-after port=%(base_port) n=%n fromsec=%(sec_val)
ini = ../conf/base.ini:extra
print = again n=%n o=%o x=%x d=%d
ini = :extra
print = last-file o=%o x=%x n=%n sec=%(sec_val)
if-exists = ../conf
ini = :extra
endif =
include = ../conf/inc.ini
if-exists = ../conf/cond.ini
ini = %(_)
endif =
if-exists = ../conf/nope.ini
ini = %(_)
endif =
for = one two
ini = ../conf/%(_).ini
endfor =
inherit = ../conf/tmpl.ini
print = end-of-app inc=%(inc_val)
[local]
print = local n=%n o=%o x=%x
local_val = L
`,
	"conf/base.ini": `[uwsgi]
base_port = 8000
print = base n=%n o=%o p=%p x=%x O=%O N=%N X=%X project=%(project) %(local_val)
ini = ../conf/nested.ini
[extra]
print = extra n=%n o=%o x=%x %(project)
sec_val = S
`,
	"conf/nested.ini": "[uwsgi]\nprint = nested n=%n o=%o d=%d c=%c 0=%0\n",
	"conf/inc.ini":    "[uwsgi]\nprint = inc n=%n o=%o\ninc_val = I\n",
	"conf/cond.ini":   "[uwsgi]\nprint = cond n=%n o=%o\n",
	"conf/one.ini":    "[uwsgi]\nprint = loop one n=%n o=%o\n",
	"conf/two.ini":    "[uwsgi]\nprint = loop two n=%n o=%o\n",
	"conf/tmpl.ini":   "[uwsgi]\nprint = tmpl n=%n o=%o O=%O x=%x\n",
}

// TestIncludeAgainstUWSGI runs the installed uWSGI 2.0 on includeTree as
// its Emperor starts a vassal (in the vassals directory, with the base
// name) and checks that it prints, in its order, what we read.
func TestIncludeAgainstUWSGI(t *testing.T) {
	bin, err := exec.LookPath("uwsgi")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("uwsgi is not installed (make deps)")
		}
		t.Skip("uwsgi is not installed (make deps)")
	}
	dir := writeTree(t, includeTree)
	vdir := filepath.Join(dir, "vassals")
	cmd := exec.Command(bin, "--ini", "app.ini")
	cmd.Dir = vdir
	out, _ := cmd.CombinedOutput() // it exits 1: the file asks for no socket
	var printed []string
	in := false
	for _, l := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(l, "[uWSGI] getting INI configuration from app.ini"):
			in = true
		case strings.HasPrefix(l, "*** Starting uWSGI"):
			in = false
		case in && !strings.HasPrefix(l, "[uWSGI]") && !strings.HasPrefix(l, "***"):
			printed = append(printed, l)
		}
	}
	if len(printed) < 15 {
		t.Fatalf("uwsgi printed:\n%s", out)
	}
	asEnv := func(b []byte) []byte { return []byte(strings.ReplaceAll(string(b), "print = ", "env = P=")) }
	f, err := Parse(filepath.Join(vdir, "app.ini"), asEnv([]byte(includeTree["vassals/app.ini"])), ParseOptions{
		ReadFile: func(p string) ([]byte, error) {
			b, err := ReadFile(p)
			return asEnv(b), err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	var ours []string
	for _, v := range envOf(f) {
		ours = append(ours, strings.TrimPrefix(v, "P="))
	}
	if strings.Join(ours, "\n") != strings.Join(printed, "\n") {
		t.Fatalf("uWSGI printed:\n%s\n\nwe read:\n%s", strings.Join(printed, "\n"), strings.Join(ours, "\n"))
	}
}

// TestIncludeErrors: every problem of an inclusion is an error naming the
// line (of the included file when it is in it, with the line that included
// it), and saying what to write.
func TestIncludeErrors(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"loop-a.ini":   "[uwsgi]\nini = loop-b.ini\n",
		"loop-b.ini":   "[uwsgi]\n\nini = loop-a.ini\n",
		"bad.ini":      "[uwsgi]\nchdir = /srv\nbogus-option = 1\n",
		"nosec.ini":    "[other]\nx = 1\n",
		"tmpl.ini":     "[uwsgi]\nenv = A=%(root)\n",
		"logic.ini":    "[uwsgi]\nif-env = HOME\nenv = A=1\nendif =\n",
		"open.ini":     "[uwsgi]\nif-env = HOME\nenv = A=1\n",
		"base.conf":    "[uwsgi]\nenv = A=1\n",
		"ok.ini":       "[uwsgi]\nenv = OK=1\n",
		"self.ini":     "[uwsgi]\nini = :s\n[s]\nini = self.ini\n",
		"big.ini":      "[uwsgi]\nenv = A=" + strings.Repeat("x", MaxFileSize/2) + "\n",
		"sub/deep.ini": "[uwsgi]\nenv = D=1\n",
	})
	for _, c := range []struct{ src, want string }{
		{"ini = missing.ini\n", dir + "/v.ini:2: ini = missing.ini: " + dir + "/missing.ini: no such file or directory"},
		{"ini = loop-a.ini\n", dir + "/loop-b.ini:3: ini = loop-a.ini: include loop: " + dir + "/v.ini:2 -> " + dir + "/loop-a.ini:2 -> " + dir + "/loop-b.ini:3 -> " + dir + "/loop-a.ini (uWSGI recurses until it crashes) (read by ini at " + dir + "/loop-a.ini:2, read by ini at " + dir + "/v.ini:2)"},
		{"ini = self.ini\n", "include loop: " + dir + "/v.ini:2 -> " + dir + "/self.ini:2 -> " + dir + "/self.ini:4 -> " + dir + "/self.ini"},
		{"ini = bad.ini\n", dir + "/bad.ini:3: unknown option \"bogus-option\" (nor a placeholder: no %(bogus-option) in the file refers to it) (read by ini at " + dir + "/v.ini:2)"},
		{"ini = nosec.ini\n", dir + "/v.ini:2: ini = nosec.ini: " + dir + "/nosec.ini has no [uwsgi] section"},
		{"ini = ok.ini:nope\n", "has no [nope] section"},
		{"include = base.conf\n", "include reads only names ending in .ini in uWSGI 2.0 (uWSGI exits \"unable to load configuration\"): rename the file, or write ini = base.conf"},
		{"include = ok.ini:s\n", "no :section (uWSGI exits \"unable to load configuration\"): write ini = ok.ini:s"},
		{"inherit = ok.ini:s\n", "inherit reads only names ending in .ini"},
		{"include = x.yaml\n", "the xml, yaml and json config formats are not supported"},
		{"yaml = x.yaml\n", "the yaml config format is not supported"},
		{"json = x.json\n", "the json config format is not supported"},
		{"xml = x.xml\n", "the xml config format is not supported"},
		{"declare-option = foo=bar\n", "declare-option is not supported"},
		{"resolve = ip=localhost\n", "resolve (a DNS lookup into a placeholder) is not supported"},
		{"ini = exec://cat /etc/x.ini\n", "uWSGI's URL forms"},
		{"ini = http://example.com/x.ini\n", "uWSGI's URL forms"},
		{"root = /x\nini = %(root)/x.ini\n", "\"%(root)\" is not expanded here: uWSGI reads the file before it expands them"},
		{"ini = $(HOME)/x.ini\n", "\"$(HOME)\" is not expanded here"},
		{"ini = @(name)\n", "\"@(name)\" is not expanded here"},
		{"ini =\n", dir + "/v.ini:2: ini: names no file"},
		{"set = ini=ok.ini\n", dir + "/v.ini:2: set = ini=...: write ini = ok.ini on a line of its own"},
		{"root = /x\ninherit = tmpl.ini\nenv = R=%(root)\n", dir + "/tmpl.ini:2: env: \"%(root)\" is not expanded here: uWSGI reads a file of inherit after it has expanded the others, and leaves them as text (read by inherit at " + dir + "/v.ini:3)"},
		{"for = a\nini = logic.ini\nendfor =\n", dir + "/logic.ini:2: if-env: logic blocks do not nest, and this file is read inside the for at " + dir + "/v.ini:2"},
		{"ini = open.ini\n", dir + "/open.ini:2: if-env opened here is never closed (missing endif) (read by ini at " + dir + "/v.ini:2)"},
		{"if-env = HOME\nini = ok.ini\nendif =\nini = :s\n", dir + "/v.ini:5: ini: \":s\" names the last file read, which depends on whether an ini or include inside a block above was read"},
		{"ini = big.ini\nini = big.ini\n", dir + "/v.ini:3: ini = big.ini: the vassal file and the files it includes (each time it is included) are over the 1048576 byte limit"},
		{"for-times = 300\nini = ok.ini\nendfor =\n", "this file reads more than 256 files"},
		{"for = a\ninherit = %(_).ini\nendfor =\n", dir + "/v.ini:3: inherit = a.ini: " + dir + "/a.ini: no such file or directory"},
	} {
		_, err := Parse(filepath.Join(dir, "v.ini"), []byte("[uwsgi]\n"+c.src), ParseOptions{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q:\n got %v\nwant %q", c.src, err, c.want)
		}
	}
	// a relative name is in the vassal file's directory, whichever file
	// names it
	if _, err := Parse(filepath.Join(dir, "v.ini"), []byte("[uwsgi]\ninclude = sub/deep.ini\n"), ParseOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestIncludeReadAsOwner: the files a vassal file names are read with its
// owner's credentials, so a tenant cannot read through the emperor what it
// could not read itself; only regular files are read, and a FIFO does not
// block, and if-exists and for-glob see only what it could. Run as root,
// the owner is nobody and the secret is root's 0600; run as a user, the
// secret is the user's own 0000 file.
func TestIncludeReadAsOwner(t *testing.T) {
	dir, err := os.MkdirTemp("", "include-owner")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	owner := &FileOwner{UID: os.Getuid(), GID: os.Getgid()}
	secretMode := os.FileMode(0)
	if os.Getuid() == 0 {
		owner = &FileOwner{UID: 65534, GID: 65534}
		secretMode = 0o600
	}
	for name, mode := range map[string]os.FileMode{"public.ini": 0o644, "secret.ini": secretMode, "secret": secretMode} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("[uwsgi]\nenv = S=1\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("secret.ini", filepath.Join(dir, "link.ini")); err != nil {
		t.Fatal(err)
	}
	if err := unixMkfifo(filepath.Join(dir, "fifo.ini")); err != nil {
		t.Fatal(err)
	}
	private := filepath.Join(dir, "private")
	if err := os.Mkdir(private, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(private, "a.txt"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if os.Getuid() != 0 {
		os.Chmod(private, 0)
		t.Cleanup(func() { os.Chmod(private, 0o700) })
	}
	o := ParseOptions{Owner: owner}
	// if-exists and for-glob look as the owner: they neither see nor list
	// what it could not
	f, err := Parse(filepath.Join(dir, "v.ini"), []byte("[uwsgi]\nif-exists = private/a.txt\nenv = SEEN=1\nendif =\nfor-glob = private/*\nenv = G=%(_)\nendfor =\n"), o)
	if err != nil {
		t.Fatal(err)
	}
	wantEnv(t, f, "G=private/*")
	f, err = Parse(filepath.Join(dir, "v.ini"), []byte("[uwsgi]\nini = public.ini\n"), o)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := f.Read[filepath.Join(dir, "public.ini")]; !ok || len(f.Sources) != 2 {
		t.Errorf("read %v, sources %v", f.Read, f.Sources)
	}
	for _, c := range []struct{ src, want string }{
		{"ini = secret.ini\n", "v.ini:2: ini = secret.ini: " + dir + "/secret.ini: permission denied"},
		{"include = link.ini\n", "v.ini:2: include = link.ini: " + dir + "/link.ini: permission denied"},
		{"env = A=@(secret)\n", "v.ini:2: env: @(secret): " + dir + "/secret: permission denied"},
		{"for-readline = secret\nenv = A=%(_)\nendfor =\n", "permission denied"},
		{"ini = fifo.ini\n", dir + "/fifo.ini: a FIFO, not a regular file: refusing to read it"},
		{"ini = " + dir + "\n", "a directory, not a regular file"},
	} {
		_, err := Parse(filepath.Join(dir, "v.ini"), []byte("[uwsgi]\n"+c.src), o)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q:\n got %v\nwant %q", c.src, err, c.want)
		}
		if os.Getuid() == 0 && err != nil && strings.Contains(c.want, "permission denied") && !strings.Contains(err.Error(), "read as uid 65534, the owner of the vassal file") {
			t.Errorf("%q: %v does not say whose credentials read it", c.src, err)
		}
	}
}

// TestIncludeFilesOnly: given ParseOptions.Files (the vassal's PID 1), a
// file is read only from them.
func TestIncludeFilesOnly(t *testing.T) {
	dir := writeTree(t, map[string]string{"base.ini": "[uwsgi]\nenv = FROM=disk\n"})
	files := map[string][]byte{filepath.Join(dir, "base.ini"): []byte("[uwsgi]\nenv = FROM=emperor\n")}
	f, err := Parse(filepath.Join(dir, "v.ini"), []byte("[uwsgi]\nini = base.ini\n"), ParseOptions{Files: files})
	if err != nil {
		t.Fatal(err)
	}
	wantEnv(t, f, "FROM=emperor")
	_, err = Parse(filepath.Join(dir, "v.ini"), []byte("[uwsgi]\nenv = A=@(other)\n"), ParseOptions{Files: files})
	if err == nil || !strings.Contains(err.Error(), "other was not read by the emperor's check of this file") {
		t.Errorf("got %v", err)
	}
}

func unixMkfifo(p string) error { return syscall.Mkfifo(p, 0o644) }

// TestIncludeDecodeLocates: an error found when the options are decoded
// (after the parse) is placed in the included file too, and so is a
// warning.
func TestIncludeDecodeLocates(t *testing.T) {
	dir := writeTree(t, map[string]string{"base.ini": "[uwsgi]\n\nstatic-map = /=/srv\nmaster = true\n"})
	f, err := Parse(filepath.Join(dir, "v.ini"), []byte("[uwsgi]\nini = base.ini\n"), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Decode(f)
	want := dir + "/base.ini:3: static-map: nothing serves this mount: add http-socket = 127.0.0.1:PORT (read by ini at " + dir + "/v.ini:2)"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v\nwant %q", err, want)
	}
	if len(f.Warnings) == 0 || f.Warnings[0].File != dir+"/base.ini" || f.Warnings[0].Line != 4 {
		t.Fatalf("warnings %v", f.Warnings)
	}
	if got := f.Where(f.Entries[0].Line); got != dir+"/base.ini:3" {
		t.Fatalf("Where = %q", got)
	}
}

// Runtime messages name a line of an included file by that file: the
// spec's Where and the refs of hooks, crons and touches.
func TestSpecLineRefs(t *testing.T) {
	d := writeTree(t, map[string]string{
		"base.ini": "[uwsgi]\nhook-as-user = exec:true\ncron = -1 -1 -1 -1 -1 true\ntouch-reload = /tmp/x\n",
		"v.ini":    "[uwsgi]\nini = base.ini\nhook-as-user = exec:false\n",
	})
	path := d + "/v.ini"
	f, err := ParseFile(path, ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Hooks) != 2 || s.Hooks[0].Ref != d+"/base.ini:2" || s.Hooks[1].Ref != "3" {
		t.Fatalf("hooks %+v", s.Hooks)
	}
	if len(s.Crons) != 1 || s.Crons[0].Ref != d+"/base.ini:3" {
		t.Fatalf("crons %+v", s.Crons)
	}
	if len(s.Touches) != 1 || s.Touches[0].Ref != d+"/base.ini:4" {
		t.Fatalf("touches %+v", s.Touches)
	}
	if got := s.Where(s.Hooks[0].Line); got != d+"/base.ini:2" {
		t.Fatalf("Where = %q", got)
	}
	if got := s.Where(3); got != path+":3" {
		t.Fatalf("Where(3) = %q", got)
	}
	if file, n := s.Position(s.Crons[0].Line); file != d+"/base.ini" || n != 3 {
		t.Fatalf("Position of the included cron = %q, %d", file, n)
	}
	if file, n := s.Position(3); file != "" || n != 3 {
		t.Fatalf("Position(3) = %q, %d", file, n)
	}
}
