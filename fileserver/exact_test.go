package fileserver

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/emperor-dev/emperor/fileserver/fstest"
)

// serveExact serves cfg on 127.0.0.1 through the exact-HTTP layer, as a
// vassal does, and returns host:port.
func serveExact(t *testing.T, cfg Config) string {
	t.Helper()
	s := New(cfg)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: time.Minute}
	done := make(chan error, 1)
	go func() { done <- Serve(srv, l) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
		s.Close()
	})
	return l.Addr().String()
}

// Issue 9 §1: each rule as raw bytes over TCP (pipelined where it
// matters), against a local folder, with the cache on and off.
func TestExactHTTPLocal(t *testing.T) {
	dir := t.TempDir()
	if _, err := fstest.Write(dir); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		cache CacheConfig
	}{
		{"cache on", CacheConfig{TTL: time.Hour, MaxFile: 16 << 20, MaxSize: 256 << 20}},
		{"cache off", CacheConfig{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			fstest.RunRFC(t, serveExact(t, Config{Mounts: []Mount{localMount(t, "/", dir, false)}, Cache: c.cache}))
		})
	}
}

func TestCanonicalRange(t *testing.T) {
	for _, c := range []struct {
		in   string
		size int64
		want string
	}{
		{"bytes=0-99", 1000, "bytes=0-99"},
		{"bytes=-0", 100, "bytes=100-"},
		{"bytes=-500", 100, "bytes=0-99"},
		{"bytes=0-0,-0", 100, "bytes=0-0"},
		{"bytes=0-0,0-0,0-0", 100, "bytes=0-0"},
		{"bytes=50-59,0-9,5-14", 100, "bytes=0-14,50-59"},
		{"bytes=10-19,20-29", 100, "bytes=10-29"},
		{"bytes=50-59,0-9", 100, "bytes=50-59,0-9"},
		{"bytes=0-,-10", 100, "bytes=0-99"},
		{"bytes=" + strings.Repeat("0-0,2-2,", 50) + "4-4", 100, "bytes=0-0,2-2,4-4"},
		{"bytes=" + manyRanges(101), 1000, ""},
		{"bytes=" + manyRanges(100), 1000, "bytes=" + manyRanges(100)},
		{"bytes= 1-2 , ,3-", 100, "bytes=1-99"},
		{"bytes= 1-2 , ,4-", 100, "bytes=1-2,4-99"},
		{"bytes=", 100, "bytes=100-"},
		{"bytes=,", 100, "bytes=100-"},
		{"bytes=1 -2", 100, "bytes=100-"},
		{"bytes=+1-2", 100, "bytes=100-"},
		{"bytes=00005-000002", 100, "bytes=100-"},
		{"bytes=99999999999999999999-99999999999999999998", 100, "bytes=100-"},
		{"bytes=0-99999999999999999999", 100, "bytes=0-99"},
		{"bytes=-99999999999999999999", 100, "bytes=0-99"},
		{"BYTES=5-", 100, "bytes=5-99"},
		{"items=0-1", 100, ""},
		{"0-1", 100, ""},
		{"bytes=-5", 0, ""},
		{"bytes=0-", 0, ""},
	} {
		if got := canonicalRange(c.in, c.size); got != c.want {
			t.Errorf("%q of %d: %q, want %q", c.in, c.size, got, c.want)
		}
	}
}

// manyRanges is n disjoint one-byte ranges: 0-0,2-2,...
func manyRanges(n int) string {
	var b []string
	for i := range n {
		b = append(b, fmt.Sprintf("%d-%d", 2*i, 2*i))
	}
	return strings.Join(b, ",")
}

func TestValidHost(t *testing.T) {
	for h, want := range map[string]bool{
		"": true, "a.example": true, "127.0.0.1": true, "127.0.0.1:80": true, "host:": true,
		"[::1]": true, "[::1]:8080": true, "[v1.fe:x]": true, "xn--bcher-kva.example": true, "a%2Eb": true,
		"[::1": false, "::1": false, "127.0.0.1:80:80": false, "127.0.0.1:http": false, "[::1]x": false,
		"[127.0.0.1]": false, "a b": false, "a%2": false, "[::1%25eth0]": false, "a/b": false, "a@b": false,
	} {
		if validHost(h) != want {
			t.Errorf("validHost(%q) = %v", h, !want)
		}
	}
}
