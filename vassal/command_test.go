package vassal

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestCommandArgv(t *testing.T) {
	bin := t.TempDir()
	for _, n := range []string{"httpd", "app"} {
		os.WriteFile(filepath.Join(bin, n), []byte("#!/bin/sh\n"), 0o755)
	}
	os.WriteFile(filepath.Join(bin, "noexec"), []byte("x"), 0o644)
	os.Mkdir(filepath.Join(bin, "adir"), 0o755)
	work := t.TempDir()
	os.WriteFile(filepath.Join(work, "local"), []byte("#!/bin/sh\n"), 0o755)
	env := []string{"HOME=/", "PATH=/nonexistent:" + bin}
	direct := func(path string, argv ...string) []string { return append([]string{path}, argv...) }
	shell := func(cmd string) []string { return []string{"/bin/sh", "/bin/sh", "-c", cmd} }
	cases := []struct {
		cmd  string
		env  []string
		want []string // path, then argv
	}{
		{"exec httpd -f -p 127.0.0.1:80 -h /www", env, direct(filepath.Join(bin, "httpd"), "httpd", "-f", "-p", "127.0.0.1:80", "-h", "/www")},
		{"  app\targ  ", env, direct(filepath.Join(bin, "app"), "app", "arg")},
		{"./local serve", env, direct("./local", "./local", "serve")},
		{filepath.Join(bin, "app"), env, direct(filepath.Join(bin, "app"), filepath.Join(bin, "app"))},
		// the shell decides
		{"httpd -p $PORT", env, shell("httpd -p $PORT")},
		{"app 'quoted arg'", env, shell("app 'quoted arg'")},
		{"app > /tmp/log", env, shell("app > /tmp/log")},
		{"app | tee x", env, shell("app | tee x")},
		{"app; app", env, shell("app; app")},
		{"app &", env, shell("app &")},
		{"app *.txt", env, shell("app *.txt")},
		{"FOO=1 app", env, shell("FOO=1 app")},
		{"app --opt=1", env, shell("app --opt=1")},
		{"app ~/x", env, shell("app ~/x")},
		{"app # comment", env, shell("app # comment")},
		{"echo hi", env, shell("echo hi")},
		{"cd /tmp", env, shell("cd /tmp")},
		{"ulimit -n 10", env, shell("ulimit -n 10")},
		{"exec", env, shell("exec")},
		{"", env, shell("")},
		{"not-installed -r a.zip /mnt", env, shell("not-installed -r a.zip /mnt")}, // sh reports 127
		{"noexec", env, shell("noexec")},                                           // sh reports 126
		{"adir", env, shell("adir")},
		{"./missing", env, shell("./missing")},
		{"app", []string{"HOME=/"}, shell("app")},                                                       // no PATH: the shell's default
		{"app", []string{"PATH=relative:" + bin}, shell("app")},                                         // relative entry: ask the shell
		{"app", []string{"PATH=/nonexistent", "PATH=" + bin}, direct(filepath.Join(bin, "app"), "app")}, // last PATH wins
	}
	for _, c := range cases {
		path, argv := commandArgv(c.cmd, c.env, work)
		if got := append([]string{path}, argv...); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: %q, want %q", c.cmd, got, c.want)
		}
	}
}
