package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/emperor-dev/emperor/emperor"
	"github.com/emperor-dev/emperor/hooks"
	"github.com/emperor-dev/emperor/vassalfile"
)

// corpusDir holds realistic vassal files, each modelled on a real one (the
// uWSGI docs, seed 003's tutorial, hosting platforms, Django/Flask/PHP
// projects) and saying so in its first comment.
const corpusDir = "../../vassalfile/testdata/corpus"

func corpusFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(corpusDir, "*.ini"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus in %s: %v", corpusDir, err)
	}
	for i, f := range files {
		if files[i], err = filepath.Abs(f); err != nil {
			t.Fatal(err)
		}
	}
	return files
}

// header is the comment block a file starts with.
func header(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(l, ";") && !strings.HasPrefix(l, "#") {
			break
		}
		b.WriteString(strings.TrimLeft(l, ";# ") + " ")
	}
	return b.String()
}

// corpusNoApp are the corpus files that ask for no app server (no loader,
// no uwsgi-protocol socket, no http router): our PID 1 runs them alone.
// Every other file runs uWSGI's app server.
var corpusNoApp = map[string]bool{
	"bare-flags.ini": true, "chroot-jail.ini": true, "conditions-env.ini": true,
	"conditions-fs.ini": true, "daemons-noapp.ini": true, "glusterfs-noapp.ini": true,
	"hooks-actions.ini": true, "hooks-wait.ini": true, "logto2-daemonize.ini": true,
	"loops.ini": true, "magic-variables.ini": true, "placeholder-math.ini": true,
	"static-noapp.ini": true, "logging-full.ini": true, "cron-jobs.ini": true,
	"stats-noapp.ini": true,
}

// TestCorpusPassesCheck: every vassal file of the corpus passes `emperor
// check` (checkFile, what the command runs for each file) with no error;
// its warnings are logged. Each file says what it is modelled on and which
// uWSGI behaviour it reproduces, and asks for an app server unless it is
// in corpusNoApp.
func TestCorpusPassesCheck(t *testing.T) {
	files := corpusFiles(t)
	if len(files) < 30 {
		t.Errorf("the corpus has %d files, want at least 30", len(files))
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			if h := header(t, path); !strings.Contains(h, "Modelled on:") || !strings.Contains(h, "Reproduces:") {
				t.Errorf("the first comment does not say what the file is modelled on and what it reproduces: %q", h)
			}
			for _, d := range checkFile(path) {
				if d.Warning {
					t.Log(d.String())
				} else {
					t.Error(d.String())
				}
			}
			v, err := emperor.LoadVassal(path)
			if err != nil {
				return // reported above
			}
			if app, want := v.Spec.App != nil, !corpusNoApp[filepath.Base(path)]; app != want {
				t.Errorf("asks for an app server: %v, want %v", app, want)
			}
		})
	}
}

