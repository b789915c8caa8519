package fstest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/big"
	"math/rand/v2"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The differential test of issue 9 §1: seeded requests (ranges,
// conditional headers, paths, methods, HTTP/1.0 and 1.1, pipelining) go to
// our server and to nginx serving the same tree. A model of the tree judges
// each reply by RFC 9110 (with our documented choices where the RFC leaves
// one, see docs/serving.md); a wrong reply of ours fails the test. nginx is
// judged the same way, and where it breaks a rule or answers otherwise than
// we do, the difference is logged for review (not a failure).

// RunDifferential sends n requests generated from seed to ours and to
// nginx (both host:port), which serve tree at their root.
func RunDifferential(t *testing.T, ours, nginx string, tree Tree, seed, n int) {
	t.Helper()
	m := newModel(tree)
	batches := generate(rand.New(rand.NewPCG(uint64(seed), 9)), n)
	t.Logf("seed %d: %d requests in %d connections", seed, n, len(batches))
	vOurs, vTheirs := validators(t, ours, m), validators(t, nginx, m)
	var bad, diffs []string
	for bi, b := range batches {
		ro := exchange(t, ours, m, b, vOurs)
		rt := exchange(t, nginx, m, b, vTheirs)
		for i, q := range b {
			e := m.expect(q, vOurs)
			where := fmt.Sprintf("connection %d request %d: %s", bi, i+1, q)
			if i >= len(ro) {
				if !closedBefore(ro, i) {
					bad = append(bad, where+": no reply from us")
				}
			} else if p := judge(q, e, ro[i]); p != "" {
				bad = append(bad, where+": "+p)
			}
			et := m.expect(q, vTheirs)
			switch {
			case i >= len(rt):
				if !closedBefore(rt, i) {
					diffs = append(diffs, where+": nginx: no reply")
				}
			default:
				if p := judge(q, et, rt[i]); p != "" {
					diffs = append(diffs, where+": nginx breaks: "+p)
				} else if i < len(ro) && ro[i].status != rt[i].status {
					diffs = append(diffs, fmt.Sprintf("%s: both valid, ours %d, nginx %d", where, ro[i].status, rt[i].status))
				}
			}
		}
	}
	for i, d := range diffs {
		if i == 200 {
			t.Logf("... %d more differences with nginx", len(diffs)-200)
			break
		}
		t.Log(d)
	}
	t.Logf("%d differences with nginx, for review (seed %d)", len(diffs), seed)
	for i, b := range bad {
		if i == 30 {
			t.Errorf("... %d more", len(bad)-30)
			break
		}
		t.Error(b)
	}
}

// StartNginx runs nginx (as this user, one process, no daemon) serving dir
// on a free 127.0.0.1 port, and returns host:port once it accepts.
func StartNginx(t *testing.T, bin, dir string) string {
	t.Helper()
	pre := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	var temps strings.Builder
	for _, d := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		fmt.Fprintf(&temps, "  %s_temp_path %s;\n", d, filepath.Join(pre, d))
	}
	conf := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 256; }
