package integration

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// nobodyIDs is nobody's uid and nogroup's gid.
func nobodyIDs(t *testing.T) (int, int) {
	t.Helper()
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	g, err := user.LookupGroup("nogroup")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(g.Gid)
	return uid, gid
}

func fileHas(path, s string) bool {
	b, err := os.ReadFile(path)
	return err == nil && strings.Contains(string(b), s)
}

// logto: the file gets PID 1's records, the hooks' and the daemons' output
// (the emperor's log gets PID 1's records but not the tenant's output), it
// belongs to the tenant (logfile-chown), rotates at log-maxsize into
// log-backupname, and after a logrotate-style rename SIGUSR1 reopens it by
// its name; log-reopen reopens it on a reload.
func TestLogtoFileRotatesAndReopens(t *testing.T) {
	e := startEmperor(t)
	uid, gid := nobodyIDs(t)
	logs := filepath.Join(publicDir(t), "logs")
	if err := os.Mkdir(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	// The tenant may replace files here (rotation after the drop).
	if err := os.Chown(logs, uid, gid); err != nil {
		t.Fatal(err)
	}
	cur, old := filepath.Join(logs, "v.log"), filepath.Join(logs, "v.log.old")
	pad := strings.Repeat("x", 60)
	e.install("logv", fmt.Sprintf(`[uwsgi]
uid = nobody
gid = nogroup
logto = %s
logfile-chown = true
log-maxsize = 2000
log-backupname = %s
log-reopen = true
exec-as-user = echo hook-says-hi
attach-daemon = seq 0 39 | sed 's/.*/daemon-line-&-%s/'; exec sleep 1000
`, cur, old, pad))
	v := e.waitState("logv", "running", time.Minute)

	waitFor(t, time.Minute, "a rotation into v.log.old and the last daemon line in v.log", func() bool {
		return fileHas(old, "triggering rotation to v.log.old") && fileHas(cur, "daemon-line-39-")
	})
	first, _ := os.ReadFile(old)
	for _, want := range []string{"vassal log file opened", "hook-says-hi\n", "daemon-line-0-" + pad + "\n"} {
		if !strings.Contains(string(first), want) {
			t.Errorf("the first log file lacks %q:\n%s", want, first)
		}
	}
	if st, err := os.Stat(old); err != nil || st.Size() > 2000+200 {
		t.Errorf("rotated file: %v, size %d (log-maxsize 2000)", err, st.Size())
	}
	st, err := os.Stat(cur)
	if err != nil {
		t.Fatal(err)
	}
	if s := st.Sys().(*syscall.Stat_t); int(s.Uid) != uid {
		t.Errorf("v.log belongs to uid %d, want the tenant's %d", s.Uid, uid)
	}
	el := e.log.String()
	if strings.Contains(el, "msg=daemon-line-") || strings.Contains(el, "msg=hook-says-hi") {
		t.Errorf("the tenant's output reached the emperor's log")
	}
	if !strings.Contains(el, "vassal log file opened") {
		t.Errorf("PID 1's records are missing from the emperor's log")
	}

	// logrotate: move the file away, then ask for a reopen.
	moved := cur + ".1"
	if err := os.Rename(cur, moved); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(v.PID, syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "v.log to be reopened", func() bool { return fileHas(cur, "v.log reopened.") })
	if !fileHas(moved, "triggering log-reopen (SIGUSR1)") {
		t.Errorf("the moved file lacks the reopen notice")
	}

	// log-reopen: a reload reopens it too, and the restarted daemon's
	// lines go to the new file.
	if err := os.Rename(cur, moved); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := os.Chtimes(filepath.Join(e.dir, "logv.ini"), now, now); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "a reopen on reload and the new daemon's lines", func() bool {
		return fileHas(moved, "triggering log-reopen (log-reopen on reload)") && (fileHas(cur, "daemon-line-0-") || fileHas(old, "daemon-line-0-"))
	})
}

// A log path whose last component is a symlink is never opened through it,
// even by root: the vassal fails with an error naming the file.
func TestLogtoRefusesSymlink(t *testing.T) {
	e := startEmperor(t)
	d := publicDir(t)
	target := filepath.Join(d, "target")
	if err := os.WriteFile(target, []byte("root's file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(d, "v.log")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	e.install("logsym", "[uwsgi]\nlogto = "+link+"\nattach-daemon = exec sleep 1000\n")
	waitFor(t, time.Minute, "the vassal to fail on the symlink", func() bool {
		v, ok := e.vassal("logsym")
		return ok && strings.Contains(v.LastExit, "symlink")
	})
	if b, _ := os.ReadFile(target); string(b) != "root's file\n" {
		t.Errorf("the symlink's target was written: %q", b)
	}
}

// As root, a symlink on the directory path of logto is followed only when
// root controls it: one the tenant owns (in a directory the tenant can
// write) fails the vassal and nothing is created where it points; one root
// owns in a root-only directory is followed.
func TestLogtoDirectorySymlinks(t *testing.T) {
	e := startEmperor(t)
	uid, gid := nobodyIDs(t)
	d := publicDir(t)
	secret, real := filepath.Join(d, "secret"), filepath.Join(d, "real")
	tenant := filepath.Join(d, "tenant")
	for _, dir := range []string{secret, real, tenant} {
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(tenant, uid, gid); err != nil {
		t.Fatal(err)
	}
	// The tenant's link to a directory of root's.
	if err := os.Symlink(secret, filepath.Join(tenant, "logs")); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(filepath.Join(tenant, "logs"), uid, gid); err != nil {
		t.Fatal(err)
	}
	// Root's own link, in root's 0755 directory.
	if err := os.Symlink(real, filepath.Join(d, "current")); err != nil {
		t.Fatal(err)
	}
	e.install("badlink", "[uwsgi]\nuid = nobody\ngid = nogroup\nlogto = "+filepath.Join(tenant, "logs", "v.log")+"\nattach-daemon = exec sleep 1000\n")
	e.install("goodlink", "[uwsgi]\nuid = nobody\ngid = nogroup\nlogto = "+filepath.Join(d, "current", "v.log")+"\nattach-daemon = exec sleep 1000\n")
	waitFor(t, time.Minute, "badlink to fail on the tenant's symlink", func() bool {
		v, ok := e.vassal("badlink")
		return ok && strings.Contains(v.LastExit, "a symlink that root does not control")
	})
	e.waitState("goodlink", "running", time.Minute)
	if _, err := os.Stat(filepath.Join(secret, "v.log")); err == nil {
		t.Errorf("root created a file through the tenant's symlink")
	}
	// The first line reaches the file through the vassal's log sink,
	// which may trail the running state: wait for it.
	waitFor(t, time.Minute, "root's own symlink followed: the log file in real/", func() bool {
		return fileHas(filepath.Join(real, "v.log"), "vassal log file opened")
	})
}
