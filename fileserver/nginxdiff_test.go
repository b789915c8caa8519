package fileserver

import (
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/emperor-dev/emperor/fileserver/fstest"
)

// Issue 9 §1's differential test against nginx (fstest.RunDifferential),
// for a local folder: both servers serve the same folder.
// EMPEROR_DIFF_SEED picks the seed (default 1), EMPEROR_DIFF_N the number
// of requests (default 600).
func TestDifferentialNginx(t *testing.T) {
	ngx, err := exec.LookPath("nginx")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("nginx not found (make deps installs nginx-light)")
		}
		t.Skip("nginx not found (make deps installs nginx-light)")
	}
	seed, n := envInt(t, "EMPEROR_DIFF_SEED", 1), envInt(t, "EMPEROR_DIFF_N", 600)
	dir := t.TempDir()
	tree, err := fstest.Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	ours := serveExact(t, Config{Mounts: []Mount{localMount(t, "/", dir, false)},
		Cache: CacheConfig{TTL: time.Hour, MaxFile: 16 << 20, MaxSize: 256 << 20}})
	fstest.RunDifferential(t, ours, fstest.StartNginx(t, ngx, dir), tree, seed, n)
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}