http {
  access_log off;
%[2]s  include /etc/nginx/mime.types;
  default_type application/octet-stream;
  sendfile on;
  server { listen %[3]s; root %[4]s; index index.html; }
}
`, pre, temps.String(), addr, dir)
	cf := filepath.Join(pre, "nginx.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-e", filepath.Join(pre, "error.log"), "-p", pre, "-c", cf)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(time.Minute) // stops a hang only
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return addr
		}
		select {
		case err := <-exited:
			log, _ := os.ReadFile(filepath.Join(pre, "error.log"))
			t.Fatalf("nginx exited: %v\n%s%s", err, out.Bytes(), log)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx never accepted on %s", addr)
		}
	}
}

// model is the tree as the judge knows it.
type model struct {
	files map[string][]byte
	dirs  map[string]bool
}

func newModel(tree Tree) *model {
	m := &model{files: map[string][]byte{}, dirs: map[string]bool{"/": true, "/emptydir": true}}
	for name, b := range tree {
		m.files["/"+name] = b
		for d := path.Dir("/" + name); d != "/"; d = path.Dir(d) {
			m.dirs[d] = true
		}
	}
	return m
}

// valid are a server's validators of each file.
type valid struct {
	etag string
	lm   time.Time
	raw  string // Last-Modified as sent
}

func validators(t *testing.T, addr string, m *model) map[string]valid {
	t.Helper()
	v := map[string]valid{}
	for _, target := range genTargets {
		name, status, _ := m.resolve(genReq{method: "GET", target: target})
		if status != 200 {
			continue
		}
		r, err := http.Head("http://" + addr + (&url.URL{Path: name}).EscapedPath())
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		lm, err := http.ParseTime(r.Header.Get("Last-Modified"))
		if r.StatusCode != 200 || err != nil || r.Header.Get("ETag") == "" {
			t.Fatalf("HEAD %s on %s: %d %v", name, addr, r.StatusCode, r.Header)
		}
		v[name] = valid{etag: r.Header.Get("ETag"), lm: lm, raw: r.Header.Get("Last-Modified")}
	}
	return v
}

// genReq is a generated request; header values may hold {ETAG}, {WETAG},
// {LM}, {LM-1h}, {LM+1d}: the validators of the file the target selects,
// on the server it goes to.
type genReq struct {
	method, target, version string
	hdr                     [][2]string
}

func (q genReq) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s", q.method, q.target, q.version)
	for _, h := range q.hdr {
		fmt.Fprintf(&b, " [%s: %s]", h[0], h[1])
	}
	return b.String()
}

// get is a field's value as RFC 9110 §5.3 reads it: repeated lines of a
// list field (If-Match, If-None-Match) combine; a singleton field given
// twice (a date, If-Range) is a list, so no valid value: "invalid".
func (q genReq) get(name string) (string, bool) {
	var vals []string
	for _, h := range q.hdr {
		if strings.EqualFold(h[0], name) {
			vals = append(vals, h[1])
		}
	}
	switch {
	case len(vals) == 0:
		return "", false
	case len(vals) == 1 || name == "If-Match" || name == "If-None-Match":
		return strings.Join(vals, ", "), true
	}
	return "invalid", true
}

var (
	genTargets = []string{"/f1k.bin", "/f64k.bin", "/hello.txt", "/empty.txt", "/index.html", "/sub/other.txt",
		"/with%20space.txt", "/%68ello.txt", "/sub/", "/sub", "/", "/emptydir/", "/emptydir", "/nope", "/hello.txt/x",
		"/sub/../hello.txt", "/./f1k.bin", "/sub/.", "/f1k.bin?x=1", "/sub/%2e%2e/f1k.bin", "/sub/index.html"}
	genNums   = []string{"0", "1", "2", "5", "10", "100", "1023", "1024", "1025", "65535", "65536", "70000", "18446744073709551616"}
	genRanges = []string{"bytes=-0", "bytes=abc", "items=0-1", "Bytes=0-1", "bytes=", "bytes=0-0,-1", "bytes= 0-1, 3-4", "bytes=5-2", "bytes=0-1,0-1"}
	genDates  = []string{"{LM}", "{LM-1h}", "{LM+1d}", "garbage"}
)

func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

// generate makes n requests in connections of 1 to 4 pipelined requests.
func generate(r *rand.Rand, n int) [][]genReq {
	var out [][]genReq
	for n > 0 {
		k := min(1+r.IntN(4), n)
		n -= k
		var b []genReq
		for range k {
			q := genReq{method: "GET", target: pick(r, genTargets), version: "HTTP/1.1"}
			switch x := r.IntN(100); {
			case x < 20:
				q.method = "HEAD"
			case x < 30:
				q.method = pick(r, []string{"POST", "DELETE", "OPTIONS", "PUT"})
			}
			if r.IntN(100) < 15 {
				q.version = "HTTP/1.0"
			}
			if r.IntN(100) < 45 {
				var v string
				switch r.IntN(5) {
				case 0:
					v = "bytes=" + pick(r, genNums) + "-" + pick(r, genNums)
				case 1:
					v = "bytes=" + pick(r, genNums) + "-"
				case 2:
					v = "bytes=-" + pick(r, genNums)
				case 3:
					v = fmt.Sprintf("bytes=%s-%s,%s-%s", pick(r, genNums), pick(r, genNums), pick(r, genNums), pick(r, genNums))
				default:
					v = pick(r, genRanges)
				}
				q.hdr = append(q.hdr, [2]string{"Range", v})
				if r.IntN(3) == 0 {
					q.hdr = append(q.hdr, [2]string{"If-Range", pick(r, []string{"{ETAG}", `"other"`, "{LM}", "{LM-1h}", "{WETAG}"})})
				}
			}
			for range r.IntN(3) {
				switch r.IntN(4) {
				case 0:
					q.hdr = append(q.hdr, [2]string{"If-None-Match", pick(r, []string{"{ETAG}", `"other"`, "*", `"other", {ETAG}`, "{WETAG}"})})
				case 1:
					q.hdr = append(q.hdr, [2]string{"If-Match", pick(r, []string{"{ETAG}", `"other"`, "*", "{WETAG}"})})
				case 2:
					q.hdr = append(q.hdr, [2]string{"If-Modified-Since", pick(r, genDates)})
				default:
					q.hdr = append(q.hdr, [2]string{"If-Unmodified-Since", pick(r, genDates)})
				}
			}
			b = append(b, q)
		}
		out = append(out, b)
	}
	return out
}

// resolve is where the target leads: a file (its model path), or a status
// (301 with its Location path, 403, 404, 405).
func (m *model) resolve(q genReq) (file string, status int, loc string) {
	if q.method != "GET" && q.method != "HEAD" {
		return "", 405, ""
	}
	p, _, _ := strings.Cut(q.target, "?")
	p, err := url.PathUnescape(p)
	if err != nil {
		return "", 400, ""
	}
	clean := path.Clean(p)
	slash := strings.HasSuffix(p, "/")
	switch {
	case m.dirs[clean] && !slash:
		return "", 301, strings.TrimSuffix(clean, "/") + "/"
	case m.dirs[clean]:
		idx := path.Join(clean, "index.html")
		if _, ok := m.files[idx]; ok {
			return idx, 200, ""
		}
		return "", 403, ""
	case m.files[clean] != nil && !slash:
		return clean, 200, ""
	}
	return "", 404, ""
}

func (q genReq) render(file string, v map[string]valid) genReq {
	val, ok := v[file]
	r := q
	r.hdr = nil
	for _, h := range q.hdr {
		s := h[1]
		if ok {
			s = strings.NewReplacer("{WETAG}", "W/"+val.etag, "{ETAG}", val.etag, "{LM-1h}", val.lm.Add(-time.Hour).Format(http.TimeFormat),
				"{LM+1d}", val.lm.Add(24*time.Hour).Format(http.TimeFormat), "{LM}", val.raw).Replace(s)
		} else {
			s = strings.NewReplacer("{WETAG}", `W/"x"`, "{ETAG}", `"x"`, "{LM-1h}", "garbage", "{LM+1d}", "garbage", "{LM}", "garbage").Replace(s)
		}
		r.hdr = append(r.hdr, [2]string{h[0], s})
	}
	return r
}

type span struct{ a, z int64 }

// exp is the reply RFC 9110 (and our documented choices) call for.
type exp struct {
	status int
	body   []byte // the selected representation (200) or nil
	ranges []span // 206
	size   int64
	loc    string
	etag   string
}

// expect judges by RFC 9110 §13.2.2 (preconditions, in order) and §14
// (ranges), independently of the server's code.
func (m *model) expect(q genReq, v map[string]valid) exp {
	file, status, loc := m.resolve(q)
	if status != 200 {
		return exp{status: status, loc: loc}
	}
	q = q.render(file, v)
	val := v[file]
	body := m.files[file]
	e := exp{status: 200, body: body, size: int64(len(body)), etag: val.etag}
	if im, ok := q.get("If-Match"); ok {
		if !listMatch(im, val.etag, true) {
			return exp{status: 412}
		}
	} else if ius, ok := q.get("If-Unmodified-Since"); ok {
		if d, err := http.ParseTime(ius); err == nil && val.lm.After(d) {
			return exp{status: 412}
		}
	}
	if inm, ok := q.get("If-None-Match"); ok {
		if listMatch(inm, val.etag, false) {
			return exp{status: 304, etag: val.etag}
		}
	} else if ims, ok := q.get("If-Modified-Since"); ok {
		if d, err := http.ParseTime(ims); err == nil && !val.lm.After(d) {
			return exp{status: 304, etag: val.etag}
		}
	}
	rv, ok := q.get("Range")
	if !ok || q.method != "GET" || len(body) == 0 {
		return e // §14.2: GET only; ignored for an empty representation
	}
	if ir, ok := q.get("If-Range"); ok {
		// §13.1.5: a strong match of one entity-tag, or the exact date;
		// anything else (a weak tag, a list, another date) ignores Range.
		if strings.HasPrefix(ir, `"`) || strings.HasPrefix(ir, "W/") {
			if strings.TrimSpace(ir) != val.etag || strings.HasPrefix(ir, "W/") {
				return e
			}
		} else if d, err := http.ParseTime(ir); err != nil || !d.Equal(val.lm) {
			return e
		}
	}
	unit, set, ok := strings.Cut(rv, "=")
	if !ok || !strings.EqualFold(unit, "bytes") {
		return e // §14.2: unknown unit ignored
	}
	size := big.NewInt(int64(len(body)))
	var spans []span
	specs := 0
	for _, s := range strings.Split(set, ",") {
		s = strings.Trim(s, " \t")
		if s == "" {
			continue
		}
		specs++
		f, l, ok := strings.Cut(s, "-")
		fi, fok := new(big.Int).SetString(f, 10)
		li, lok := new(big.Int).SetString(l, 10)
		if !ok || (f != "" && (!fok || !isDigits(f))) || (l != "" && (!lok || !isDigits(l))) || (f == "" && l == "") {
			return exp{status: 416, size: int64(len(body))}
		}
		if f == "" {
			if li.Sign() == 0 {
				continue
			}
			start := new(big.Int).Sub(size, li)
			if start.Sign() < 0 {
				start.SetInt64(0)
			}
			spans = append(spans, span{start.Int64(), size.Int64() - 1})
			continue
		}
		if l != "" && li.Cmp(fi) < 0 {
			return exp{status: 416, size: int64(len(body))}
		}
		if fi.Cmp(size) >= 0 {
			continue
		}
		z := size.Int64() - 1
		if l != "" && li.Cmp(big.NewInt(z)) < 0 {
			z = li.Int64()
		}
		spans = append(spans, span{fi.Int64(), z})
	}
	if specs == 0 || len(spans) == 0 {
		return exp{status: 416, size: int64(len(body))}
	}
	// Documented choices (§14.2, §15.3.7.2 allow them): ranges that overlap
	// or touch are merged, in ascending order, when any do; more than 100
	// parts and the Range is ignored.
	if merged := mergeSpans(spans); len(merged) != len(spans) {
		spans = merged
	}
	if len(spans) > 100 {
		return e
	}
	return exp{status: 206, body: body, ranges: spans, size: int64(len(body)), etag: val.etag}
}

