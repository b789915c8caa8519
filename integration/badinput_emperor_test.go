package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Bad input from §4 of issue 7 that used to wedge the emperor or leak what
// it holds to tenants: a FIFO swapped in for a vassal file, a vassal file
// that looks into a hung FUSE mount, descriptors and environment inherited
// by the emperor, a daemon's overlong log line, and a flood of idle control
// connections.

// hang is the timeout that only stops a hang.
const hang = time.Minute

// startEmperorCmd is startEmperor with a chance to change the command
// (inherited descriptors, environment) before it starts.
func startEmperorCmd(t *testing.T, prep func(*exec.Cmd), config ...string) *emperorProc {
	t.Helper()
	requireRoot(t)
	base := t.TempDir()
	dir := filepath.Join(base, "vassals")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(base, "emperor.ini")
	body := "[uwsgi]\nemperor = " + dir + "\nreload-mercy = 5\n" + strings.Join(config, "\n") + "\n"
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	e := &emperorProc{t: t, dir: dir, control: filepath.Join(base, "control.sock"), log: &logBuf{}, exited: make(chan struct{})}
	e.cmd = exec.Command(emperorBin, "--config", cfg, "--control", e.control)
	e.cmd.Stdout = e.log
	e.cmd.Stderr = e.log
	if prep != nil {
		prep(e.cmd)
	}
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { e.cmd.Wait(); close(e.exited) }()
	t.Cleanup(func() {
		e.stop()
		if t.Failed() {
			l := e.log.String()
			if len(l) > 64<<10 {
				l = "...\n" + l[len(l)-64<<10:]
			}
			t.Logf("emperor log (tail):\n%s", l)
		}
	})
	waitFor(t, hang, "control socket", func() bool {
		_, err := os.Stat(e.control)
		return err == nil
	})
	return e
}

// A daemon that writes a 1 MiB line keeps running (the same pid) and what
// it writes after that line still reaches the log. The old reader gave up
// at 64 KiB and closed the pipe: the daemon died of SIGPIPE at its next
// write, and again after every respawn.
func TestLongLogLineKeepsDaemon(t *testing.T) {
	e := startEmperorCmd(t, nil)
	// Backquotes: $(...) is a placeholder in a vassal file.
	e.install("longline", "[uwsgi]\nattach-daemon = x=`head -c 1048576 /dev/zero | tr '\\0' a`; echo \"$x\"; i=0; while :; do i=`expr $i + 1`; echo \"tick $i\"; sleep 0.05; done\n")
	started := regexp.MustCompile(`msg="daemon started" vassal=longline .* pid=(\d+)`)
	var pid string
	waitFor(t, hang, "the daemon to start", func() bool {
		m := started.FindStringSubmatch(e.log.String())
		if m != nil {
			pid = m[1]
		}
		return m != nil
	})
	tick := regexp.MustCompile(`msg="tick 20" vassal=longline .* pid=(\d+)`)
	waitFor(t, hang, "output after the long line", func() bool {
		return tick.MatchString(e.log.String())
	})
	if got := tick.FindStringSubmatch(e.log.String())[1]; got != pid {
		t.Fatalf("tick 20 came from pid %s, the daemon started as %s", got, pid)
	}
	log := e.log.String()
	// The whole line was logged, in 16 parts of 64 KiB.
	if !strings.Contains(log, "line_part=16 line_continues=false") {
		t.Fatal("the long line's last part is not in the log")
	}
	if strings.Contains(log, `msg="daemon exited" vassal=longline`) {
		t.Fatal("the daemon exited after writing a long line")
	}
	if n := strings.Count(log, "line_part="); n != 16 {
		t.Fatalf("%d parts logged, want 16", n)
	}
}