// corpusConstructs are the constructs of the ini dialect and the
// supervisor options that the corpus must use, each somewhere (issue 8,
// §2 and §3), as patterns over the files' lines (comments excluded).
var corpusConstructs = map[string]string{
	"bare flag":              `(?m)^[a-z][a-z0-9_-]*$`,
	"placeholder arithmetic": `%\([^)]* [-+*/] [^)]*\)`,
	"placeholder ++":         `%\([^)]* \+\+\)`,
	"placeholder concat":     `%\([a-z_]+ [a-z_]+\)`,
	"set-placeholder":        `(?m)^set-placeholder =`,
	"%(_)":                   `%\(_\)`,
	"$(ENV)":                 `\$\([A-Z_]+\)`,
	"%%":                     `%%`,
	"@(file)":                `@\(`,
	"ini = FILE:SECTION":     `(?m)^ini = [^:\n]+:[a-z]+$`,
	"ini = :SECTION":         `(?m)^ini = :[a-z]+$`,
	"include = FILE.ini":     `(?m)^include = .+\.ini$`,
	"inherit = FILE.ini":     `(?m)^inherit = .+\.ini$`,

	"glusterfs-mount": `(?m)^glusterfs-mount =`,
	"static-map":      `(?m)^static-map =`,
	"chroot":          `(?m)^chroot =`,
	"unshare":         `(?m)^unshare =`,
	"add-gid":         `(?m)^add-gid =`,
	"shared-socket":   `(?m)^shared-socket =`,

	"private hook (!)": `(?m)^hook-[a-z-]+ = !`,
	"pivot_root":       `(?m)^pivot_root =`,
	"mountpoint-check": `(?m)^mountpoint-check =`,
	"callret:chdir":    `(?m)^hook-[a-z-]+ = callret:chdir `,

	"loader module":        `(?m)^module\s*=`,
	"loader wsgi-file":     `(?m)^wsgi-file =`,
	"loader mount":         `(?m)^mount = /`,
	"loader psgi":          `(?m)^psgi =`,
	"loader php-docroot":   `(?m)^php-docroot =`,
	"uwsgi socket":         `(?m)^socket\s*=`,
	"http router":          `(?m)^http =`,
	"fastcgi-socket":       `(?m)^fastcgi-socket =`,
	"plugin line":          `(?m)^plugins? =`,
	"plugins-dir":          `(?m)^plugins-dir =`,
	"internal routing":     `(?m)^route(-[a-z]+)? =`,
	"attach-daemon":        `(?m)^attach-daemon =`,
	"smart-attach-daemon":  `(?m)^smart-attach-daemon =`,
	"hook phase pre-app":   `(?m)^(hook|exec)-pre-app =`,
	"hook phase post-app":  `(?m)^hook-post-app =`,
	"hook phase accepting": `(?m)^hook-accepting1?(-once)? =`,
	"hook master-start":    `(?m)^hook-master-start =`,
	"stats":                `(?m)^stats =`,
	"stats-http":           `(?m)^stats-http =`,
	"touch-reload":         `(?m)^touch-reload =`,
	"touch-logreopen":      `(?m)^touch-logreopen =`,
	"touch-exec":           `(?m)^touch-exec =`,
	"cron":                 `(?m)^cron =`,
	"cron -N field":        `(?m)^cron = -[0-9]+ `,
	"cron2":                `(?m)^cron2 = [a-z]+=`,
	"unique-cron":          `(?m)^unique-cron =`,
}

func init() {
	for _, m := range []string{"n", "s", "p", "d", "e", "c", "o", "j", "k", "h", "t", "T", "v", "0", "1"} {
		corpusConstructs["magic %"+m] = `%` + m + `\b`
	}
	for _, k := range []string{
		"for", "for-glob", "for-times", "for-readline", "endfor", "end-for", "end",
		"if-opt", "if-not-opt", "if-env", "if-not-env", "ifenv", "if-reload", "if-not-reload",
		"if-hostname", "if-not-hostname", "if-hostname-match", "if-not-hostname-match",
		"if-exists", "if-not-exists", "ifexists", "if-plugin", "if-not-plugin", "ifplugin",
		"if-file", "if-not-file", "if-dir", "if-not-dir", "ifdir", "if-directory",
		"endif", "end-if",
	} {
		corpusConstructs["logic "+k] = `(?m)^` + regexp.QuoteMeta(k) + `( =|$)`
	}
	for _, ph := range []string{"asap", "pre-jail", "post-jail", "in-jail", "as-root", "as-user", "as-user-atexit"} {
		corpusConstructs["hook phase "+ph] = `(?m)^(hook|exec|mount|umount)-` + ph + ` =`
	}
	for _, o := range []string{"master", "processes", "cheaper", "listen", "offload-threads",
		"logto", "logto2", "log-maxsize", "log-backupname", "logfile-chown", "logfile-chmod", "log-reopen"} {
		corpusConstructs["option "+o] = `(?m)^` + o + `\s*(=|$)`
	}
	for _, fam := range []string{"hook", "exec", "mount", "umount"} {
		corpusConstructs["hook family "+fam] = `(?m)^` + fam + `-[a-z-]+ =`
	}
	for _, a := range []string{"mkdir", "create", "creat", "write", "writen", "append", "appendn", "chmod",
		"chown", "chown2", "sticky", "unlink", "putenv", "cd", "chdir", "print", "log", "exec", "safeexec",
		"hostname", "wait_for_fs", "wait_for_file", "wait_for_dir", "wait_for_socket", "mount", "umount"} {
		corpusConstructs["hook action "+a] = `(?m)^hook-[a-z-]+ = !?` + a + `:`
	}
}

