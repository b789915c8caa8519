package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// touch-reload reloads the vassal when its file appears in a directory that
// did not exist at start and when it is touched again (the reload is the
// emperor's, with its log lines); touch-exec runs its command as the
// tenant with its output in the vassal's log file; touch-logreopen reopens
// the log file after a logrotate-style rename.
func TestTouchReloadExecAndLogreopen(t *testing.T) {
	e := startEmperor(t)
	d := publicDir(t)
	if err := os.Chmod(d, 0o777); err != nil {
		t.Fatal(err)
	}
	reload := filepath.Join(d, "later", "tmp", "reload.txt")
	execFile, reopen := filepath.Join(d, "exec.txt"), filepath.Join(d, "reopen.txt")
	logf := filepath.Join(d, "v.log")
	e.install("touchv", fmt.Sprintf(`[uwsgi]
uid = nobody
gid = nogroup
logto = %s
touch-reload = %s
touch-exec = %s echo exec-ran-as-%s
touch-logreopen = %s
attach-daemon = exec sleep 1000
`, logf, reload, execFile, "`id -un`", reopen))
	e.waitState("touchv", "running", time.Minute)
	waitFor(t, time.Minute, "the watcher to say the file does not exist yet", func() bool {
		return strings.Contains(e.log.String(), "touched file does not exist yet")
	})
	reloads := func() int { return strings.Count(e.log.String(), `msg="reload applied"`) }

	if err := os.MkdirAll(filepath.Dir(reload), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(reload, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "a reload after the file appeared", func() bool {
		return strings.Contains(e.log.String(), "the vassal asks for a reload") && reloads() == 1
	})
	if !strings.Contains(e.log.String(), "touch-reload "+reload) {
		t.Errorf("the emperor's log does not say which file asked for the reload")
	}
	e.waitState("touchv", "running", time.Minute)

	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(reload, later, later); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "a second reload after a touch", func() bool { return reloads() == 2 })

	if err := os.WriteFile(execFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "touch-exec's output in the log file", func() bool { return fileHas(logf, "exec-ran-as-nobody\n") })

	if err := os.Rename(logf, logf+".1"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(reopen, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "the log file to be reopened", func() bool { return fileHas(logf, "v.log reopened.") })
	if !fileHas(logf+".1", "triggering log-reopen (touch-logreopen "+reopen+")") {
		t.Errorf("the moved log file lacks the reopen notice")
	}
	if n := reloads(); n != 2 {
		t.Errorf("%d reloads, want 2: touch-exec and touch-logreopen do not reload", n)
	}
}
