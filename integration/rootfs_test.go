package integration

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Seed 003's copy-on-write rootfs vassal ("A CoW rootfs (unionfs-fuse)"),
// verbatim: testdata/seed003_cow_rootfs.ini is the tutorial's file, byte for
// byte. Its paths are the tutorial's: /ns/precise (the shared rootfs),
// /ns/cow/user001 (the tenant's writable layer), /ufs (the union), user
// user001, port 9090.
const (
	seedNS       = "/ns"
	seedUFS      = "/ufs"
	seedUser     = "user001"
	seedURL      = "http://127.0.0.1:9090"
	seedMarker   = "trusted.emperor-seed003-test" // an xattr: /ufs must stay empty for FUSE
	seedAppWrite = "/tmp/written-by-app"
)

// myapp.pl: a PSGI hello app that writes into its root filesystem on
// /write and reads that file back on /read.
const seedApp = `# seed 003's PSGI app (integration/rootfs_test.go)
use strict;
my $file = '` + seedAppWrite + `';
my $app = sub {
    my $env = shift;
    my $path = $env->{PATH_INFO};
    if ($path eq '/write') {
        open(my $fh, '>', $file) or return [500, ['Content-Type' => 'text/plain'], ["open $file: $!\n"]];
        print $fh "written by uid $<\n";
        close($fh) or return [500, ['Content-Type' => 'text/plain'], ["close $file: $!\n"]];
        return [200, ['Content-Type' => 'text/plain'], ["written\n"]];
    }
    if ($path eq '/read') {
        open(my $fh, '<', $file) or return [404, ['Content-Type' => 'text/plain'], ["open $file: $!\n"]];
        local $/;
        my $body = <$fh>;
        return [200, ['Content-Type' => 'text/plain'], [$body]];
    }
    return [200, ['Content-Type' => 'text/plain'], ["hello from the cow rootfs\n"]];
};
`

// seedRootfs returns the tarball of scripts/rootfs.sh (built with
// mmdebstrap from Debian's packages on a fresh machine, else taken from its
// verified cache). The timeout only stops a hang: a cold build took 107 s.
func seedRootfs(t *testing.T) string {
	t.Helper()
	requireBinary(t, "mmdebstrap")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", "../scripts/rootfs.sh")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("scripts/rootfs.sh: %v\n%s", err, stderr.String())
	}
	t.Logf("rootfs in %v: %s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(stderr.String()))
	return strings.TrimSpace(stdout.String())
}

// seedDir creates dir (one of the tutorial's fixed top-level paths) for the
// test and removes it at the end. A dir this test did not create is never
// touched: the test fails and names it. One that an earlier, interrupted
// run of this test left (it has the marker, an extended attribute) is
// removed first, unless something is still mounted on it.
func seedDir(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Lstat(dir); err == nil {
		if _, err := syscall.Getxattr(dir, seedMarker, nil); err != nil {
			t.Fatalf("%s exists and this test did not create it; seed 003's vassal uses that path verbatim: move it away to run the test", dir)
		}
		if pids := mountSeenAnywhere(dir); len(pids) > 0 {
			t.Fatalf("%s, left by an earlier run of this test, is still mounted in the mount namespaces of pids %v", dir, pids)
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Fatalf("remove %s left by an earlier run: %v", dir, err)
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if pids := mountSeenAnywhere(dir); len(pids) > 0 {
			t.Errorf("%s still mounted (pids %v): not removed", dir, pids)
			return
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove %s: %v", dir, err)
		}
	})
	if err := syscall.Setxattr(dir, seedMarker, []byte("integration/rootfs_test.go"), 0); err != nil {
		t.Fatalf("mark %s as this test's: %v", dir, err)
	}
}

