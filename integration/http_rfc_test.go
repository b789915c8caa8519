package integration

import (
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/emperor-dev/emperor/fileserver/fstest"
)

// Issue 9 §1 against the real binary: every rule of exact HTTP as raw
// bytes over TCP to a vassal serving a GlusterFS volume (a replica-3
// volume from temporary bricks), with the cache on and off, and to one
// serving a local folder. Rule 11 (a file used as a directory is 404) was
// GlusterFS's alone.
func TestExactHTTPGluster(t *testing.T) {
	g := glusterd(t)
	var tree fstest.Tree
	vol := g.volume(t, fillTree(t, &tree))
	local := publicDir(t)
	var ltree fstest.Tree
	fillTree(t, &ltree)(local)
	e := startEmperor(t)
	mount := fmt.Sprintf("glusterfs-mount = mountpoint=/,volume=%s,server=127.0.0.1:0", vol)
	pc, pn, pl := freePort(t), freePort(t), lowPort(t)
	e.install("rfccache", glusterVassal(pc, mount))
	e.install("rfcnocache", glusterVassal(pn, mount, "static-cache-ttl = 0"))
	e.install("rfclocal", glusterVassal(pl, "static-map = /="+local))
	for _, n := range []string{"rfccache", "rfcnocache", "rfclocal"} {
		e.waitMounts(n, 60*time.Second)
	}
	cases := []struct {
		name string
		port int
	}{{"glusterfs, cache on", pc}, {"glusterfs, cache off", pn}, {"static-map", pl}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fstest.RunRFC(t, fmt.Sprintf("127.0.0.1:%d", c.port))
		})
	}
	// The differential test against nginx (issue 9 §1) for the GlusterFS
	// backend: nginx serves a local copy of the volume's tree, ours the
	// volume.
	ngx, err := exec.LookPath("nginx")
	if err != nil {
		t.Fatal("nginx not found (make deps installs nginx-light)")
	}
	copyDir := publicDir(t)
	if err := fstest.WriteTree(copyDir, tree); err != nil {
		t.Fatal(err)
	}
	nginx := fstest.StartNginx(t, ngx, copyDir)
	for _, c := range cases[:2] {
		t.Run("differential with nginx, "+c.name, func(t *testing.T) {
			fstest.RunDifferential(t, fmt.Sprintf("127.0.0.1:%d", c.port), nginx, tree, 1, 600)
		})
	}
}
