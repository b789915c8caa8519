package fstest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Want is one reply expected on a connection.
type Want struct {
	Status int
	// Header values that must be exactly so; "" means the field must be
	// absent.
	Header map[string]string
	// Parts are the Content-Range of each part of a multipart/byteranges
	// reply, in order.
	Parts []string
}

// RawCase is one exchange (Rule: of issue 9 §1; 0 for §2's ranges) on a fresh TCP connection: Send is written as
// it is ("HOST" becomes the server's host:port), pipelined, followed by a
// last request with "Connection: close" (the sentinel). Want are the replies
// expected, in order. Then, if Closes, the connection must end (the
// sentinel was never read as a request); otherwise the sentinel is
// answered 200 and the connection ends after it. The sentinel keeps the
// exchange from waiting on old code that keeps a connection open.
type RawCase struct {
	Rule   int
	Name   string
	Send   string
	Want   []Want
	Closes bool
	// HEAD: the first request is a HEAD (its reply has no body).
	HEAD bool
}

const sentinel = "GET /hello.txt HTTP/1.1\r\nHost: HOST\r\nConnection: close\r\n\r\n"

// RFCCases are the rules of issue 9 §1, as raw requests against the
// conformance tree (Write): f1k.bin is 1024 bytes, empty.txt 0, sub/ a
// directory with an index. etag is f1k.bin's current ETag.
func RFCCases(etag string) []RawCase {
	get := func(target string, hdr ...string) string {
		return "GET " + target + " HTTP/1.1\r\nHost: HOST\r\n" + strings.Join(hdr, "") + "\r\n"
	}
	rng := func(v string) string { return get("/f1k.bin", "Range: "+v+"\r\n") }
	noCR := map[string]string{"Content-Range": ""}
	cr := func(v string) map[string]string { return map[string]string{"Content-Range": v} }
	smuggled := get("/f64k.bin")
	clBody := "GET /f64k.bin HTTP/1.1\r\nHost: x\r\n\r\n" // no HOST: its length is fixed
	return []RawCase{
		{Rule: 1, Name: "bytes=-0 is unsatisfiable", Send: rng("bytes=-0"), Want: []Want{{Status: 416, Header: cr("bytes */1024")}}},
		{Rule: 1, Name: "bytes=-0 beside a satisfiable range is dropped", Send: rng("bytes=-0,0-1"), Want: []Want{{Status: 206, Header: cr("bytes 0-1/1024")}}},
		{Rule: 1, Name: "multipart without the unsatisfiable -0", Send: rng("bytes=0-1,-0,5-6"), Want: []Want{{Status: 206, Header: noCR, Parts: []string{"bytes 0-1/1024", "bytes 5-6/1024"}}}},
		{Rule: 1, Name: "suffix range of an empty file", Send: get("/empty.txt", "Range: bytes=-5\r\n"), Want: []Want{{Status: 200, Header: map[string]string{"Content-Range": "", "Content-Length": "0"}}}},
		{Rule: 1, Name: "bytes=-0 of an empty file", Send: get("/empty.txt", "Range: bytes=-0\r\n"), Want: []Want{{Status: 200, Header: map[string]string{"Content-Range": "", "Content-Length": "0"}}}},
		{Rule: 2, Name: "bytes=abc", Send: rng("bytes=abc"), Want: []Want{{Status: 416, Header: cr("bytes */1024")}}},
		{Rule: 2, Name: "bytes=5-2", Send: rng("bytes=5-2"), Want: []Want{{Status: 416, Header: cr("bytes */1024")}}},
		{Rule: 3, Name: "unknown unit ignored", Send: rng("items=0-1"), Want: []Want{{Status: 200, Header: map[string]string{"Content-Range": "", "Content-Length": "1024"}}}},
		{Rule: 3, Name: "unit is case-insensitive", Send: rng("Bytes=0-1"), Want: []Want{{Status: 206, Header: cr("bytes 0-1/1024")}}},
		{Rule: 3, Name: "Range on HEAD is ignored", HEAD: true, Send: "HEAD /f1k.bin HTTP/1.1\r\nHost: HOST\r\nRange: bytes=0-1\r\n\r\n", Want: []Want{{Status: 200, Header: map[string]string{"Content-Range": "", "Content-Length": "1024"}}}},
		{Rule: 4, Name: "last-pos past 64 bits", Send: rng("bytes=0-18446744073709551616"), Want: []Want{{Status: 206, Header: cr("bytes 0-1023/1024")}}},
		{Rule: 4, Name: "first-pos past 64 bits", Send: rng("bytes=18446744073709551616-"), Want: []Want{{Status: 416, Header: cr("bytes */1024")}}},
		{Rule: 5, Name: "/. redirects to /", Send: get("/."), Want: []Want{{Status: 301, Header: map[string]string{"Location": "/"}}}},
		{Rule: 5, Name: "/sub/.. redirects to /", Send: get("/sub/.."), Want: []Want{{Status: 301, Header: map[string]string{"Location": "/"}}}},
		{Rule: 5, Name: "/sub/. redirects to /sub/", Send: get("/sub/."), Want: []Want{{Status: 301, Header: map[string]string{"Location": "/sub/"}}}},
		{Rule: 6, Name: "absolute form with an empty path is /", Send: get("http://HOST"), Want: []Want{{Status: 200}}},
		{Rule: 6, Name: "absolute form with a path", Send: get("http://HOST/f1k.bin"), Want: []Want{{Status: 200, Header: map[string]string{"Content-Length": "1024"}}}},
		{Rule: 7, Name: "Content-Length with Transfer-Encoding", Closes: true,
			Send: "GET /f1k.bin HTTP/1.1\r\nHost: HOST\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled,
			Want: []Want{{Status: 400, Header: map[string]string{"Connection": "close"}}}},
		{Rule: 7, Name: "Transfer-Encoding then Content-Length, any case", Closes: true,
			Send: "GET /f1k.bin HTTP/1.1\r\nHost: HOST\r\ntransfer-encoding: chunked\r\nCONTENT-LENGTH: 60\r\n\r\n0\r\n\r\n" + smuggled,
			Want: []Want{{Status: 400, Header: map[string]string{"Connection": "close"}}}},
		{Rule: 7, Name: "HTTP/1.0 with a chunked body", Closes: true,
			Send: "GET /f1k.bin HTTP/1.0\r\nHost: HOST\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n" + smuggled,
			Want: []Want{{Status: 400, Header: map[string]string{"Connection": "close"}}}},
		{Rule: 7, Name: "HTTP/1.0 with Transfer-Encoding and Content-Length", Closes: true,
			Send: "GET /f1k.bin HTTP/1.0\r\nHost: HOST\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" + smuggled,
			Want: []Want{{Status: 400, Header: map[string]string{"Connection": "close"}}}},
		{Rule: 7, Name: "a chunked body: answered, then closed", Closes: true,
			Send: "GET /f1k.bin HTTP/1.1\r\nHost: HOST\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" + smuggled,
			Want: []Want{{Status: 200, Header: map[string]string{"Connection": "close"}}}},
		{Rule: 7, Name: "pipelined requests and a Content-Length body stay on one connection",
			Send: get("/f1k.bin") + fmt.Sprintf("GET /f1k.bin HTTP/1.1\r\nHost: HOST\r\nContent-Length: %d\r\n\r\n%s", len(clBody), clBody) + get("/empty.txt"),
			Want: []Want{{Status: 200}, {Status: 200, Header: map[string]string{"Content-Length": "1024"}}, {Status: 200, Header: map[string]string{"Content-Length": "0"}}}},
		{Rule: 8, Name: "If-None-Match on two lines", Send: get("/f1k.bin", "If-None-Match: \"other\"\r\n", "If-None-Match: "+etag+"\r\n"), Want: []Want{{Status: 304}}},
		{Rule: 8, Name: "If-Match on two lines", Send: get("/f1k.bin", "If-Match: \"other\"\r\n", "If-Match: "+etag+"\r\n"), Want: []Want{{Status: 200, Header: map[string]string{"Content-Length": "1024"}}}},
		{Rule: 8, Name: "If-Match on two lines, none matching", Send: get("/f1k.bin", "If-Match: \"other\"\r\n", "If-Match: \"more\"\r\n"), Want: []Want{{Status: 412}}},
		{Rule: 8, Name: "If-Modified-Since on two lines is ignored", Send: get("/f1k.bin", "If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT\r\n", "If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT\r\n"), Want: []Want{{Status: 200, Header: map[string]string{"Content-Length": "1024"}}}},
		{Rule: 8, Name: "If-Unmodified-Since on two lines is ignored", Send: get("/f1k.bin", "If-Unmodified-Since: Sat, 01 Jan 2000 00:00:00 GMT\r\n", "If-Unmodified-Since: Sat, 01 Jan 2000 00:00:00 GMT\r\n"), Want: []Want{{Status: 200, Header: map[string]string{"Content-Length": "1024"}}}},
		{Rule: 8, Name: "If-Range with a list ignores Range", Send: get("/f1k.bin", "Range: bytes=0-1\r\n", "If-Range: "+etag+", \"other\"\r\n"), Want: []Want{{Status: 200, Header: map[string]string{"Content-Range": "", "Content-Length": "1024"}}}},
		{Rule: 8, Name: "If-Range on two lines ignores Range", Send: get("/f1k.bin", "Range: bytes=0-1\r\n", "If-Range: "+etag+"\r\n", "If-Range: "+etag+"\r\n"), Want: []Want{{Status: 200, Header: map[string]string{"Content-Range": "", "Content-Length": "1024"}}}},
		{Rule: 8, Name: "If-Range with the current tag keeps Range", Send: get("/f1k.bin", "Range: bytes=0-1\r\n", "If-Range: "+etag+"\r\n"), Want: []Want{{Status: 206, Header: cr("bytes 0-1/1024")}}},
		{Rule: 9, Name: "Host [::1", Send: "GET /f1k.bin HTTP/1.1\r\nHost: [::1\r\n\r\n", Want: []Want{{Status: 400}}},
		{Rule: 9, Name: "Host with two ports", Send: "GET /f1k.bin HTTP/1.1\r\nHost: 127.0.0.1:80:80\r\n\r\n", Want: []Want{{Status: 400}}},
		{Rule: 9, Name: "Host with a non-numeric port", Send: "GET /f1k.bin HTTP/1.1\r\nHost: 127.0.0.1:http\r\n\r\n", Want: []Want{{Status: 400}}},
		{Rule: 9, Name: "Host [::1]:80 and a name are valid", Send: "GET /f1k.bin HTTP/1.1\r\nHost: [::1]:80\r\n\r\nGET /f1k.bin HTTP/1.1\r\nHost: www.example.com\r\n\r\n", Want: []Want{{Status: 200}, {Status: 200}}},
		{Rule: 10, Name: "no Host: net/http's 400 has Date", Closes: true, Send: "GET /f1k.bin HTTP/1.1\r\n\r\n", Want: []Want{{Status: 400}}},
		{Rule: 10, Name: "malformed request line: net/http's 400 has Date", Closes: true, Send: "GARBAGE\r\n\r\n", Want: []Want{{Status: 400}}},
		{Rule: 10, Name: "unknown coding: net/http's 501 has Date", Closes: true, Send: "GET /f1k.bin HTTP/1.1\r\nHost: HOST\r\nTransfer-Encoding: gzip\r\n\r\n", Want: []Want{{Status: 501}}},
		{Rule: 10, Name: "after a served request: net/http's 505 has Date", Closes: true, Send: get("/f1k.bin") + "GET /f1k.bin HTTP/9.9\r\nHost: HOST\r\n\r\n", Want: []Want{{Status: 200}, {Status: 505}}},
		// Issue 9 §2, overlapping ranges must not amplify: they coalesce,
		// and a set of more than 100 ranges is ignored.
		{Name: "300 overlapping ranges are one", Send: rng("bytes=" + strings.Repeat("0-0,", 299) + "0-0"), Want: []Want{{Status: 206, Header: map[string]string{"Content-Range": "bytes 0-0/1024", "Content-Length": "1"}}}},
		{Name: "overlapping ranges merge", Send: rng("bytes=20-29,0-9,5-14"), Want: []Want{{Status: 206, Header: noCR, Parts: []string{"bytes 0-14/1024", "bytes 20-29/1024"}}}},
		{Name: "disjoint ranges keep their order", Send: rng("bytes=20-29,0-9"), Want: []Want{{Status: 206, Header: noCR, Parts: []string{"bytes 20-29/1024", "bytes 0-9/1024"}}}},
		{Name: "more than 100 ranges are ignored", Send: rng("bytes=" + disjoint(101)), Want: []Want{{Status: 200, Header: map[string]string{"Content-Range": "", "Content-Length": "1024"}}}},
		{Name: "100 ranges are served", Send: rng("bytes=" + disjoint(100)), Want: []Want{{Status: 206, Header: noCR}}},
		{Rule: 11, Name: "a file used as a directory is 404", Send: get("/hello.txt/x") + get("/sub/index.html/x/y"), Want: []Want{{Status: 404}, {Status: 404}}},
	}
}