// TestCorpusCoversTheDialect: together the corpus files use every
// construct of corpusConstructs, and a placeholder: a key that is no
// option, referenced with %(key).
func TestCorpusCoversTheDialect(t *testing.T) {
	var all strings.Builder
	placeholder := ""
	for _, path := range corpusFiles(t) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var body []string
		for _, l := range strings.Split(string(b), "\n") {
			l = strings.TrimSpace(l)
			if l == "" || l[0] == ';' || l[0] == '#' || l[0] == '[' {
				continue
			}
			body = append(body, l)
		}
		text := strings.Join(body, "\n")
		all.WriteString(text + "\n")
		for _, l := range body {
			k, _, _ := strings.Cut(l, "=")
			k = strings.TrimSpace(k)
			if _, known := vassalfile.Lookup(k); !known && strings.Contains(text, "%("+k+")") {
				placeholder = filepath.Base(path) + ": " + k
			}
		}
	}
	for name, re := range corpusConstructs {
		if !regexp.MustCompile(re).MatchString(all.String()) {
			t.Errorf("no corpus file uses %s (%s)", name, re)
		}
	}
	if placeholder == "" {
		t.Error("no corpus file defines a placeholder (a key that is no option, referenced with %(key))")
	}
}

// TestCorpusMatchesUWSGI: the installed uWSGI 2.0 reads each corpus file
// as we do: for every option the file sets, uWSGI's value (uwsgi --get,
// which prints the first value of an option after the whole file is read,
// then exits) is our first value of it, after expansion (placeholders,
// arithmetic, magic variables, @(file), $(ENV), loops, conditions). uWSGI
// runs in the corpus directory with the file's base name, as its Emperor
// runs a vassal, and with the plugins the file's loaders need (the ones
// we load for it). Files with asap hooks are left out: uWSGI runs those
// before it answers --get.
func TestCorpusMatchesUWSGI(t *testing.T) {
	if _, err := exec.LookPath("uwsgi"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("uwsgi is missing (make deps installs it), and CI=true forbids skipping")
		}
		t.Skip("uwsgi is missing (make deps installs it)")
	}
	for _, path := range corpusFiles(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			v, err := emperor.LoadVassal(path)
			if err != nil {
				t.Fatalf("%v", err)
			}
			if asap := v.Spec.PhaseHooks(hooks.Asap); len(asap) > 0 {
				// Not a skip: this file is not for uWSGI to run here.
				t.Logf("not run by uWSGI: its asap hooks (line %d) would run on this machine", asap[0].Line)
				return
			}
			var args []string
			if v.Spec.App != nil {
				for _, l := range v.Spec.App.Lines {
					if l.Line == 0 && (l.Key == "plugin" || l.Key == "plugins") {
						args = append(args, "--plugin", l.Value)
					}
				}
			}
			args = append(args, "--ini", filepath.Base(path))
			var keys []string
			want := map[string]string{}
			for _, e := range v.File.Entries {
				k := e.Key
				if e.As != "" {
					k = e.As
				}
				if _, seen := want[k]; !seen {
					keys = append(keys, k)
					want[k] = e.Value
				}
			}
			for _, k := range keys {
				args = append(args, "--get", k)
			}
			cmd := exec.Command("uwsgi", args...)
			cmd.Dir = filepath.Dir(path)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("uwsgi %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			got := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
			if len(got) != len(keys) {
				t.Fatalf("uwsgi printed %d values for %d options:\n%s\nwant the values of %v", len(got), len(keys), out, keys)
			}
			for i, k := range keys {
				if !sameValue(k, got[i], want[k]) {
					t.Errorf("%s: uWSGI reads %q, we read %q", k, got[i], want[k])
				}
			}
		})
	}
}

// sameValue compares the value of option k as uWSGI prints it with ours. A
// bare flag is "1" or "true" in one and "" in the other. uWSGI's cron2
// handler cuts its value in place at the space after KEY=VALUE,...
// (core/cron.c), and --get prints what is left.
func sameValue(k, uwsgi, ours string) bool {
	truth := map[string]bool{"": true, "1": true, "true": true}
	if k == "cron2" {
		if kv, _, ok := strings.Cut(ours, " "); ok && strings.Contains(kv, "=") {
			ours = kv
		}
	}
	return uwsgi == ours || (truth[uwsgi] && truth[ours])
}
