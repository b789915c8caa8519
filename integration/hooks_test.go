package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHookActionsOnDisk runs a vassal whose hooks use uWSGI's actions in
// every phase PID 1 runs, chrooted, and checks what they left on disk:
//   - asap, pre-jail, in-jail and post-jail run on the host's paths, before
//     the chroot, in that order (uWSGI's order); as-root runs inside it;
//   - hostname names the vassal's own uts namespace, not the host;
//   - creat truncates, write/appendn/mkdir/chown2/chmod/sticky do what
//     uWSGI's do; a symlink comes from exec:ln -s (uWSGI has no symlink
//     action); as-user writes as the tenant;
//   - a "!" (private) hook runs, and its arguments never reach the log;
//   - hook-emperor-reload runs before a reload (then as-user-atexit), and
//     hook-emperor-stop before a stop (then as-user-atexit);
//   - wait-for-file runs after the chroot, before as-root;
//   - exit:N stops the vassal with a reason that names the hook.
func TestHookActionsOnDisk(t *testing.T) {
	requireRoot(t)
	user, uid, gid := testUser(t, "emphk")
	dir := publicDir(t)
	host := filepath.Join(dir, "host") // written before the chroot
	jail := filepath.Join(dir, "jail") // the chroot
	for _, d := range []string{host, jail} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	old := filepath.Join(host, "old")
	os.WriteFile(old, []byte("content creat must truncate"), 0o644)
	const secret = "s3cr3t-hook-token"
	e := startEmperor(t)
	path := e.install("hk", fmt.Sprintf(`[uwsgi]
uid = %[1]s
gid = %[1]s
chroot = %[2]s
unshare = uts
hook-asap = hostname:hk-vassal
hook-asap = exec:hostname > %[3]s/hostname
hook-asap = mkdir:%[3]s/made
hook-asap = creat:%[3]s/old
hook-asap = appendn:%[2]s/order asap
hook-pre-jail = write:%[3]s/made/file written in pre-jail
hook-pre-jail = exec:ln -s %[3]s/made/file %[3]s/link
hook-pre-jail = !write:%[3]s/secret %[4]s
hook-pre-jail = appendn:%[2]s/order pre-jail
hook-in-jail = appendn:%[2]s/order in-jail
hook-post-jail = appendn:%[2]s/order post-jail
; after the chroot, before as-root: the file the hooks above made
wait-for-file = /order
wait-for-fs-timeout = 30
hook-as-root = appendn:/order as-root
hook-as-root = mkdir:/home
hook-as-root = chown2:/home %[5]d %[6]d
hook-as-root = chmod:/home 0750
hook-as-root = mkdir:/shared
hook-as-root = chmod:/shared 777
hook-as-root = sticky:/shared
hook-as-user = write:/home/by-user written by the tenant
hook-as-user = appendn:/home/events as-user
hook-emperor-reload = appendn:/home/events emperor-reload
hook-emperor-stop = appendn:/home/events emperor-stop
hook-as-user-atexit = appendn:/home/events as-user-atexit
`, user, jail, host, secret, uid, gid))
	e.waitState("hk", "running", time.Minute)

	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("%v", err)
		}
		return string(b)
	}
	if got := read(filepath.Join(jail, "order")); got != "asap\npre-jail\nin-jail\npost-jail\nas-root\n" {
		t.Fatalf("phase order (as-root inside the chroot, the others before it): %q", got)
	}
	if got := read(filepath.Join(host, "hostname")); got != "hk-vassal\n" {
		t.Errorf("hostname in the vassal's uts namespace: %q", got)
	}
	if h, _ := os.Hostname(); h == "hk-vassal" {
		t.Errorf("the host's name changed")
	}
	if got := read(old); got != "" {
		t.Errorf("creat did not truncate: %q", got)
	}
	if got := read(filepath.Join(host, "made", "file")); got != "written in pre-jail" {
		t.Errorf("write: %q", got)
	}
	if l, err := os.Readlink(filepath.Join(host, "link")); err != nil || l != filepath.Join(host, "made", "file") {
		t.Errorf("exec:ln -s: %q %v", l, err)
	}
	if got := read(filepath.Join(host, "secret")); got != secret {
		t.Errorf("private write: %q", got)
	}
	stat := func(p string) (os.FileInfo, *syscall.Stat_t) {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return st, st.Sys().(*syscall.Stat_t)
	}
	if st, sys := stat(filepath.Join(jail, "home")); int(sys.Uid) != uid || int(sys.Gid) != gid || st.Mode().Perm() != 0o750 {
		t.Errorf("chown2/chmod: %d:%d %v", sys.Uid, sys.Gid, st.Mode())
	}
	if st, _ := stat(filepath.Join(jail, "shared")); st.Mode()&os.ModeSticky == 0 || st.Mode().Perm() != 0o777 {
		t.Errorf("sticky: %v", st.Mode())
	}
	if _, sys := stat(filepath.Join(jail, "home", "by-user")); int(sys.Uid) != uid {
		t.Errorf("as-user wrote as uid %d, want %d", sys.Uid, uid)
	}
	events := filepath.Join(jail, "home", "events")

	// A touch: the emperor asks for a reload; emperor-reload runs first,
	// then the old file's as-user-atexit, then the new as-user.
	os.Chtimes(path, time.Now(), time.Now())
	waitFor(t, time.Minute, "the reload's hooks", func() bool {
		b, _ := os.ReadFile(events)
		return strings.Count(string(b), "as-user\n") == 2
	})
	// A delete: emperor-stop, then as-user-atexit.
	os.Remove(path)
	waitFor(t, time.Minute, "the vassal to go", func() bool { _, ok := e.vassal("hk"); return !ok })
	want := "as-user\nemperor-reload\nas-user-atexit\nas-user\nemperor-stop\nas-user-atexit\n"
	if got := read(events); got != want {
		t.Fatalf("events %q, want %q", got, want)
	}
	log := e.log.String()
	if strings.Contains(log, secret) {
		t.Fatalf("a private hook's argument reached the log:\n%s", log)
	}
	if !strings.Contains(log, "running private hook") {
		t.Fatalf("no log line for the private hook:\n%s", log)
	}

	// exit:N stops the vassal, with a reason that names the hook.
	e.install("hkexit", "[uwsgi]\nhook-as-root = print:before exit\nhook-as-root = exit:7\nhook-as-root = creat:"+filepath.Join(host, "after-exit")+"\n")
	waitFor(t, time.Minute, "the exit hook to stop the vassal", func() bool {
		v, _ := e.vassal("hkexit")
		return v.Restarts >= 1 && strings.Contains(v.LastExit, "exit:7 (as-root, line 3): exit hook: exit status 7")
	})
	if _, err := os.Stat(filepath.Join(host, "after-exit")); !os.IsNotExist(err) {
		t.Fatalf("a hook after exit: ran: %v", err)
	}
}
