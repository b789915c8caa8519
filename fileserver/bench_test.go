package fileserver

import (
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkServeCached is the handler's own cost for a cached 1 KiB file:
// routing, cache lookup, headers, ServeContent (no network).
func BenchmarkServeCached(b *testing.B) {
	benchServe(b, CacheConfig{TTL: time.Hour, MaxFile: 16 << 20, MaxSize: 256 << 20})
}

// BenchmarkServeUncached opens, stats and reads the file for every request.
func BenchmarkServeUncached(b *testing.B) { benchServe(b, CacheConfig{}) }

func benchServe(b *testing.B, cc CacheConfig) {
	dir := b.TempDir()
	os.WriteFile(filepath.Join(dir, "f1k.bin"), make([]byte, 1024), 0o644)
	l, err := NewLocal(dir, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	s := New(Config{Mounts: []Mount{{Prefix: "/", Backend: l}}, Cache: cc})
	req := httptest.NewRequest("GET", "/f1k.bin", nil)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
		io.Copy(io.Discard, w.Body)
	}
}
