// Package fstest is the HTTP conformance suite of the file server (RFC 9110
// semantics, paths, directories), run against any base URL: the handler in
// unit tests, a real vassal serving a local folder or a GlusterFS volume in
// the integration tests.
package fstest

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Sizes of the random test files, by name.
var Sizes = map[string]int{"f1k.bin": 1 << 10, "f64k.bin": 64 << 10, "f1m.bin": 1 << 20, "big.bin": 17 << 20}

// Small text files with their expected content type prefix.
var Typed = map[string]string{
	"index.html": "text/html", "hello.txt": "text/plain", "style.css": "text/css",
	"app.js": "javascript", "data.json": "application/json",
}

// Tree is the content written by Write, to compare byte for byte.
type Tree map[string][]byte

// Write creates the test tree under dir through write (os.WriteFile, or a
// FUSE mount of a volume) and returns its content.
func Write(dir string) (Tree, error) {
	t := Tree{}
	for name, size := range Sizes {
		b := make([]byte, size)
		rand.Read(b)
		t[name] = b
	}
	for name, ct := range Typed {
		t[name] = []byte(fmt.Sprintf("%s file %s\n", ct, name))
	}
	t["sub/index.html"] = []byte("<p>sub index</p>\n")
	t["sub/other.txt"] = []byte("other\n")
	t["with space.txt"] = []byte("space\n")
	t["empty.txt"] = []byte{}
	for name, b := range t {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "emptydir"), 0o755); err != nil {
		return nil, err
	}
	return t, nil
}

// WriteTree writes a tree (as Write made it) under dir, with Write's empty
// directory: a second copy of the same content, for another server.
func WriteTree(dir string, t Tree) error {
	for name, b := range t {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return err
		}
	}
	return os.MkdirAll(filepath.Join(dir, "emptydir"), 0o755)
}

// Options says what the server under test was configured with.
type Options struct {
	Autoindex bool
	// Forbidden is a path the server's user may not read (403), if any.
	Forbidden string
}

// hangTimeout bounds every request: it only stops a hang and is no speed
// requirement (a busy machine takes what it takes).
const hangTimeout = time.Minute

var client = &http.Client{
	Timeout:       hangTimeout,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

type resp struct {
	code int
	h    http.Header
	body []byte
}

func do(t *testing.T, method, u string, hdr map[string]string) resp {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	r, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatalf("%s %s: body: %v", method, u, err)
	}
	return resp{r.StatusCode, r.Header, b}
}

