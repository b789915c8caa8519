package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emperor-dev/emperor/control"
)

var zipFiles = map[string]string{
	"hello.txt":  "hello from the zip\n",
	"index.html": "<!doctype html><p>zip app</p>\n",
	"big.bin":    strings.Repeat("0123456789abcdef", 4096),
}

// The tutorial's zip-app vassal: fuse-zip mounted as the tenant from an
// if-not-reload block, an attached httpd serving the mount, and
// mountpoint-check on it.
func TestZipApp(t *testing.T) {
	fuseForUsers(t)
	user, uid, _, _, zipPath, mnt := tenantZip(t, "emptzip")
	bin := publicTestBinary(t)
	port := freePort(t)
	e := startEmperor(t)
	path := e.install("app001", fmt.Sprintf(`[uwsgi]
uid = %s
gid = %s

; mount FUSE filesystem under the app dir (but only if it is not a reload)
if-not-reload =
  exec-as-user = fuse-zip -r %s %s
endif =

shared-socket = 127.0.0.1:%d
env = EMPEROR_TEST_HTTPD=1
env = EMPEROR_TEST_HTTPD_ROOT=%s
attach-daemon = exec %s

mountpoint-check = %s
`, user, user, zipPath, mnt, port, mnt, bin, mnt))
	base := fmt.Sprintf("http://127.0.0.1:%d/", port)
	serving := func() bool {
		resp, err := client.Get(base + "hello.txt")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		buf := make([]byte, 64)
		n, _ := resp.Body.Read(buf)
		return resp.StatusCode == 200 && string(buf[:n]) == zipFiles["hello.txt"]
	}
	waitFor(t, time.Minute, "the zip app", serving)
	checkContent := func() {
		t.Helper()
		for name, want := range zipFiles {
			if got, _ := mustGet(t, base+name); got != want {
				t.Fatalf("%s: %d bytes, want %d, content differs", name, len(got), len(want))
			}
		}
	}
	checkContent()
	fuseZip := func() (int, string) {
		t.Helper()
		v := e.waitState("app001", "running", time.Minute)
		ns := pidNamespace(v.PID)
		var pids []int
		waitFor(t, time.Minute, "fuse-zip in the vassal", func() bool {
			pids = pidsInNSNamed(ns, "fuse-zip")
			return len(pids) == 1
		})
		p, _ := readProc(pids[0])
		if p.uid != uid {
			t.Fatalf("fuse-zip runs as uid %d, want %d", p.uid, uid)
		}
		return pids[0], ns
	}

	t.Run("host never sees the mount", func(t *testing.T) {
		self, _ := os.ReadFile("/proc/self/mountinfo")
		if strings.Contains(string(self), " "+mnt+" ") {
			t.Fatal("the host's mount namespace has the vassal's mount")
		}
		_, ns := fuseZip()
		for _, pid := range mountSeenAnywhere(mnt) {
			if pidNamespace(pid) != ns {
				t.Fatalf("pid %d outside the vassal sees %s", pid, mnt)
			}
		}
	})

	t.Run("kill -9 of fuse-zip", func(t *testing.T) {
		fz, _ := fuseZip()
		syscall.Kill(fz, syscall.SIGKILL)
		waitFor(t, time.Minute, "serving again after kill -9", func() bool {
			return serving() && len(pidsNamed("fuse-zip")) > 0 && !containsPid(pidsNamed("fuse-zip"), fz)
		})
		checkContent()
		if v, _ := e.vassal("app001"); !strings.Contains(v.LastExit, "ENOTCONN") {
			t.Fatalf("last exit %q does not name ENOTCONN", v.LastExit)
		}
	})

	t.Run("SIGSTOP of fuse-zip", func(t *testing.T) {
		fz, _ := fuseZip()
		syscall.Kill(fz, syscall.SIGSTOP)
		defer syscall.Kill(fz, syscall.SIGCONT)
		waitFor(t, time.Minute, "serving again after SIGSTOP", func() bool {
			return !containsPid(pidsNamed("fuse-zip"), fz) && serving()
		})
		checkContent()
		if v, _ := e.vassal("app001"); !strings.Contains(v.LastExit, "timed out") {
			t.Fatalf("last exit %q does not say the statfs timed out", v.LastExit)
		}
	})

	t.Run("touch reloads without remounting", func(t *testing.T) {
		fz, _ := fuseZip()
		v1 := e.waitState("app001", "running", time.Minute)
		_, daemon1 := mustGet(t, base+"hello.txt")
		l := startLoad(base + "hello.txt")
		l.waitAnswers(t, 10)
		now := time.Now()
		os.Chtimes(path, now, now)
		waitFor(t, time.Minute, "the restarted httpd", func() bool {
			_, d, err := getPid(base + "hello.txt")
			return err == nil && d != daemon1
		})
		l.waitAnswers(t, 10)
		l.end(t)
		fz2, _ := fuseZip()
		if fz2 != fz {
			t.Fatalf("reload remounted: fuse-zip %d -> %d", fz, fz2)
		}
		if v2, _ := e.vassal("app001"); v2.PID != v1.PID {
			t.Fatalf("reload changed PID 1: %d -> %d", v1.PID, v2.PID)
		}
		checkContent()
	})

	t.Run("delete leaves nothing", func(t *testing.T) {
		fz, ns := fuseZip()
		os.Remove(path)
		waitFor(t, time.Minute, "the vassal to go", func() bool { _, ok := e.vassal("app001"); return !ok })
		if left := procsInNamespace(ns); len(left) > 0 {
			t.Fatalf("processes left: %v", left)
		}
		if containsPid(pidsNamed("fuse-zip"), fz) {
			t.Fatal("fuse-zip survived")
		}
		if left := mountSeenAnywhere(mnt); len(left) > 0 {
			t.Fatalf("%s still mounted for pids %v", mnt, left)
		}
	})
}

