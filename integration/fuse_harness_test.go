package integration

import (
	"archive/zip"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fuseForUsers gives /dev/fuse mode 0666 (udev's default) for the test run
// when the machine has 0600, so a FUSE daemon can run as a tenant, and
// restores the old mode when the test ends.
func fuseForUsers(t *testing.T) {
	t.Helper()
	requireRoot(t)
	requireBinary(t, "fuse-zip", "unionfs-fuse", "fusermount3")
	st, err := os.Stat("/dev/fuse")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("/dev/fuse: %v (CI=true forbids skipping)", err)
		}
		t.Skipf("/dev/fuse: %v", err)
	}
	old := st.Mode().Perm()
	if old&0o006 != 0o006 {
		if err := os.Chmod("/dev/fuse", 0o666); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod("/dev/fuse", old) })
	}
}

// testUser creates a system user for the test and removes it afterwards
// (call it before startEmperor, so that the emperor and every process of
// the user are gone by then).
// Its name is prefix and a random suffix, never an existing user's: the test
// neither depends on nor disturbs a user an earlier run (or anyone) left.
func testUser(t *testing.T, prefix string) (name string, uid, gid int) {
	t.Helper()
	for i := 0; ; i++ {
		name = fmt.Sprintf("%s%06x", prefix, rand.IntN(1<<24))
		if _, err := user.Lookup(name); err != nil {
			break
		}
		if i == 100 {
			t.Fatalf("no free user name with prefix %s", prefix)
		}
	}
	if out, err := exec.Command("useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", name).CombinedOutput(); err != nil {
		t.Fatalf("useradd %s: %v %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("userdel", name).CombinedOutput(); err != nil {
			t.Errorf("userdel %s: %v %s", name, err, out)
		}
	})
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return name, uid, gid
}

// publicTestBinary copies this test binary where a tenant can execute it
// (it serves as the attached httpd).
func publicTestBinary(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(publicDir(t), "testhttpd")
	in, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	out.Close()
	return dst
}

// writeZip builds a zip of files (name -> content).
func writeZip(t *testing.T, path string, files map[string]string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for name, body := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, body)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	os.Chmod(path, 0o644)
}

// pidsNamed lists live processes whose comm is name.
func pidsNamed(name string) []int {
	var out []int
	for _, p := range allProcs() {
		if p.comm == name && !strings.HasPrefix(p.state, "Z") {
			out = append(out, p.pid)
		}
	}
	return out
}

// pidsInNSNamed lists processes named name in pid namespace ns.
func pidsInNSNamed(ns, name string) []int {
	var out []int
	for _, pid := range procsInNamespace(ns) {
		if p, ok := readProc(pid); ok && p.comm == name && !strings.HasPrefix(p.state, "Z") {
			out = append(out, pid)
		}
	}
	return out
}

func mustGet(t *testing.T, url string) (string, string) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return string(b), resp.Header.Get("X-Pid")
}

func fdCount(pid int) int {
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(ents)
}

func threadCount(pid int) int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Threads:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return -1
}

// tenantZip makes the tutorial's fixture: a test user (named prefix and a
// random suffix), a zip of zipFiles it can read, and an empty mount point it
// owns.
func tenantZip(t *testing.T, prefix string) (user string, uid, gid int, dir, zipPath, mnt string) {
	t.Helper()
	user, uid, gid = testUser(t, prefix)
	dir = publicDir(t)
	zipPath = filepath.Join(dir, "app.zip")
	writeZip(t, zipPath, zipFiles)
	mnt = filepath.Join(dir, "app")
	os.Mkdir(mnt, 0o755)
	os.Chown(mnt, uid, gid)
	return user, uid, gid, dir, zipPath, mnt
}