// raw sends a request line as written (no client-side path cleaning) and
// returns the status and body.
func raw(t *testing.T, base, target string) (int, string) {
	t.Helper()
	u, _ := url.Parse(base)
	c, err := net.DialTimeout("tcp", u.Host, hangTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(hangTimeout))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", target, u.Host)
	r, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("raw %s: %v", target, err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return r.StatusCode, string(b)
}

// Run checks the server at base (which serves tree at its root, or under
// prefix) against RFC 9110 and our rules.
func Run(t *testing.T, base string, tree Tree, o Options) {
	base = strings.TrimSuffix(base, "/")
	t.Run("GET every file byte for byte", func(t *testing.T) {
		for name, want := range tree {
			r := do(t, "GET", base+"/"+(&url.URL{Path: name}).EscapedPath(), nil)
			if r.code != 200 || !bytes.Equal(r.body, want) {
				t.Fatalf("%s: %d, %d bytes, want 200 and %d bytes", name, r.code, len(r.body), len(want))
			}
			if r.h.Get("Content-Length") != strconv.Itoa(len(want)) || r.h.Get("ETag") == "" || r.h.Get("Last-Modified") == "" {
				t.Fatalf("%s: headers %v", name, r.h)
			}
		}
	})
	t.Run("Content-Type from the extension", func(t *testing.T) {
		for name, want := range Typed {
			r := do(t, "GET", base+"/"+name, nil)
			if !strings.Contains(r.h.Get("Content-Type"), want) {
				t.Fatalf("%s: Content-Type %q, want %q", name, r.h.Get("Content-Type"), want)
			}
		}
		if ct := do(t, "HEAD", base+"/f1k.bin", nil).h.Get("Content-Type"); ct != "application/octet-stream" {
			t.Fatalf("bin: %q", ct)
		}
	})
	t.Run("HEAD", func(t *testing.T) {
		r := do(t, "HEAD", base+"/f64k.bin", nil)
		if r.code != 200 || len(r.body) != 0 || r.h.Get("Content-Length") != "65536" {
			t.Fatalf("%d %d %v", r.code, len(r.body), r.h)
		}
	})
	f := tree["f64k.bin"]
	size := len(f)
	t.Run("single range", func(t *testing.T) {
		r := do(t, "GET", base+"/f64k.bin", map[string]string{"Range": "bytes=0-99"})
		if r.code != 206 || !bytes.Equal(r.body, f[:100]) || r.h.Get("Content-Range") != fmt.Sprintf("bytes 0-99/%d", size) {
			t.Fatalf("%d %d %q", r.code, len(r.body), r.h.Get("Content-Range"))
		}
		r = do(t, "GET", base+"/big.bin", map[string]string{"Range": "bytes=1000000-1999999"})
		if r.code != 206 || !bytes.Equal(r.body, tree["big.bin"][1000000:2000000]) {
			t.Fatalf("big range: %d %d", r.code, len(r.body))
		}
	})
	t.Run("suffix range", func(t *testing.T) {
		r := do(t, "GET", base+"/f64k.bin", map[string]string{"Range": "bytes=-100"})
		if r.code != 206 || !bytes.Equal(r.body, f[size-100:]) {
			t.Fatalf("%d %d", r.code, len(r.body))
		}
	})
	t.Run("unsatisfiable range", func(t *testing.T) {
		r := do(t, "GET", base+"/f64k.bin", map[string]string{"Range": fmt.Sprintf("bytes=%d-", size+10)})
		if r.code != 416 || r.h.Get("Content-Range") != fmt.Sprintf("bytes */%d", size) {
			t.Fatalf("%d %q", r.code, r.h.Get("Content-Range"))
		}
	})
	t.Run("multiple ranges", func(t *testing.T) {
		r := do(t, "GET", base+"/f64k.bin", map[string]string{"Range": "bytes=0-9,20-29"})
		mt, params, err := mime.ParseMediaType(r.h.Get("Content-Type"))
		if r.code != 206 || err != nil || mt != "multipart/byteranges" {
			t.Fatalf("%d %q", r.code, r.h.Get("Content-Type"))
		}
		mr := multipart.NewReader(bytes.NewReader(r.body), params["boundary"])
		for _, want := range [][]byte{f[0:10], f[20:30]} {
			p, err := mr.NextPart()
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(p)
			if !bytes.Equal(got, want) {
				t.Fatalf("part %q, want %q", got, want)
			}
		}
	})
	t.Run("If-Range", func(t *testing.T) {
		et := do(t, "HEAD", base+"/f64k.bin", nil).h.Get("ETag")
		r := do(t, "GET", base+"/f64k.bin", map[string]string{"Range": "bytes=0-9", "If-Range": et})
		if r.code != 206 || len(r.body) != 10 {
			t.Fatalf("matching If-Range: %d", r.code)
		}
		r = do(t, "GET", base+"/f64k.bin", map[string]string{"Range": "bytes=0-9", "If-Range": `"stale"`})
		if r.code != 200 || len(r.body) != size {
			t.Fatalf("stale If-Range: %d %d", r.code, len(r.body))
		}
	})
	t.Run("conditional GET", func(t *testing.T) {
		h := do(t, "HEAD", base+"/f64k.bin", nil).h
		r := do(t, "GET", base+"/f64k.bin", map[string]string{"If-Modified-Since": h.Get("Last-Modified")})
		if r.code != 304 || len(r.body) != 0 {
			t.Fatalf("If-Modified-Since: %d", r.code)
		}
		r = do(t, "GET", base+"/f64k.bin", map[string]string{"If-None-Match": h.Get("ETag")})
		if r.code != 304 {
			t.Fatalf("If-None-Match: %d", r.code)
		}
		r = do(t, "GET", base+"/f64k.bin", map[string]string{"If-None-Match": `"other"`})
		if r.code != 200 {
			t.Fatalf("If-None-Match other: %d", r.code)
		}
	})
	t.Run("directories", func(t *testing.T) {
		r := do(t, "GET", base+"/sub?x=1", nil)
		if r.code != 301 || !strings.HasSuffix(r.h.Get("Location"), "/sub/?x=1") {
			t.Fatalf("no slash: %d %q", r.code, r.h.Get("Location"))
		}
		r = do(t, "GET", base+"/sub/", nil)
		if r.code != 200 || !bytes.Equal(r.body, tree["sub/index.html"]) {
			t.Fatalf("index: %d %q", r.code, r.body)
		}
		r = do(t, "GET", base+"/", nil)
		if r.code != 200 || !bytes.Equal(r.body, tree["index.html"]) {
			t.Fatalf("root: %d", r.code)
		}
		r = do(t, "GET", base+"/emptydir/", nil)
		switch {
		case o.Autoindex && (r.code != 200 || !strings.Contains(string(r.body), "Index of")):
			t.Fatalf("autoindex: %d %q", r.code, r.body)
		case !o.Autoindex && r.code != 403:
			t.Fatalf("no index: %d", r.code)
		}
		if r.code == 200 && len(r.body) == 0 {
			t.Fatal("a directory got 200 with an empty body")
		}
	})
	t.Run("missing", func(t *testing.T) {
		for _, p := range []string{"/nope", "/nope/dir/file", "/hello.txt/", "/sub/nope.txt"} {
			if r := do(t, "GET", base+p, nil); r.code != 404 {
				t.Fatalf("%s: %d", p, r.code)
			}
		}
	})
	t.Run("paths", func(t *testing.T) {
		u, _ := url.Parse(base)
		prefix := u.Path
		host, _ := os.ReadFile("/etc/hostname")
		for _, p := range []string{"/../../../../etc/hostname", "/%2e%2e/%2e%2e/etc/hostname", "/..%2f..%2fetc/hostname", "/sub/../../etc/passwd"} {
			code, body := raw(t, base, prefix+p)
			if code == 200 && (len(host) > 0 && strings.Contains(body, strings.TrimSpace(string(host))) || strings.Contains(body, "root:")) {
				t.Fatalf("%s left the mount", p)
			}
			if code != 404 && code != 400 {
				t.Fatalf("%s: %d", p, code)
			}
		}
		if code, body := raw(t, base, prefix+"/sub/../hello.txt"); code != 200 || body != string(tree["hello.txt"]) {
			t.Fatalf("normalised: %d", code)
		}
		if code, _ := raw(t, base, prefix+"/hello%00.txt"); code != 400 {
			t.Fatalf("NUL: %d", code)
		}
		if code, _ := raw(t, base, prefix+"/"+strings.Repeat("a", 5000)); code != 400 {
			t.Fatalf("long path: %d", code)
		}
		if r := do(t, "GET", base+"/hello.txt?x=1&y=2", nil); r.code != 200 {
			t.Fatalf("query: %d", r.code)
		}
	})
	t.Run("methods", func(t *testing.T) {
		for _, m := range []string{"POST", "PUT", "DELETE", "OPTIONS"} {
			r := do(t, m, base+"/hello.txt", nil)
			if r.code != 405 || r.h.Get("Allow") != "GET, HEAD" {
				t.Fatalf("%s: %d %q", m, r.code, r.h.Get("Allow"))
			}
		}
	})
	if o.Forbidden != "" {
		t.Run("permission", func(t *testing.T) {
			if r := do(t, "GET", base+o.Forbidden, nil); r.code != 403 {
				t.Fatalf("%s: %d", o.Forbidden, r.code)
			}
		})
	}
	t.Run("keep-alive", func(t *testing.T) {
		reused := 0
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		c := &http.Client{Transport: tr}
		for i := 0; i < 3; i++ {
			req, _ := http.NewRequest("GET", base+"/hello.txt", nil)
			req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
				GotConn: func(ci httptrace.GotConnInfo) {
					if ci.Reused {
						reused++
					}
				},
			}))
			r, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, r.Body)
			r.Body.Close()
		}
		if reused != 2 {
			t.Fatalf("connection reused %d times of 2", reused)
		}
	})
}
