package main

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/emperor-dev/emperor/emperor"
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
