package integration

import (
	"archive/zip"
	"fmt"
	"io"
	"os"
	"os/exec"
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

// testUser creates a system user for the test and removes it afterwards.
func testUser(t *testing.T, name string) (uid, gid int) {
	t.Helper()
	exec.Command("userdel", name).Run()
	if out, err := exec.Command("useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", name).CombinedOutput(); err != nil {
		t.Fatalf("useradd %s: %v %s", name, err, out)
	}
	t.Cleanup(func() { exec.Command("userdel", name).Run() })
	out, err := exec.Command("id", "-u", name).Output()
	if err != nil {
		t.Fatal(err)
	}
	uid, _ = strconv.Atoi(strings.TrimSpace(string(out)))
	out, _ = exec.Command("id", "-g", name).Output()
	gid, _ = strconv.Atoi(strings.TrimSpace(string(out)))
	return uid, gid
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

// tenantZip makes the tutorial's fixture: a test user, a zip of zipFiles it
// can read, and an empty mount point it owns.
func tenantZip(t *testing.T, user string) (uid, gid int, dir, zipPath, mnt string) {
	t.Helper()
	uid, gid = testUser(t, user)
	dir = publicDir(t)
	zipPath = filepath.Join(dir, "app.zip")
	writeZip(t, zipPath, zipFiles)
	mnt = filepath.Join(dir, "app")
	os.Mkdir(mnt, 0o755)
	os.Chown(mnt, uid, gid)
	return uid, gid, dir, zipPath, mnt
}
