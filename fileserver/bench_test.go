package fileserver

import (
	"io"
	"net"
	"net/http"
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

// BenchmarkServeTCP is a 1 KiB and a 1 MiB local file (cache off: each is
// opened, and sent with sendfile(2)) over one keep-alive TCP connection,
// served by net/http alone and through the exact-HTTP layer: the layer must
// cost nothing measurable, and keep sendfile.
func BenchmarkServeTCP(b *testing.B) {
	dir := b.TempDir()
	os.WriteFile(filepath.Join(dir, "f1k.bin"), make([]byte, 1024), 0o644)
	os.WriteFile(filepath.Join(dir, "f1m.bin"), make([]byte, 1<<20), 0o644)
	l, err := NewLocal(dir, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	s := New(Config{Mounts: []Mount{{Prefix: "/", Backend: l}}})
	defer s.Close()
	for _, layer := range []bool{false, true} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		srv := &http.Server{Handler: s}
		if layer {
			go Serve(srv, ln)
		} else {
			go srv.Serve(ln)
		}
		name := map[bool]string{false: "net-http", true: "exact-layer"}[layer]
		for _, f := range []string{"f1k.bin", "f1m.bin"} {
			b.Run(name+"/"+f, func(b *testing.B) {
				tr := &http.Transport{}
				defer tr.CloseIdleConnections()
				c := &http.Client{Transport: tr}
				u := "http://" + ln.Addr().String() + "/" + f
				for b.Loop() {
					r, err := c.Get(u)
					if err != nil {
						b.Fatal(err)
					}
					io.Copy(io.Discard, r.Body)
					r.Body.Close()
					if r.StatusCode != 200 {
						b.Fatal(r.StatusCode)
					}
				}
			})
		}
		srv.Close()
	}
}