// mergeSpans is the union of spans as sorted disjoint, non-touching spans.
func mergeSpans(spans []span) []span {
	s := append([]span(nil), spans...)
	sort.Slice(s, func(i, j int) bool { return s[i].a < s[j].a })
	var out []span
	for _, x := range s {
		if n := len(out); n > 0 && x.a <= out[n-1].z+1 {
			out[n-1].z = max(out[n-1].z, x.z)
			continue
		}
		out = append(out, x)
	}
	return out
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// listMatch: a list of entity tags holds et, compared strongly (If-Match)
// or weakly (If-None-Match), RFC 9110 §8.8.3.2.
func listMatch(list, et string, strong bool) bool {
	for _, x := range strings.Split(list, ",") {
		x = strings.TrimSpace(x)
		if x == "*" {
			// "*" is the whole value by the grammar; inside a list (from
			// repeated lines) it still matches any current representation,
			// as net/http and nginx read it.
			return true
		}
		if strong {
			if x == et && !strings.HasPrefix(x, "W/") {
				return true
			}
		} else if strings.TrimPrefix(x, "W/") == strings.TrimPrefix(et, "W/") {
			return true
		}
	}
	return false
}

type reply struct {
	status int
	h      http.Header
	body   []byte
	close  bool
}

// exchange sends one connection's requests pipelined (the last with
// Connection: close, HTTP/1.0 ones before it with keep-alive) and reads the
// replies until the server closes.
func exchange(t *testing.T, addr string, m *model, b []genReq, v map[string]valid) []reply {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute)) // stops a hang only
	var w bytes.Buffer
	for i, q := range b {
		file, _, _ := m.resolve(q)
		q = q.render(file, v)
		fmt.Fprintf(&w, "%s %s %s\r\nHost: %s\r\n", q.method, q.target, q.version, addr)
		for _, h := range q.hdr {
			fmt.Fprintf(&w, "%s: %s\r\n", h[0], h[1])
		}
		switch {
		case i == len(b)-1:
			w.WriteString("Connection: close\r\n")
		case q.version == "HTTP/1.0":
			w.WriteString("Connection: keep-alive\r\n")
		}
		w.WriteString("\r\n")
	}
	go c.Write(w.Bytes())
	br := bufio.NewReader(c)
	var out []reply
	for _, q := range b {
		resp, err := http.ReadResponse(br, &http.Request{Method: q.method})
		if err != nil {
			break
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			break
		}
		out = append(out, reply{resp.StatusCode, resp.Header, body, resp.Close})
		if resp.Close {
			break
		}
	}
	return out
}