func getPid(url string) (string, string, error) {
	resp, err := client.Get(url)
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	return resp.Status, resp.Header.Get("X-Pid"), nil
}

func containsPid(pids []int, pid int) bool {
	for _, p := range pids {
		if p == pid {
			return true
		}
	}
	return false
}

// buildRootfs makes a tiny rootfs from busybox-static: what the tutorial
// builds with debootstrap.
func buildRootfs(t *testing.T, dir string) {
	t.Helper()
	requireBinary(t, "busybox")
	for _, d := range []string{"bin", "proc", "dev", "tmp", "www", "etc", ".old_root"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(dir, "tmp"), 0o1777)
	bb, _ := os.ReadFile("/bin/busybox")
	if err := os.WriteFile(filepath.Join(dir, "bin/busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"sh", "httpd", "sleep", "echo", "cat", "ls", "id"} {
		os.Symlink("busybox", filepath.Join(dir, "bin", a))
	}
	os.WriteFile(filepath.Join(dir, "www/index.html"), []byte("<p>shared base</p>\n"), 0o644)
}

// The tutorial's copy-on-write rootfs: unionfs-fuse in pre-jail, pivot_root,
// /proc and /dev in as-root, the old root detached, mountpoint-check = /.
func TestCowRootfs(t *testing.T) {
	fuseForUsers(t)
	ns := publicDir(t)
	buildRootfs(t, filepath.Join(ns, "base"))
	ufs := filepath.Join(publicDir(t), "ufs")
	os.Mkdir(ufs, 0o755)
	type tenant struct {
		user string
		uid  int
		gid  int
		port int
		path string
	}
	var tenants []tenant
	// The users before the emperor: they are removed after it stops.
	for _, prefix := range []string{"emptcowa", "emptcowb"} {
		user, uid, gid := testUser(t, prefix)
		tenants = append(tenants, tenant{user: user, uid: uid, gid: gid})
	}
	e := startEmperor(t)
	for i := range tenants {
		user, uid, gid := tenants[i].user, tenants[i].uid, tenants[i].gid
		cow := filepath.Join(ns, "cow", user)
		os.MkdirAll(cow, 0o755)
		os.Chown(cow, uid, gid)
		port := freePort(t)
		path := e.install(user, fmt.Sprintf(`[uwsgi]
uid = %s
gid = %s
; chdir to / to avoid problems after pivot_root
hook-pre-jail = callret:chdir /
hook-pre-jail = exec:unionfs-fuse -ocow,chroot=%s,default_permissions,allow_other /base=RO:/cow/%%(uid)=RW %s
pivot_root = %s %s/.old_root
hook-as-root = mount:proc none /proc
hook-as-root = mount:none /.old_root/dev /dev bind
hook-as-root = umount:/.old_root rec,detach
attach-daemon = echo written by %%(uid) > /tmp/app-wrote-this && exec httpd -f -p 127.0.0.1:%d -h /www
mountpoint-check = /
`, user, user, ns, ufs, ufs, ufs, port))
		tenants[i].port, tenants[i].path = port, path
	}
	ua, ub := tenants[0].user, tenants[1].user
	for _, tn := range tenants {
		body := waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/index.html", tn.port), time.Minute)
		if body != "<p>shared base</p>\n" {
			t.Fatalf("%s serves %q", tn.user, body)
		}
	}
	daemonOf := func(user string) int {
		t.Helper()
		v := e.waitState(user, "running", time.Minute)
		var pids []int
		waitFor(t, time.Minute, "httpd of "+user, func() bool {
			pids = pidsInNSNamed(pidNamespace(v.PID), "httpd")
			return len(pids) == 1
		})
		return pids[0]
	}
	wrote := func(user string) string {
		b, _ := os.ReadFile(filepath.Join(ns, "cow", user, "tmp/app-wrote-this"))
		return string(b)
	}
	waitFor(t, time.Minute, "the apps' writes", func() bool {
		return wrote(ua) != "" && wrote(ub) != ""
	})

	t.Run("writes land in the tenant's cow dir, the base is untouched", func(t *testing.T) {
		if w := wrote(ua); w != "written by "+ua+"\n" {
			t.Fatalf("cow of a: %q", w)
		}
		if _, err := os.Stat(filepath.Join(ns, "base/tmp/app-wrote-this")); err == nil {
			t.Fatal("the shared base was written")
		}
	})

	t.Run("tenants do not see each other's writes", func(t *testing.T) {
		for _, tn := range []string{ua, ub} {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/root/tmp/app-wrote-this", daemonOf(tn)))
			if err != nil || string(b) != "written by "+tn+"\n" {
				t.Fatalf("%s sees %q (%v)", tn, b, err)
			}
		}
	})

	t.Run("the host filesystem is out of reach", func(t *testing.T) {
		pid := daemonOf(ua)
		root := fmt.Sprintf("/proc/%d/root", pid)
		ents, err := os.ReadDir(root + "/.old_root")
		if err != nil || len(ents) != 0 {
			t.Fatalf(".old_root: %v entries, err %v", len(ents), err)
		}
		for _, hostPath := range []string{ns, "/etc/passwd", "/usr", filepath.Dir(emperorBin)} {
			if _, err := os.Stat(root + hostPath); err == nil {
				t.Fatalf("the vassal reaches the host's %s", hostPath)
			}
		}
		mi, _ := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
		if strings.Contains(string(mi), "/.old_root") {
			t.Fatalf("old root still mounted:\n%s", mi)
		}
		p, _ := readProc(pid)
		if p.uid == 0 {
			t.Fatal("the tenant's app runs as root")
		}
	})

	t.Run("kill -9 of unionfs-fuse keeps the cow data", func(t *testing.T) {
		os.WriteFile(filepath.Join(ns, "cow", ua, "tmp/kept"), []byte("kept\n"), 0o644)
		v := e.waitState(ua, "running", time.Minute)
		u := pidsInNSNamed(pidNamespace(v.PID), "unionfs-fuse")
		if len(u) != 1 {
			t.Fatalf("unionfs-fuse in the vassal: %v", u)
		}
		syscall.Kill(u[0], syscall.SIGKILL)
		waitFor(t, time.Minute, "tenant a back", func() bool {
			n, _ := e.vassal(ua)
			if n.PID == v.PID || n.State != "running" {
				return false
			}
			code, _, err := get(fmt.Sprintf("http://127.0.0.1:%d/index.html", tenants[0].port))
			return err == nil && code == 200
		})
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/root/tmp/kept", daemonOf(ua)))
		if err != nil || string(b) != "kept\n" {
			t.Fatalf("cow data after restart: %q %v", b, err)
		}
	})

	t.Run("delete leaves nothing", func(t *testing.T) {
		var nss []string
		for _, tn := range tenants {
			v := e.waitState(tn.user, "running", time.Minute)
			nss = append(nss, pidNamespace(v.PID))
			os.Remove(tn.path)
		}
		waitFor(t, time.Minute, "an empty table", func() bool { return len(e.status()) == 0 })
		for _, n := range nss {
			if left := procsInNamespace(n); len(left) > 0 {
				t.Fatalf("left: %v", left)
			}
		}
		if left := mountSeenAnywhere(ufs); len(left) > 0 {
			t.Fatalf("%s still mounted for %v", ufs, left)
		}
		if w := wrote(ua); w == "" {
			t.Fatal("tenant data lost on stop")
		}
	})
}

// exec-as-user-atexit runs before a reload and on stop; the tutorial's
// fusermount -u unmounts the tenant's FUSE mount.
func TestAtexitHooks(t *testing.T) {
	fuseForUsers(t)
	user, _, _, dir, zipPath, mnt := tenantZip(t, "emptatx")
	marks := filepath.Join(dir, "marks")
	os.WriteFile(marks, nil, 0o666)
	os.Chmod(marks, 0o666)
	e := startEmperor(t)
	path := e.install("atx", fmt.Sprintf(`[uwsgi]
uid = %s
gid = %s
exec-as-user = fuse-zip -r %s %s
attach-daemon = exec sleep 1000
exec-as-user-atexit = echo atexit >> %s
exec-as-user-atexit = fusermount -u %s
`, user, user, zipPath, mnt, marks, mnt))
	v := e.waitState("atx", "running", time.Minute)
	os.Chtimes(path, time.Now(), time.Now())
	waitFor(t, time.Minute, "atexit before the reload", func() bool {
		b, _ := os.ReadFile(marks)
		return strings.Count(string(b), "atexit") == 1
	})
	e.waitState("atx", "running", time.Minute)
	os.Remove(path)
	waitFor(t, time.Minute, "atexit on stop", func() bool {
		b, _ := os.ReadFile(marks)
		return strings.Count(string(b), "atexit") == 2
	})
	waitFor(t, time.Minute, "the vassal to go", func() bool { _, ok := e.vassal("atx"); return !ok })
	if strings.Contains(e.log.String(), "as-user-atexit hook failed") {
		t.Fatalf("an atexit hook failed:\n%s", e.log.String())
	}
	_ = v
}

// Bad input and faults: each gets a clear error and leaves the others
// running.
func TestJailAndFuseFaults(t *testing.T) {
	fuseForUsers(t)
	requireBinary(t, "busybox")
	dir := publicDir(t)
	zipPath := filepath.Join(dir, "a.zip")
	writeZip(t, zipPath, zipFiles)
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	file := filepath.Join(dir, "plainfile")
	os.WriteFile(file, []byte("x"), 0o644)
	e := startEmperor(t, "emperor-throttle = 100", "emperor-max-throttle = 400")
	port := freePort(t)
	e.install("good", httpdVassal(t, port))
	good := e.waitState("good", "running", time.Minute)
	cases := []struct{ name, body, want string }{
		{"norootfs", "pivot_root = /nonexistent-rootfs /nonexistent-rootfs/.old_root\n", "pivot_root: new root /nonexistent-rootfs: stat /nonexistent-rootfs: no such file or directory"},
		{"notdir", fmt.Sprintf("pivot_root = %s %s/.old\n", file, file), "not a directory"},
		{"nobinary", "exec-as-root = fuse-zip-not-installed -r a.zip /mnt\n", "exit status 127"},
		{"diesatonce", fmt.Sprintf("exec-as-root = fuse-zip -f -r %s %s & sleep 0.3; kill -9 $!\nmountpoint-check = %s\n", zipPath, mnt, mnt), "ENOTCONN"},
		{"hangs", "hook-timeout = 1\nexec-as-root = sleep 100\n", "timed out (hook-timeout)"},
	}
	for _, c := range cases {
		e.install(c.name, "[uwsgi]\n"+c.body+"attach-daemon = exec sleep 1000\n")
	}
	for _, c := range cases {
		waitFor(t, time.Minute, c.name+" to fail with a clear reason", func() bool {
			v, _ := e.vassal(c.name)
			return v.Restarts >= 1 && strings.Contains(v.LastExit, c.want)
		})
		v, _ := e.vassal(c.name)
		t.Logf("%s: %s", c.name, v.LastExit)
	}
	if g, _ := e.vassal("good"); g.PID != good.PID || g.State != "running" {
		t.Fatalf("the good vassal was disturbed: %+v", g)
	}
	waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/hello.txt", port), time.Minute)
	if left := mountSeenAnywhere(mnt); len(left) > 0 {
		// only the current instance of "diesatonce" may hold it, briefly
		for _, pid := range left {
			if p, ok := readProc(pid); ok && p.comm != "emperor" && p.comm != "sh" && p.comm != "fuse-zip" && p.comm != "sleep" {
				t.Fatalf("unexpected holder of %s: %+v", mnt, p)
			}
		}
	}
}

// No fd, thread or mount leaks across 200 restarts of one vassal.
func TestNoLeaksAcross200Restarts(t *testing.T) {
	fuseForUsers(t)
	dir := publicDir(t)
	zipPath := filepath.Join(dir, "a.zip")
	writeZip(t, zipPath, zipFiles)
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	e := startEmperor(t, "emperor-throttle = 1", "emperor-max-throttle = 2")
	// Each instance mounts the zip; the test kills its fuse-zip, the check
	// finds the mount dead (ENOTCONN) and the vassal is destroyed and
	// restarted. (An unmount by a daemon raced the check and fuse-zip's
	// start: it could fail with EBUSY and leave the vassal running.)
	e.install("leak", fmt.Sprintf(`[uwsgi]
exec-as-root = fuse-zip -r %s %s
mountpoint-check = %s
attach-daemon = exec sleep 1000
`, zipPath, mnt, mnt))
	emp := e.cmd.Process.Pid
	// restart kills the fuse-zip of the running instance and waits for the
	// next instance to run.
	prev := 0
	restart := func(i int) {
		t.Helper()
		var v control.VassalStatus
		waitFor(t, time.Minute, fmt.Sprintf("instance %d running", i), func() bool {
			var ok bool
			v, ok = e.vassal("leak")
			return ok && v.State == "running" && v.PID != prev
		})
		var fz []int
		waitFor(t, time.Minute, fmt.Sprintf("fuse-zip of instance %d", i), func() bool {
			fz = pidsInNSNamed(pidNamespace(v.PID), "fuse-zip")
			return len(fz) == 1
		})
		if err := syscall.Kill(fz[0], syscall.SIGKILL); err != nil {
			t.Fatalf("kill fuse-zip %d of instance %d: %v", fz[0], i, err)
		}
		// The fault happened: fuse-zip is dead (gone, or a zombie until its
		// parent reaps it), before the wait for its consequence.
		waitFor(t, time.Minute, fmt.Sprintf("fuse-zip %d to die", fz[0]), func() bool {
			p, ok := readProc(fz[0])
			return !ok || strings.HasPrefix(p.state, "Z") || pidNamespace(fz[0]) != pidNamespace(v.PID)
		})
		prev = v.PID
	}
	for i := 0; i < 10; i++ {
		restart(i)
	}
	waitFor(t, time.Minute, "10 restarts", func() bool { v, _ := e.vassal("leak"); return v.Restarts >= 10 })
	fds0, thr0 := fdCount(emp), threadCount(emp)
	// The host's mount table as far as this test is concerned: the rest of
	// it belongs to whatever else runs on the machine.
	ours := func() []string {
		b, _ := os.ReadFile("/proc/self/mountinfo")
		var out []string
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, dir) || strings.Contains(line, "fuse-zip") {
				out = append(out, line)
			}
		}
		return out
	}
	hostMounts0 := ours()
	for i := 10; i < 210; i++ {
		restart(i)
	}
	waitFor(t, time.Minute, "210 restarts", func() bool { v, _ := e.vassal("leak"); return v.Restarts >= 210 })
	e.waitState("leak", "running", time.Minute)
	v, _ := e.vassal("leak")
	if !strings.Contains(v.LastExit, "ENOTCONN") {
		t.Fatalf("restarts for the wrong reason: %q", v.LastExit)
	}
	fds1, thr1 := fdCount(emp), threadCount(emp)
	hostMounts1 := ours()
	t.Logf("emperor fds %d -> %d, threads %d -> %d", fds0, fds1, thr0, thr1)
	// A leak per restart would add about 200; the Go runtime may add a few
	// threads for blocking syscalls whatever the count of restarts.
	if fds1 > fds0+4 {
		t.Fatalf("emperor fds grew from %d to %d over 200 restarts", fds0, fds1)
	}
	if thr1 > thr0+8 {
		t.Fatalf("emperor threads grew from %d to %d over 200 restarts", thr0, thr1)
	}
	if len(hostMounts0) != 0 || len(hostMounts1) != 0 {
		t.Fatalf("the host sees the vassal's mounts: %q, then %q", hostMounts0, hostMounts1)
	}
	var fuseZips []int
	for _, p := range descendants(emp) {
		if p.comm == "fuse-zip" && !strings.HasPrefix(p.state, "Z") {
			fuseZips = append(fuseZips, p.pid)
		}
	}
	if len(fuseZips) > 1 {
		t.Fatalf("%d fuse-zip processes alive under the emperor: %v", len(fuseZips), fuseZips)
	}
	if holders := mountSeenAnywhere(mnt); len(holders) > 1 {
		t.Fatalf("the mount is seen in %d namespaces", len(holders))
	}
	os.Remove(filepath.Join(e.dir, "leak.ini"))
	waitFor(t, time.Minute, "an empty table", func() bool { return len(e.status()) == 0 })
	if kids := descendants(emp); len(kids) > 0 {
		t.Fatalf("left: %+v", kids)
	}
}
