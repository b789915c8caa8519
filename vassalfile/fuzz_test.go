package vassalfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzParse: no input may panic or hang the parser, every error names the
// file, and a successful parse decodes. The bounds hold for every input: the
// expanded values of a file sum to at most MaxExpansion, it sets at most
// MaxItems options, and its diagnostics are at most MaxErrors and a count,
// with an Error() string of a few KiB.
func FuzzParse(f *testing.F) {
	seeds := []string{
		"[uwsgi]\nuid = user001\nif-not-reload =\nattach-daemon = fuse-zip -r /a.zip /app\nendif =\n",
		"[uwsgi]\nhook-pre-jail = callret:chdir /\nchdir = /cow/%(uid)\n",
		"[uwsgi]\nfor = a b\nenv = X%(_)=1\nendfor =\n",
		"[uwsgi]\nenv = A=$(HOME:-x)%n%%%d\n",
		"[uwsgi]\nif-env = A\nelse =\nendif =\n[x]\n",
		"[uwsgi\n=\n%(\n$(\n",
		"[uwsgi]\nset-placeholder = a=xxxxxxxx\nset-placeholder = b=%(a)%(a)%(a)%(a)\nset-placeholder = c=%(b)%(b)%(b)%(b)\nfor-times = 10000\nenv = X%(_)=%(c)%(c)\nendfor =\n",
		"[uwsgi]\nfor-glob = /*\nprocesses = %(_)\nnope = 1\nendfor =\n",
		"[uwsgi]\ncheck-interval = nan\nhook-timeout = 1e300\nenv = A=\x00\n",
		"[uwsgi]\nenv = A=%(b * 2 + 1)%(b b)%(b ++)%(_ / 0)\nb = 9223372036854775807\nflag\nset = x=%(flag)\n",
		"[uwsgi]\nenv = A=@(f)@($(HOME)/%(b))@(@(x))\nb = %(c)\nc = %(b)\nfor-readline = lines\nenv = L=%(_)\nend =\n",
		"[uwsgi]\nif-hostname-match = (h\nelse =\nifplugin = python3\nendfor =\nifenv = X=1\nenv = E=%(_)\nend-if =\n",
		"[uwsgi]\nenv = M=%o%p%s%n%e%d%c%x%0%9%O%J%j%i%v%k%u%U%g%G%[%b%V\nif-env = NO\nchdri = x\nendif =\n",
		"[uwsgi]\nhttp-socket = /run/a.sock\nthreads = x\npsgi = /app/myapp.pl\nmaster = true\n",
		"[uwsgi]\nhttp11-socket = :1\nstatic-map = /=/srv\nstatic-cache-ttl = 1\nsocket = :2\nplugins = python3\n",
		// inclusion: the files of includeFiles, in a temp dir
		"[uwsgi]\nini = a.ini\n",
		"[uwsgi]\nini = c.ini:uwsgi\nb_ph = 2\nenv = P=%(placeholder)\n",
		"[uwsgi]\nfor = a b c t\nini = %(_).ini\nendfor =\ninherit = t.ini\n",
		"[uwsgi]\nif-exists = /\ninclude = c.ini\nendif =\nini = :s\n[s]\nenv = X=%x%X%o%O\n",
		"[uwsgi]\nini = :s\n[s]\nini = fz.ini:s\n",
		"[uwsgi]\nfor-times = 300\nini = big.ini\nendfor =\n",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	dir := f.TempDir()
	for name, content := range includeFiles {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, src string) {
		o := ParseOptions{
			Getenv:   func(k string) (string, bool) { return strings.Repeat("v", len(k)%4), len(k)%2 == 0 },
			Glob:     func(string) ([]string, error) { return []string{"g1", "g2"}, nil },
			Hostname: "h",
			Now:      func() time.Time { return time.Unix(0, 0) },
			ReadFile: func(p string) ([]byte, error) {
				if strings.HasPrefix(p, dir+"/") {
					return ReadFile(p)
				}
				if len(p)%3 == 0 {
					return nil, errors.New("no such file")
				}
				return []byte(strings.Repeat(p+"\n", len(p)%5)), nil
			},
			UWSGI: "/nonexistent/uwsgi",
		}
		file, err := Parse(filepath.Join(dir, "fz.ini"), []byte(src), o)
		if file != nil {
			total := 0
			for _, e := range file.Entries {
				total += len(e.Value)
			}
			if total > MaxExpansion || len(file.Entries) > MaxItems {
				t.Fatalf("%d entries of %d bytes in all: over the bounds", len(file.Entries), total)
			}
			if len(file.Warnings) > MaxErrors+1 {
				t.Fatalf("%d warnings kept", len(file.Warnings))
			}
		}
		if err != nil {
			var e Errors
			if !errors.As(err, &e) || len(e) == 0 {
				t.Fatalf("error is not Errors: %v", err)
			}
			for _, d := range e {
				if d.File != filepath.Join(dir, "fz.ini") && !isSource(file, d.File) {
					t.Fatalf("diag without the file it is about: %v", d)
				}
			}
			if len(e) > MaxErrors+1 || len(e.Error()) > 4<<10 {
				t.Fatalf("%d diagnostics, Error() of %d bytes: over the bounds", len(e), len(e.Error()))
			}
			return
		}
		// Decode checks what spans lines (a static-map that nothing
		// serves, say): its errors are diagnostics too, each naming the
		// file it is about and a line of it.
		if _, err := Decode(file); err != nil {
			var e Errors
			if !errors.As(err, &e) || len(e) == 0 {
				t.Fatalf("decode error is not Errors: %v", err)
			}
			for _, d := range e {
				if (d.File != filepath.Join(dir, "fz.ini") && !isSource(file, d.File)) || d.Line <= 0 {
					t.Fatalf("decode diagnostic without its file and line: %+v", d)
				}
			}
		}
	})
}

// includeFiles are the files the fuzz seeds include: loops of inclusion,
// sections, placeholders used across files, a template, a file that the
// limits stop.
var includeFiles = map[string]string{
	"a.ini":   "[uwsgi]\nenv = A=%n%o%x%p\nini = b.ini\n[s]\nenv = S=1\nini = :s\n",
	"b.ini":   "[uwsgi]\ninclude = a.ini\nb_ph = 1\n",
	"c.ini":   "[uwsgi]\nif-env = X\nenv = C=1\nendif =\nplaceholder = %(b_ph)\n",
	"t.ini":   "[uwsgi]\nenv = T=%n\nprocesses = 2\ninherit = t.ini\n",
	"big.ini": "[uwsgi]\nenv = B=" + strings.Repeat("b", 1<<14) + "\n",
}

// isSource says whether path is a file that f read.
func isSource(f *File, path string) bool {
	if f == nil {
		return false
	}
	for _, s := range f.Sources {
		if s.Path == path {
			return true
		}
	}
	return false
}
