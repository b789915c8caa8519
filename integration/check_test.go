package integration

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// everyStage reads ../emperor/testdata/every-stage.ini, a vassal with a
// problem for each stage of the check: a warning (master without an app),
// unknown users and groups (the user lookups), an unknown option and an
// error repeated by every item of a for block (the parse), chroot with
// pivot_root (the checks across options); and every-stage.want, what one
// check of it reports, in order: ":LINE: [warning: ]MESSAGE" after the
// file's path. The emperor package's unit test reads the same files.
func everyStage(t *testing.T) (vassal string, want []string) {
	t.Helper()
	ini, err := os.ReadFile("../emperor/testdata/every-stage.ini")
	if err == nil {
		var w []byte
		w, err = os.ReadFile("../emperor/testdata/every-stage.want")
		want = strings.Split(strings.TrimSpace(string(w)), "\n")
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(ini), want
}

// inOrder checks that s holds each of want, after path, in that order.
func inOrder(t *testing.T, what, s, path string, want []string) {
	t.Helper()
	rest := s
	for _, w := range want {
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
	vassal, want := everyStage(t)
	e := startEmperor(t)
	path := e.install("allstages", vassal)
	v := e.waitState("allstages", "failed-config", time.Minute)
	inOrder(t, "status config_error", v.ConfigError, path, want)

	chk := exec.Command(emperorBin, "check", path)
	out, _ := chk.Output()
	if chk.ProcessState.ExitCode() != 1 {
		t.Fatalf("emperor check: exit %d\n%s", chk.ProcessState.ExitCode(), out)
	}
	inOrder(t, "emperor check", string(out), path, want)
	if n := strings.Count(strings.TrimSpace(string(out)), "\n") + 1; n != len(want) {
		t.Fatalf("emperor check printed %d lines, want %d:\n%s", n, len(want), out)
	}

	out, err := exec.Command(emperorBin, "status", "--control", e.control).CombinedOutput()
	if err != nil {
		t.Fatalf("emperor status: %v\n%s", err, out)
	}
	inOrder(t, "emperor status", strings.ReplaceAll(string(out), "; ", "\n"), path, want)
	_ = os.Remove(path)
}
