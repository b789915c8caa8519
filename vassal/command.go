package vassal

import (
	"path/filepath"
	"strings"

	"github.com/emperor-dev/emperor/nosignal"
	"golang.org/x/sys/unix"
)

// shellMeta are the characters that make a command more than plain words
// for /bin/sh: quoting, expansion, globbing, redirection, pipes, lists,
// grouping, comments, assignments and history.
const shellMeta = "\"'`$\\|&;<>()*?[]{}~#!=\n\r"

// shellWords are the first words that /bin/sh treats as keywords or builtins:
// such a command always goes through the shell.
var shellWords = map[string]bool{
	"!": true, "{": true, "}": true, "case": true, "do": true, "done": true, "elif": true, "else": true,
	"esac": true, "fi": true, "for": true, "if": true, "in": true, "then": true, "until": true, "while": true,
	".": true, ":": true, "alias": true, "bg": true, "break": true, "cd": true, "command": true, "continue": true,
	"echo": true, "eval": true, "exec": true, "exit": true, "export": true, "false": true, "fg": true,
	"getopts": true, "hash": true, "jobs": true, "kill": true, "local": true, "printf": true, "pwd": true,
	"read": true, "readonly": true, "return": true, "set": true, "shift": true, "test": true, "[": true,
	"times": true, "trap": true, "true": true, "type": true, "ulimit": true, "umask": true, "unalias": true,
	"unset": true, "wait": true,
}

// commandArgv says how to start cmd, a line of a vassal file. A command of
// plain words (`exec busybox httpd -f -p 80`) whose program is found and
// executable is started directly, with argv[0] as written (busybox picks its
// applet by it): that is what /bin/sh -c would exec, without a shell process
// in between, which costs a vassal about a millisecond of CPU per start.
// Anything else, including a program that is not found (so that the shell
// reports it, with exit status 127 as before), runs under /bin/sh -c.
func commandArgv(cmd string, env []string, dir string) (string, []string) {
	shell := []string{"/bin/sh", "-c", cmd}
	if strings.ContainsAny(cmd, shellMeta) {
		return shell[0], shell
	}
	words := strings.Fields(cmd)
	if len(words) > 1 && words[0] == "exec" {
		words = words[1:]
	}
	if len(words) == 0 || shellWords[words[0]] {
		return shell[0], shell
	}
	path, ok := lookPath(words[0], env, dir)
	if !ok {
		return shell[0], shell
	}
	return path, words
}

// lookPath finds name as /bin/sh would: a name with a slash as it is
// (relative to dir), else the first executable in $PATH. It reports false
// whenever the answer could differ from the shell's (no PATH, a relative
// PATH entry), so that the shell decides.
func lookPath(name string, env []string, dir string) (string, bool) {
	if strings.Contains(name, "/") {
		p := name
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		return name, executable(p)
	}
	pathVar, ok := "", false
	for i := len(env) - 1; i >= 0; i-- {
		if v, found := strings.CutPrefix(env[i], "PATH="); found {
			pathVar, ok = v, true
			break
		}
	}
	if !ok {
		return "", false
	}
	for _, d := range strings.Split(pathVar, ":") {
		if d == "" || !filepath.IsAbs(d) {
			return "", false
		}
		p := filepath.Join(d, name)
		if executable(p) {
			return p, true
		}
	}
	return "", false
}

// executable checks that p is a regular file we may execute, with the
// credentials the child will have (PID 1 has already dropped privileges
// before it starts daemons).
//
// The lookups may hang in the tenant's FUSE mounts: they run where no signal
// for PID 1 can be caught (package nosignal).
func executable(p string) (ok bool) {
	nosignal.Do(func() {
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
			return
		}
		ok = unix.Access(p, unix.X_OK) == nil
	})
	return ok
}
