package fileserver

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emperor-dev/emperor/fileserver/fstest"
)

func localMount(t *testing.T, prefix, dir string, autoindex bool) Mount {
	t.Helper()
	l, err := NewLocal(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return Mount{Prefix: prefix, Backend: l, Index: []string{"index.html"}, Autoindex: autoindex}
}

func serve(t *testing.T, cfg Config) string {
	t.Helper()
	s := New(cfg)
	ts := httptest.NewServer(s)
	t.Cleanup(func() { ts.Close(); s.Close() })
	return ts.URL
}

func TestConformanceLocal(t *testing.T) {
	dir := t.TempDir()
	tree, err := fstest.Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		cache CacheConfig
		auto  bool
	}{
		{"cache on", CacheConfig{TTL: time.Second, MaxFile: 16 << 20, MaxSize: 256 << 20}, false},
		{"cache off", CacheConfig{}, true},
		{"tiny cache", CacheConfig{TTL: time.Second, MaxFile: 2048, MaxSize: 4096, MaxHandles: 2}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			base := serve(t, Config{Mounts: []Mount{localMount(t, "/", dir, c.auto)}, Cache: c.cache})
			fstest.Run(t, base, tree, fstest.Options{Autoindex: c.auto})
		})
	}
}

// Mounts on / and /foo side by side, chosen by the longest prefix.
func TestLongestPrefix(t *testing.T) {
	root, foo := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(root, "a.txt"), []byte("root"), 0o644)
	os.WriteFile(filepath.Join(foo, "a.txt"), []byte("foo"), 0o644)
	os.MkdirAll(filepath.Join(root, "foobar"), 0o755)
	os.WriteFile(filepath.Join(root, "foobar/a.txt"), []byte("root foobar"), 0o644)
	tree, _ := fstest.Write(filepath.Join(foo, "t"))
	base := serve(t, Config{Mounts: []Mount{localMount(t, "/", root, false), localMount(t, "/foo", foo, false)}})
	for p, want := range map[string]string{"/a.txt": "root", "/foo/a.txt": "foo", "/foobar/a.txt": "root foobar"} {
		r, err := http.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if string(b) != want {
			t.Fatalf("%s: %q, want %q", p, b, want)
		}
	}
	fstest.Run(t, base+"/foo/t", tree, fstest.Options{})
}

func TestSymlinksStayInside(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o644)
	os.WriteFile(filepath.Join(dir, "real.txt"), []byte("real"), 0o644)
	os.Symlink("real.txt", filepath.Join(dir, "inside.txt"))
	os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "escape.txt"))
	os.Symlink("../"+filepath.Base(outside), filepath.Join(dir, "escapedir"))
	get := func(base, p string) int {
		r, err := http.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if strings.Contains(string(b), "secret") {
			t.Fatalf("%s served the outside file", p)
		}
		return r.StatusCode
	}
	base := serve(t, Config{Mounts: []Mount{localMount(t, "/", dir, false)}})
	if c := get(base, "/inside.txt"); c != 200 {
		t.Fatalf("inside symlink: %d", c)
	}
	for _, p := range []string{"/escape.txt", "/escapedir/secret"} {
		if c := get(base, p); c != 403 {
			t.Fatalf("%s: %d", p, c)
		}
	}
	// static-safe opts in to a target folder.
	l, _ := NewLocal(dir, []string{outside})
	defer l.Close()
	base2 := serve(t, Config{Mounts: []Mount{{Prefix: "/", Backend: l}}})
	r, _ := http.Get(base2 + "/escape.txt")
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != 200 || string(b) != "secret" {
		t.Fatalf("static-safe: %d %q", r.StatusCode, b)
	}
}

// A changed file is seen after at most the TTL; with TTL 0 at once.
func TestCacheRevalidation(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f.txt")
	os.WriteFile(p, []byte("one"), 0o644)
	s := New(Config{Mounts: []Mount{localMount(t, "/", dir, false)}, Cache: CacheConfig{TTL: 200 * time.Millisecond, MaxFile: 1 << 20, MaxSize: 1 << 20}})
	ts := httptest.NewServer(s)
	defer ts.Close()
	body := func() string {
		r, err := http.Get(ts.URL + "/f.txt")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		return string(b)
	}
	if body() != "one" {
		t.Fatal("first read")
	}
	os.WriteFile(p, []byte("two!"), 0o644)
	// The change shows once the 200 ms TTL has passed; the deadline only
	// stops a hang.
	deadline := time.Now().Add(time.Minute)
	for body() != "two!" {
		if time.Now().After(deadline) {
			t.Fatal("change never seen")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n, bytes, _ := s.Cache().Stats(); n == 0 || bytes != 4 {
		t.Fatalf("cache %d entries %d bytes", n, bytes)
	}
}

// Issue 9 §2: a FIFO, in the folder or reached through a symlink into a
// static-safe folder, is 403 at once: opened without blocking, refused
// after fstat. (A blocking open waited for a writer forever.)
func TestSpecialFilesNeverBlock(t *testing.T) {
	dir, safe := t.TempDir(), t.TempDir()
	for _, p := range []string{filepath.Join(dir, "fifo"), filepath.Join(safe, "fifo")} {
		if err := syscall.Mkfifo(p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Symlink(filepath.Join(safe, "fifo"), filepath.Join(dir, "safefifo"))
	os.WriteFile(filepath.Join(safe, "ok.txt"), []byte("ok"), 0o644)
	os.Symlink(filepath.Join(safe, "ok.txt"), filepath.Join(dir, "ok.txt"))
	l, err := NewLocal(dir, []string{safe})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, cc := range []CacheConfig{{}, {TTL: time.Second, MaxFile: 1 << 20, MaxSize: 1 << 20}} {
		base := serve(t, Config{Mounts: []Mount{{Prefix: "/", Backend: l}}, Cache: cc})
		c := &http.Client{Timeout: time.Minute} // stops a hang only
		for p, want := range map[string]int{"/fifo": 403, "/safefifo": 403, "/ok.txt": 200} {
			r, err := c.Get(base + p)
			if err != nil {
				// A server stuck in open(2) of a FIFO: a writer releases it,
				// so that the test ends instead of hanging in cleanup.
				for _, f := range []string{filepath.Join(dir, "fifo"), filepath.Join(safe, "fifo")} {
					if w, err := os.OpenFile(f, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
						w.Close()
					}
				}
				t.Fatalf("%s: %v (the server blocked opening a FIFO)", p, err)
			}
			r.Body.Close()
			if r.StatusCode != want {
				t.Fatalf("%s: %d, want %d", p, r.StatusCode, want)
			}
		}
	}
}
