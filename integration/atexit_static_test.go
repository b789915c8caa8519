package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// A static-map of a folder inside the tenant's FUSE mount does not hold the
// mount when the vassal stops: the file server stops, and closes its
// folders, before the as-user-atexit hooks' fusermount -u. The old PID 1
// kept the folder open until it exited, and the unmount failed with EBUSY.
func TestAtexitUnmountWithStaticMapInside(t *testing.T) {
	fuseForUsers(t)
	user, _, _, dir, zipPath, mnt := tenantZip(t, "emptstat")
	marks := filepath.Join(dir, "marks")
	if err := os.WriteFile(marks, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	os.Chmod(marks, 0o666)
	e := startEmperor(t)
	path := e.install("zs", fmt.Sprintf(`[uwsgi]
uid = %s
gid = %s
exec-as-user = fuse-zip -r %s %s
http-socket = 127.0.0.1:0
static-map = /z=%s
exec-as-user-atexit = fusermount -u %s
exec-as-user-atexit = grep -q ' %s ' /proc/self/mountinfo || echo unmounted >> %s
`, user, user, zipPath, mnt, mnt, mnt, mnt, marks))
	e.waitState("zs", "running", hangTimeout)
	rx := regexp.MustCompile(`msg="serving HTTP" vassal=zs addr=([0-9.:]+)`)
	var addr string
	waitFor(t, hangTimeout, "the vassal to serve", func() bool {
		m := rx.FindStringSubmatch(e.log.String())
		if m != nil {
			addr = m[1]
		}
		return m != nil
	})
	// The fault in place: the file server serves from inside the mount.
	if code, body, err := get("http://" + addr + "/z/hello.txt"); err != nil || code != 200 || body != zipFiles["hello.txt"] {
		t.Fatalf("%d %q %v", code, body, err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	waitFor(t, hangTimeout, "the vassal to go", func() bool { _, ok := e.vassal("zs"); return !ok })
	b, _ := os.ReadFile(marks)
	if strings.Contains(e.log.String(), "as-user-atexit hook failed") || string(b) != "unmounted\n" {
		t.Fatalf("the atexit unmount failed (marks %q)", b)
	}
	if left := mountSeenAnywhere(mnt); len(left) > 0 {
		t.Fatalf("%s still mounted for %v", mnt, left)
	}
}