// closedBefore: an earlier reply said the connection closes, so the rest
// of the pipeline was rightly left unanswered.
func closedBefore(rs []reply, i int) bool {
	return i > 0 && len(rs) > 0 && len(rs) < i+1 && rs[len(rs)-1].close
}

// judge checks one reply against what is expected; "" when it is right.
func judge(q genReq, e exp, r reply) string {
	if r.status != e.status {
		return fmt.Sprintf("status %d, want %d", r.status, e.status)
	}
	if _, err := http.ParseTime(r.h.Get("Date")); err != nil {
		return fmt.Sprintf("%d without a valid Date (%q)", r.status, r.h.Get("Date"))
	}
	head := q.method == "HEAD"
	if head && len(r.body) != 0 {
		return "a HEAD reply with a body"
	}
	switch e.status {
	case 200:
		if r.h.Get("Content-Length") != strconv.Itoa(len(e.body)) || !head && !bytes.Equal(r.body, e.body) {
			return fmt.Sprintf("200 with Content-Length %q and %d bytes, want the %d of the file", r.h.Get("Content-Length"), len(r.body), len(e.body))
		}
		if r.h.Get("Content-Range") != "" {
			return "200 with Content-Range " + r.h.Get("Content-Range")
		}
	case 206:
		if len(e.ranges) == 1 {
			s := e.ranges[0]
			if cr := fmt.Sprintf("bytes %d-%d/%d", s.a, s.z, e.size); r.h.Get("Content-Range") != cr || !bytes.Equal(r.body, e.body[s.a:s.z+1]) {
				return fmt.Sprintf("206 with Content-Range %q and %d bytes, want %q", r.h.Get("Content-Range"), len(r.body), cr)
			}
			break
		}
		mt, params, err := mime.ParseMediaType(r.h.Get("Content-Type"))
		if err != nil || mt != "multipart/byteranges" {
			return "206 of several ranges with Content-Type " + r.h.Get("Content-Type")
		}
		mr := multipart.NewReader(bytes.NewReader(r.body), params["boundary"])
		for i := 0; ; i++ {
			p, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				if i != len(e.ranges) {
					return fmt.Sprintf("%d parts, want %d", i, len(e.ranges))
				}
				break
			}
			if err != nil || i >= len(e.ranges) {
				return fmt.Sprintf("part %d: %v", i+1, err)
			}
			b, _ := io.ReadAll(p)
			s := e.ranges[i]
			if cr := fmt.Sprintf("bytes %d-%d/%d", s.a, s.z, e.size); p.Header.Get("Content-Range") != cr || !bytes.Equal(b, e.body[s.a:s.z+1]) {
				return fmt.Sprintf("part %d: Content-Range %q, %d bytes, want %q", i+1, p.Header.Get("Content-Range"), len(b), cr)
			}
		}
	case 416:
		if cr := fmt.Sprintf("bytes */%d", e.size); r.h.Get("Content-Range") != cr {
			return fmt.Sprintf("416 with Content-Range %q, want %q", r.h.Get("Content-Range"), cr)
		}
	case 304:
		if len(r.body) != 0 || r.h.Get("ETag") != e.etag {
			return fmt.Sprintf("304 with %d bytes and ETag %q", len(r.body), r.h.Get("ETag"))
		}
	case 301:
		u, err := url.Parse(r.h.Get("Location"))
		if err != nil || u.Path != e.loc || strings.HasPrefix(r.h.Get("Location"), "//") {
			return fmt.Sprintf("301 to %q, want the path %q", r.h.Get("Location"), e.loc)
		}
	case 405:
		if allow := r.h.Get("Allow"); !strings.Contains(allow, "GET") {
			return fmt.Sprintf("405 with Allow %q", allow)
		}
	}
	return ""
}