// disjoint is n one-byte ranges with gaps: 0-0,2-2,...
func disjoint(n int) string {
	r := make([]string, n)
	for i := range r {
		r[i] = fmt.Sprintf("%d-%d", 2*i, 2*i)
	}
	return strings.Join(r, ",")
}

// RunRFC runs RFCCases against the server at addr (host:port), each on its
// own connection, and checks every reply exactly, Date included.
func RunRFC(t *testing.T, addr string) {
	t.Helper()
	r := do(t, "HEAD", "http://"+addr+"/f1k.bin", nil)
	etag := r.h.Get("ETag")
	if r.code != 200 || etag == "" {
		t.Fatalf("HEAD /f1k.bin: %d, ETag %q", r.code, etag)
	}
	for _, c := range RFCCases(etag) {
		name := fmt.Sprintf("rule %d: %s", c.Rule, c.Name)
		if c.Rule == 0 {
			name = "§2: " + c.Name
		}
		t.Run(name, func(t *testing.T) {
			checkRaw(t, addr, c)
		})
	}
}

func checkRaw(t *testing.T, addr string, c RawCase) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, hangTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(hangTimeout))
	send := strings.ReplaceAll(c.Send+sentinel, "HOST", addr)
	// The write may fail once the server has closed after the requests it
	// reads (the rest is then unread); the replies say what happened.
	go conn.Write([]byte(send))
	want := c.Want
	if !c.Closes {
		want = append(append([]Want(nil), want...), Want{Status: 200, Header: map[string]string{"Connection": "close"}})
	}
	br := bufio.NewReader(conn)
	for i := 0; ; i++ {
		var req *http.Request
		if i == 0 && c.HEAD {
			req = &http.Request{Method: "HEAD"}
		}
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			if i < len(want) {
				t.Fatalf("reply %d of %d: %v", i+1, len(want), err)
			}
			if err != io.EOF && !closedErr(err) {
				t.Fatalf("after the last reply: %v", err)
			}
			return
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("reply %d body: %v", i+1, err)
		}
		if i >= len(want) {
			t.Fatalf("reply %d (%d %q) after the %d expected: the connection was not closed, a body or the sentinel was read as a request", i+1, resp.StatusCode, resp.Header.Get("Content-Range"), len(want))
		}
		w := want[i]
		if resp.StatusCode != w.Status {
			t.Fatalf("reply %d: status %d, want %d (headers %v)", i+1, resp.StatusCode, w.Status, resp.Header)
		}
		if d := resp.Header.Get("Date"); d == "" {
			t.Fatalf("reply %d (%d): no Date", i+1, resp.StatusCode)
		} else if _, err := http.ParseTime(d); err != nil {
			t.Fatalf("reply %d: Date %q: %v", i+1, d, err)
		}
		for k, v := range w.Header {
			got := strings.Join(resp.Header.Values(k), ", ")
			if k == "Connection" && v == "close" && resp.Close {
				continue
			}
			if got != v {
				t.Fatalf("reply %d: %s %q, want %q (status %d)", i+1, k, got, v, resp.StatusCode)
			}
		}
		if w.Parts != nil {
			mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
			if err != nil || mt != "multipart/byteranges" {
				t.Fatalf("reply %d: Content-Type %q", i+1, resp.Header.Get("Content-Type"))
			}
			mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
			var parts []string
			for {
				p, err := mr.NextPart()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("reply %d: part: %v", i+1, err)
				}
				parts = append(parts, p.Header.Get("Content-Range"))
			}
			if strings.Join(parts, "|") != strings.Join(w.Parts, "|") {
				t.Fatalf("reply %d: parts %q, want %q", i+1, parts, w.Parts)
			}
		}
	}
}

// closedErr says whether err is the end of a connection the server
// closed (with the rest of our requests unread, Linux may reset it).
func closedErr(err error) bool {
	return err == io.ErrUnexpectedEOF || strings.Contains(err.Error(), "connection reset")
}
