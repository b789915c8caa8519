package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A real every-minute cron job: it runs as the tenant, inside the chroot,
// in the vassal's directory and environment, with its output in the
// vassal's log; it runs at start (the current minute matches, as in uWSGI)
// and again in the next minute (at its second 0, which the test does not
// time: a busy machine may be late). This is the one test that waits
// for the wall clock (up to a minute); the scheduling semantics are unit
// tests on a fake clock (vassal/cron_test.go).
func TestCronJobRunsAsTenantInJail(t *testing.T) {
	user, uid, _ := testUser(t, "emptcron") // before the emperor: removed after it
	root := publicDir(t)
	buildRootfs(t, root)
	os.WriteFile(filepath.Join(root, "etc/jail-marker"), []byte("inside-the-jail\n"), 0o644)
	// Backquotes: $(...) in a vassal file is uWSGI's environment lookup.
	job := "cron = -1 -1 -1 -1 -1 echo \"cron-output uid=`id -u` `cat /etc/jail-marker` dir=`pwd` env=$CRON_TEST\""
	e := startEmperor(t)
	e.install("cron", fmt.Sprintf(`[uwsgi]
uid = %s
gid = %s
; a job's stdin is /dev/null: the jail needs a /dev
hook-pre-jail = mount:none /dev %s/dev bind
chroot = %s
chdir = /tmp
env = CRON_TEST=from-the-vassal-env
%s
`, user, user, root, root, job))
	e.waitState("cron", "running", time.Minute)
	out := regexp.MustCompile(`msg="cron-output uid=(\d+) (\S+) dir=(\S+) env=(\S+)" vassal=cron cron="(?:[^"\\]|\\.)*" line=9 pid=(\d+)`)
	started := regexp.MustCompile(`time=(\S+) level=INFO msg="cron job started" vassal=cron cron="(?:[^"\\]|\\.)*" line=9 pid=(\d+)`)
	var runs [][]string
	// Two runs: the first at start, the second at the next minute's
	// second 0 (a minute at most, and the timeout only stops a hang).
	waitFor(t, 3*time.Minute, "two runs of the every-minute job", func() bool {
		runs = out.FindAllStringSubmatch(e.log.String(), -1)
		return len(runs) >= 2
	})
	for _, r := range runs[:2] {
		if r[1] != strconv.Itoa(uid) || r[2] != "inside-the-jail" || r[3] != "/tmp" || r[4] != "from-the-vassal-env" {
			t.Fatalf("the job ran as uid %s (want %d, %s), saw %q, in %s, env %q", r[1], uid, user, r[2], r[3], r[4])
		}
	}
	if runs[0][5] == runs[1][5] {
		t.Fatalf("one pid for two runs: %v", runs)
	}
	st := started.FindAllStringSubmatch(e.log.String(), -1)
	if len(st) < 2 {
		t.Fatalf("start lines: %v", st)
	}
	var at [2]time.Time
	for i := range at {
		var err error
		if at[i], err = time.Parse(time.RFC3339Nano, st[i][1]); err != nil {
			t.Fatal(err)
		}
	}
	if at[1].Truncate(time.Minute).Sub(at[0].Truncate(time.Minute)) != time.Minute {
		t.Errorf("runs at %s and %s: the second is not in the next minute", at[0].Format(time.TimeOnly), at[1].Format(time.TimeOnly))
	}
	// Each run was reaped and reported with its runtime (the exit line
	// follows the output line in the log: wait for it).
	exited := regexp.MustCompile(`msg="cron job exited" vassal=cron cron="(?:[^"\\]|\\.)*" line=9 pid=\d+ status="exit status 0" ran=`)
	waitFor(t, time.Minute, "two exit lines", func() bool {
		return len(exited.FindAllString(e.log.String(), -1)) >= 2
	})
}

// The stats server of a vassal without an app listens as the tenant, in the
// jail's view: its socket file is the tenant's, inside the chroot, and the
// document shows the tenant's uid and the cron job's run.
func TestStatsInJailAsTenant(t *testing.T) {
	user, uid, _ := testUser(t, "emptstat") // before the emperor: removed after it
	root := publicDir(t)
	buildRootfs(t, root)
	e := startEmperor(t)
	e.install("stats", fmt.Sprintf(`[uwsgi]
uid = %s
gid = %s
hook-pre-jail = mount:none /dev %s/dev bind
chroot = %s
stats = /tmp/stats.sock
unique-cron = -1 -1 -1 -1 -1 exec sleep 1000
`, user, user, root, root))
	e.waitState("stats", "running", time.Minute)
	sock := filepath.Join(root, "tmp/stats.sock")
	var body []byte
	waitFor(t, time.Minute, "a stats document with the cron job's run", func() bool {
		c, err := net.Dial("unix", sock)
		if err != nil {
			return false
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(hangTimeout))
		body, _ = io.ReadAll(c)
		return strings.Contains(string(body), `"running": [`) && !strings.Contains(string(body), `"running": []`)
	})
	var doc struct {
		Vassal string
		UID    int
		Crons  []struct {
			Command string
			PID     int
			Running []int
			Line    int
		}
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if doc.Vassal != "stats" || doc.UID != uid || len(doc.Crons) != 1 || doc.Crons[0].Line != 7 ||
		doc.Crons[0].PID <= 0 || len(doc.Crons[0].Running) != 1 {
		t.Fatalf("document: %s", body)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(sock, &st); err != nil || int(st.Uid) != uid {
		t.Fatalf("socket file owned by %d (%v), want %s (%d)", st.Uid, err, user, uid)
	}
}
