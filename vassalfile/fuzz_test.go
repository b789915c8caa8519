package vassalfile

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzParse: no input may panic or hang the parser, every error names the
// file, and a successful parse decodes.
func FuzzParse(f *testing.F) {
	seeds := []string{
		"[uwsgi]\nuid = user001\nif-not-reload =\nattach-daemon = fuse-zip -r /a.zip /app\nendif =\n",
		"[uwsgi]\nhook-pre-jail = callret:chdir /\nchdir = /cow/%(uid)\n",
		"[uwsgi]\nfor = a b\nenv = X%(_)=1\nendfor =\n",
		"[uwsgi]\nenv = A=$(HOME:-x)%n%%%d\n",
		"[uwsgi]\nif-env = A\nelse =\nendif =\n[x]\n",
		"[uwsgi\n=\n%(\n$(\n",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		o := ParseOptions{
			Getenv:   func(k string) (string, bool) { return strings.Repeat("v", len(k)%4), len(k)%2 == 0 },
			Glob:     func(string) ([]string, error) { return []string{"g1", "g2"}, nil },
			Hostname: "h",
			Now:      func() time.Time { return time.Unix(0, 0) },
		}
		file, err := Parse("/v/fz.ini", []byte(src), o)
		if err != nil {
			var e Errors
			if !errors.As(err, &e) || len(e) == 0 {
				t.Fatalf("error is not Errors: %v", err)
			}
			for _, d := range e {
				if d.File != "/v/fz.ini" {
					t.Fatalf("diag without file: %v", d)
				}
			}
			return
		}
		if _, err := Decode(file); err != nil {
			t.Fatalf("parsed but does not decode: %v", err)
		}
	})
}
