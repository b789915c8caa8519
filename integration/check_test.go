package integration

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// everyStageVassal has a problem for each stage of the check: a warning
// (master without an app), unknown users and groups (the user lookups), an
// unknown option and an error repeated by every item of a for block (the
// parse), chroot with pivot_root (the checks across options).
const everyStageVassal = `[uwsgi]
master = true
uid = no-such-user-here
gid = no-such-group-here
attach-deamon = sleep 1
chroot = /srv/jail
pivot_root = /srv/new /srv/new/old
for = a b c d
env = X_%(_)=1
threads = many
endfor =
add-gid = no-such-group-here
`

// everyStageWant is what one check of everyStageVassal reports, in order.
var everyStageWant = []string{
	":2: warning: master has no effect",
	":3: uid no-such-user-here",
	":4: gid no-such-group-here",
	`:5: unknown option "attach-deamon" (did you mean "attach-daemon"?)`,
	":6: chroot: chroot and pivot_root cannot both be set",
	`:10: threads: "many" is not a count from 1 to 100000 (x4, once per item of the for at line 8)`,
	":12: add-gid no-such-group-here",
}

// inOrder checks that s holds each of want, after path, in that order.
func inOrder(t *testing.T, what, s, path string) {
	t.Helper()
	rest := s
	for _, w := range everyStageWant {
		i := strings.Index(rest, path+w)
		if i < 0 {
			t.Fatalf("%s: missing or out of order: %q in:\n%s", what, path+w, s)
		}
		rest = rest[i+len(path+w):]
	}
	if n := strings.Count(s, "threads:"); n != 1 {
		t.Fatalf("%s: the error repeated by the for is listed %d times:\n%s", what, n, s)
	}
}

// TestCheckAndStatusShowEveryProblem: `emperor check` reports every problem
// of a file in one run (parse, cross-option checks, user lookups) with its
// warnings, sorted by line, a for block's repeated error once with its
// count; the failed-config vassal's status (control socket and `emperor
// status`) shows the same list. The old check stopped at the first stage
// that failed: the parse errors alone.
func TestCheckAndStatusShowEveryProblem(t *testing.T) {
	e := startEmperor(t)
	path := e.install("allstages", everyStageVassal)
	v := e.waitState("allstages", "failed-config", time.Minute)
	inOrder(t, "status config_error", v.ConfigError, path)

	chk := exec.Command(emperorBin, "check", path)
	out, _ := chk.Output()
	if chk.ProcessState.ExitCode() != 1 {
		t.Fatalf("emperor check: exit %d\n%s", chk.ProcessState.ExitCode(), out)
	}
	inOrder(t, "emperor check", string(out), path)
	if n := strings.Count(strings.TrimSpace(string(out)), "\n") + 1; n != len(everyStageWant) {
		t.Fatalf("emperor check printed %d lines, want %d:\n%s", n, len(everyStageWant), out)
	}

	out, err := exec.Command(emperorBin, "status", "--control", e.control).CombinedOutput()
	if err != nil {
		t.Fatalf("emperor status: %v\n%s", err, out)
	}
	inOrder(t, "emperor status", strings.ReplaceAll(string(out), "; ", "\n"), path)
	_ = os.Remove(path)
}