// seedTenant returns user001's ids, creating the user (and its group) if it
// is missing and removing what it created when the test ends. Call it
// before startEmperor, so that no process of the user is left by then.
func seedTenant(t *testing.T) (uid, gid int) {
	t.Helper()
	u, err := user.Lookup(seedUser)
	if err != nil {
		if out, err := exec.Command("useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", seedUser).CombinedOutput(); err != nil {
			t.Fatalf("useradd %s: %v %s", seedUser, err, out)
		}
		t.Cleanup(func() {
			if out, err := exec.Command("userdel", seedUser).CombinedOutput(); err != nil {
				t.Errorf("userdel %s: %v %s", seedUser, err, out)
			}
		})
		if u, err = user.Lookup(seedUser); err != nil {
			t.Fatal(err)
		}
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid
}

// pidsWithArg lists live processes named name whose command line has arg.
func pidsWithArg(name, arg string) []int {
	var out []int
	for _, pid := range pidsNamed(name) {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		for _, a := range strings.Split(string(b), "\x00") {
			if strings.Contains(a, arg) {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

// appServers lists the uWSGI processes (master and workers) in the pid
// namespace ns.
func appServers(ns string) []int {
	return append(pidsInNSNamed(ns, "uwsgi"), pidsInNSNamed(ns, "uwsgi-core")...)
}

func TestSeed003CowRootfs(t *testing.T) {
	requireRoot(t)
	requireBinary(t, "unionfs-fuse", "tar", "useradd", "userdel")
	vassal, err := os.ReadFile("testdata/seed003_cow_rootfs.ini")
	if err != nil {
		t.Fatal(err)
	}
	// The seed listens on :9090: it must be free (nothing of an earlier run
	// may hold it).
	if l, err := net.Listen("tcp", ":9090"); err != nil {
		t.Fatalf("port 9090, which seed 003's vassal uses verbatim, is taken by %s: %v", portHolder(9090), err)
	} else {
		l.Close()
	}
	tarball := seedRootfs(t)

	// The tutorial's layout; the user and the directories outlive the
	// emperor (their cleanups are registered first, so they run last).
	uid, gid := seedTenant(t)
	seedDir(t, seedNS)
	seedDir(t, seedUFS)
	precise := filepath.Join(seedNS, "precise")
	cow := filepath.Join(seedNS, "cow", seedUser)
	for _, d := range []string{precise, cow} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(cow, uid, gid); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("tar", "--numeric-owner", "-xpf", tarball, "-C", precise).CombinedOutput(); err != nil {
		t.Fatalf("extract %s: %v %s", tarball, err, out)
	}
	if err := os.WriteFile(filepath.Join(precise, "var/www/myapp.pl"), []byte(seedApp), 0o644); err != nil {
		t.Fatal(err)
	}

	e := startEmperor(t)
	path := e.install("app001", string(vassal))

	t.Log("the app serves from the rootfs, as user001")
	// A rejected file fails at once, with the emperor's error.
	waitFor(t, time.Minute, "HTTP 200 from "+seedURL+"/", func() bool {
		if v, ok := e.vassal("app001"); ok && v.State == "failed-config" {
			t.Fatalf("seed 003's vassal rejected: %s", v.ConfigError)
		}
		code, _, err := get(seedURL + "/")
		return err == nil && code == 200
	})
	if _, body, _ := get(seedURL + "/"); body != "hello from the cow rootfs\n" {
		t.Fatalf("GET / = %q", body)
	}
	v := e.waitState("app001", "running", time.Minute)
	ns := pidNamespace(v.PID)
	apps := appServers(ns)
	if len(apps) == 0 {
		t.Fatalf("no uwsgi process in the vassal's pid namespace (%v)", procsInNamespace(ns))
	}
	for _, pid := range apps {
		p, _ := readProc(pid)
		if p.uid != uid {
			t.Fatalf("uwsgi pid %d runs as uid %d, not %s's %d", pid, p.uid, seedUser, uid)
		}
		// Its root is the union: it has the rootfs's app, and not the
		// host's /ns/precise.
		if _, err := os.Stat(fmt.Sprintf("/proc/%d/root/var/www/myapp.pl", pid)); err != nil {
			t.Fatalf("uwsgi pid %d does not see the rootfs: %v", pid, err)
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d/root%s", pid, precise)); err == nil {
			t.Fatalf("uwsgi pid %d reaches the host's %s: it is not jailed in the union", pid, precise)
		}
		ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/root/.old_root", pid))
		if err != nil || len(ents) != 0 {
			t.Fatalf("uwsgi pid %d: .old_root has %d entries (err %v): the old root is still mounted", pid, len(ents), err)
		}
	}
	if u := pidsInNSNamed(ns, "unionfs-fuse"); len(u) != 1 {
		t.Fatalf("unionfs-fuse in the vassal's pid namespace: %v", u)
	}
	if mounted(seedUFS) {
		t.Fatalf("%s is mounted in the host's mount namespace", seedUFS)
	}

	t.Log("a file the app writes lands in the tenant's cow dir, not in the rootfs")
	if code, body, err := get(seedURL + "/write"); err != nil || code != 200 {
		t.Fatalf("GET /write: %d %q %v", code, body, err)
	}
	want := fmt.Sprintf("written by uid %d\n", uid)
	if b, err := os.ReadFile(filepath.Join(cow, seedAppWrite)); err != nil || string(b) != want {
		t.Fatalf("%s: %q %v, want %q", filepath.Join(cow, seedAppWrite), b, err, want)
	}
	if _, err := os.Stat(filepath.Join(precise, seedAppWrite)); err == nil {
		t.Fatalf("the app wrote into the shared rootfs %s", precise)
	}
	if _, body, _ := get(seedURL + "/read"); body != want {
		t.Fatalf("GET /read = %q, want %q", body, want)
	}

	t.Log("killing unionfs-fuse gives a clean restart")
	u := pidsInNSNamed(ns, "unionfs-fuse")
	if len(u) != 1 {
		t.Fatalf("unionfs-fuse in the vassal's pid namespace: %v", u)
	}
	if err := syscall.Kill(u[0], syscall.SIGKILL); err != nil {
		t.Fatalf("kill unionfs-fuse %d: %v", u[0], err)
	}
	// The fault happened: the process is dead (a zombie until its parent
	// reaps it, or gone).
	waitFor(t, time.Minute, fmt.Sprintf("unionfs-fuse %d to die", u[0]), func() bool {
		p, ok := readProc(u[0])
		return !ok || strings.HasPrefix(p.state, "Z")
	})
	var next int
	waitFor(t, time.Minute, "a new vassal that serves", func() bool {
		n, ok := e.vassal("app001")
		if !ok || n.PID == v.PID || n.State != "running" {
			return false
		}
		code, body, err := get(seedURL + "/")
		next = n.PID
		return err == nil && code == 200 && body == "hello from the cow rootfs\n"
	})
	waitFor(t, time.Minute, "the old vassal's processes to go", func() bool { return len(procsInNamespace(ns)) == 0 })
	ns = pidNamespace(next)
	if u := pidsInNSNamed(ns, "unionfs-fuse"); len(u) != 1 {
		t.Fatalf("unionfs-fuse in the new vassal: %v", u)
	}
	if all := pidsWithArg("unionfs-fuse", "chroot="+seedNS); len(all) != 1 {
		t.Fatalf("unionfs-fuse processes of %s after the restart: %v (want the new one only)", seedNS, all)
	}
	if mounted(seedUFS) {
		t.Fatalf("%s is mounted in the host's mount namespace after the restart", seedUFS)
	}
	// The tenant's layer survives: the new union shows the file again.
	if _, body, _ := get(seedURL + "/read"); body != want {
		t.Fatalf("GET /read after the restart = %q, want %q", body, want)
	}

	t.Log("deleting the file leaves no mount and no process")
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "app001 to leave the table", func() bool { _, ok := e.vassal("app001"); return !ok })
	waitFor(t, time.Minute, "the vassal's processes to go", func() bool { return len(procsInNamespace(ns)) == 0 })
	if left := pidsWithArg("unionfs-fuse", "chroot="+seedNS); len(left) != 0 {
		t.Fatalf("unionfs-fuse left: %v", left)
	}
	if left := mountSeenAnywhere(seedUFS); len(left) != 0 {
		t.Fatalf("%s still mounted in the mount namespaces of %v", seedUFS, left)
	}
	if c, err := net.DialTimeout("tcp", "127.0.0.1:9090", hangTimeout); err == nil {
		c.Close()
		t.Fatal("something still accepts on 9090")
	}
	if b, err := os.ReadFile(filepath.Join(cow, seedAppWrite)); err != nil || string(b) != want {
		t.Fatalf("the tenant's data after the stop: %q %v", b, err)
	}
}

// mounted says whether the test's own mount namespace (the host's) has a
// mount on target.
func mounted(target string) bool {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == target {
			return true
		}
	}
	return false
}
