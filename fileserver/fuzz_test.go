package fileserver

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzRequest: no path or Range header panics the server, leaves the mount,
// or gets an unexpected status.
func FuzzRequest(f *testing.F) {
	for _, s := range [][2]string{
		{"/f.txt", "bytes=0-3"}, {"/../../etc/passwd", ""}, {"/%2e%2e/x", "bytes=-1"},
		{"/d", "bytes=1-0"}, {"/f.txt", "bytes=0-1,3-4,100-"}, {"/f.txt", "bytes=99999999999999999999-"},
	} {
		f.Add(s[0], s[1])
	}
	dir := f.TempDir()
	os.WriteFile(filepath.Join(dir, "f.txt"), []byte("0123456789"), 0o644)
	os.Mkdir(filepath.Join(dir, "d"), 0o755)
	outside := filepath.Join(filepath.Dir(dir), "outside-secret")
	os.WriteFile(outside, []byte("SECRET"), 0o644)
	l, err := NewLocal(dir, nil)
	if err != nil {
		f.Fatal(err)
	}
	s := New(Config{Mounts: []Mount{{Prefix: "/", Backend: l, Index: []string{"index.html"}}}, Cache: CacheConfig{TTL: time.Second, MaxFile: 1 << 20, MaxSize: 1 << 20}})
	ok := map[int]bool{200: true, 206: true, 301: true, 304: true, 400: true, 403: true, 404: true, 416: true}
	f.Fuzz(func(t *testing.T, p, rng string) {
		req := httptest.NewRequest("GET", "/", nil)
		req.URL.Path = p
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if !ok[w.Code] {
			t.Fatalf("path %q range %q: status %d", p, rng, w.Code)
		}
		if strings.Contains(w.Body.String(), "SECRET") {
			t.Fatalf("path %q left the mount", p)
		}
		if w.Code == http.StatusOK && len(p) > MaxPath {
			t.Fatalf("over-long path served")
		}
	})
}
