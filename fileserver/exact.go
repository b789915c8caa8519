package fileserver

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The exact-HTTP layer: what net/http's HTTP/1.1 server does not do by RFC
// 9110 and 9112, done in a thin wrapper around its listener, its
// connections and its handler. The rules it keeps, and what stays Go's, are
// listed in docs/serving.md ("The HTTP layer"). It never copies a body: a
// request body passes through untouched (only header blocks are scanned),
// and a response body goes out through the connection's own ReadFrom, so a
// local file still leaves with sendfile(2).

// Serve serves srv on l through the exact-HTTP layer. It installs the
// layer's handler wrapper and connection hooks on srv (chaining a
// ConnContext or ConnState already set), so srv must not be served
// otherwise.
func Serve(srv *http.Server, l net.Listener) error {
	h := srv.Handler
	if h == nil {
		h = http.DefaultServeMux
	}
	srv.Handler = exactHandler{h}
	cc := srv.ConnContext
	srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if cc != nil {
			ctx = cc(ctx, c)
		}
		if ec, ok := c.(*exactConn); ok {
			ctx = context.WithValue(ctx, exactConnKey{}, ec)
		}
		return ctx
	}
	cs := srv.ConnState
	srv.ConnState = func(c net.Conn, st http.ConnState) {
		if ec, ok := c.(*exactConn); ok && st == http.StateIdle {
			// The reply is flushed: until the next handler starts, whatever
			// net/http writes is its own reply to a request it refused.
			ec.inHandler.Store(false)
		}
		if cs != nil {
			cs(c, st)
		}
	}
	return srv.Serve(exactListener{l})
}

type exactConnKey struct{}

type exactListener struct{ net.Listener }

func (l exactListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &exactConn{Conn: c}, nil
}

// Lingering close of a connection cut after a request with faulty framing:
// its unread bytes are read and dropped for at most this long (or this
// much) after our FIN, so that the kernel does not answer them with a RST
// that would destroy the reply before the client reads it (RFC 9112 §9.6).
const (
	lingerTime  = 5 * time.Second
	lingerBytes = 256 << 10
	// maxScanLine is how much of each header line the scanner keeps: enough
	// for a field name and a Content-Length value; longer values are only
	// skipped.
	maxScanLine = 256
)

// exactConn is one client connection. Read scans the request stream for
// the header block of every request (bodies are skipped by their
// Content-Length without being looked at), to find the message framing
// that RFC 9112 §6.1 and §6.3 say a server must refuse or close after:
// net/http resolves both before a handler could see them (it drops the
// Content-Length beside a Transfer-Encoding, and a Transfer-Encoding of an
// HTTP/1.0 request without a trace).
type exactConn struct {
	net.Conn

	// Scanner state: Read is only ever called by one goroutine at a time
	// (net/http's connReader).
	line       []byte // the current line's first maxScanLine bytes
	tail       []byte // its last 16 bytes (the request line's version)
	inBlock    bool   // a request line was seen, the empty line not yet
	http10     bool   // the block's request is HTTP/1.0
	te         bool   // it has a Transfer-Encoding field
	cls        []string
	clLong     bool
	skip       int64 // body bytes left to pass unscanned
	blocks     int64 // header blocks seen
	passRest   bool  // stop scanning (net/http frames the rest; we close after)
	cut        atomic.Bool
	linger     atomic.Bool // close with a lingering close
	lingerOnce sync.Once

	// Verdicts, by 1-based request index on the connection.
	refuse     atomic.Int64 // answer 400 and close (faulty framing)
	closeAfter atomic.Int64 // answer, then close

	// Handler side (net/http's serve goroutine).
	served    int64
	inHandler atomic.Bool
}

func (c *exactConn) Read(p []byte) (int, error) {
	if c.cut.Load() {
		return 0, io.EOF
	}
	n, err := c.Conn.Read(p)
	if n > 0 && !c.passRest {
		if k := c.scan(p[:n]); k >= 0 {
			// Nothing after this request's header block reaches net/http:
			// its body is not framed reliably, so it is never read as the
			// next request.
			c.cut.Store(true)
			c.linger.Store(true)
			if k == 0 {
				return 0, io.EOF
			}
			return k, nil
		}
	}
	return n, err
}

// scan follows b through the request stream. It returns the offset just
// past a header block whose request must be the last one read, or -1.
func (c *exactConn) scan(b []byte) int {
	for i := 0; i < len(b); {
		if c.skip > 0 {
			k := min(int64(len(b)-i), c.skip)
			c.skip -= k
			i += int(k)
			continue
		}
		if c.passRest {
			return -1
		}
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			c.addLine(b[i:])
			return -1
		}
		c.addLine(b[i : i+j])
		i += j + 1
		if c.endLine() {
			return i
		}
	}
	return -1
}

func (c *exactConn) addLine(b []byte) {
	if room := maxScanLine - len(c.line); room > 0 {
		c.line = append(c.line, b[:min(room, len(b))]...)
	}
	c.tail = append(c.tail, b...)
	if len(c.tail) > 16 {
		c.tail = append(c.tail[:0], c.tail[len(c.tail)-16:]...)
	}
}

// endLine handles a complete line; it says whether to cut the stream after
// it.
func (c *exactConn) endLine() bool {
	line := bytes.TrimSuffix(c.line, []byte("\r"))
	tail := bytes.TrimSuffix(c.tail, []byte("\r"))
	long := len(c.line) >= maxScanLine
	c.line, c.tail = c.line[:0], c.tail[:0]
	switch {
	case !c.inBlock:
		if len(line) == 0 {
			return false // net/http refuses it (and closes) by itself
		}
		c.inBlock = true
		v := tail
		if k := bytes.LastIndexByte(v, ' '); k >= 0 {
			v = v[k+1:]
		}
		major, minor, ok := http.ParseHTTPVersion(string(v))
		c.http10 = ok && major == 1 && minor == 0
		return false
	case len(line) == 0:
		return c.endBlock()
	case line[0] == ' ' || line[0] == '\t':
		return false // obs-fold continuation of the previous field
	}
	name, value, ok := bytes.Cut(line, []byte(":"))
	if !ok {
		return false
	}
	switch {
	case asciiEqualFold(name, "transfer-encoding"):
		c.te = true
	case asciiEqualFold(name, "content-length"):
		c.cls = append(c.cls, strings.Trim(string(value), " \t"))
		c.clLong = c.clLong || long
	}
	return false
}

// endBlock decides on the request whose header block just ended.
func (c *exactConn) endBlock() bool {
	c.blocks++
	n := c.blocks
	te, http10, cls, clLong := c.te, c.http10, c.cls, c.clLong
	c.inBlock, c.te, c.http10, c.cls, c.clLong = false, false, false, c.cls[:0], false
	switch {
	case te && (http10 || len(cls) > 0):
		// RFC 9112 §6.1: Content-Length beside Transfer-Encoding "ought to
		// be handled as an error", and the server MUST close the
		// connection after responding; an HTTP/1.0 message with a
		// Transfer-Encoding MUST be treated as having faulty framing
		// (§6.3: 400, then close).
		c.refuse.Store(n)
		return true
	case te:
		// A chunked body (or a coding net/http refuses with 501): net/http
		// frames it; a GET or HEAD server has no use for it, so the
		// connection closes after this request and nothing after it is
		// scanned.
		c.closeAfter.Store(n)
		c.linger.Store(true)
		c.passRest = true
	case len(cls) > 0:
		v, err := strconv.ParseUint(cls[0], 10, 63)
		same := !clLong
		for _, s := range cls[1:] {
			same = same && s == cls[0]
		}
		if err != nil || !same {
			// net/http refuses it, or frames it as it reads it: we cannot
			// follow, so we close after it.
			c.closeAfter.Store(n)
			c.linger.Store(true)
			c.passRest = true
			return false
		}
		c.skip = int64(v)
	}
	return false
}

func asciiEqualFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range b {
		x := b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if x != lower[i] {
			return false
		}
	}
	return true
}

// Write adds the Date field (RFC 9110 §6.6.1: an origin server with a
// clock MUST send it) to the replies that net/http writes by itself,
// straight to the connection and in one Write, to requests it refused
// before any handler ran (400, 431, 501...). Handler replies already carry
// it.
func (c *exactConn) Write(p []byte) (int, error) {
	if !c.inHandler.Load() && bytes.HasPrefix(p, []byte("HTTP/1.")) {
		if i := bytes.Index(p, []byte("\r\n")); i > 0 && !bytes.Contains(p, []byte("\r\nDate:")) {
			q := make([]byte, 0, len(p)+40)
			q = append(q, p[:i+2]...)
			q = append(q, "Date: "...)
			q = time.Now().UTC().AppendFormat(q, http.TimeFormat)
			q = append(q, "\r\n"...)
			q = append(q, p[i+2:]...)
			// net/http closes the connection after its own reply, with the
			// rest of what the client sent unread.
			c.linger.Store(true)
			if _, err := c.Conn.Write(q); err != nil {
				return 0, err
			}
			return len(p), nil
		}
	}
	return c.Conn.Write(p)
}

// ReadFrom keeps sendfile(2): net/http uses the connection's ReadFrom for
// a response body, and a *net.TCPConn's sends a file without copying.
func (c *exactConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// CloseWrite is net/http's half-close before its own lingering.
func (c *exactConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Close closes at once, or, for a connection closed on a request the
// client may have sent more after (faulty framing, a body, a request
// net/http refused), sends FIN and drains in the background first.
func (c *exactConn) Close() error {
	if !c.linger.Load() {
		return c.Conn.Close()
	}
	c.lingerOnce.Do(func() {
		go func() {
			c.CloseWrite()
			c.Conn.SetReadDeadline(time.Now().Add(lingerTime))
			io.CopyN(io.Discard, c.Conn, lingerBytes)
			c.Conn.Close()
		}()
	})
	return nil
}

// exactHandler is the layer's part that sees requests: it numbers them on
// their connection, refuses faulty framing, and checks what net/http lets
// through.
type exactHandler struct{ h http.Handler }

func (x exactHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if c, ok := r.Context().Value(exactConnKey{}).(*exactConn); ok {
		c.inHandler.Store(true)
		c.served++
		if n := c.refuse.Load(); n != 0 && c.served >= n {
			w.Header().Set("Server", "emperor")
			w.Header().Set("Connection", "close")
			httpError(w, http.StatusBadRequest)
			return
		}
		if n := c.closeAfter.Load(); n != 0 && c.served >= n {
			w.Header().Set("Connection", "close")
		}
	}
	// RFC 9112 §3.2: a Host field with an invalid value is a 400. net/http
	// only checks its characters (and that there is at most one).
	if !validHost(r.Host) {
		w.Header().Set("Server", "emperor")
		httpError(w, http.StatusBadRequest)
		return
	}
	// RFC 9110 §5.3: field lines of one list-based field combine into one
	// comma-separated value; net/http's conditional code reads only the
	// first line.
	for _, k := range []string{"If-Match", "If-None-Match"} {
		if v := r.Header[k]; len(v) > 1 {
			r.Header[k] = []string{strings.Join(v, ", ")}
		}
	}
	// §13.1.3, §13.1.4: a date field with more than one member is ignored
	// (net/http would read the first line).
	for _, k := range []string{"If-Modified-Since", "If-Unmodified-Since"} {
		if len(r.Header[k]) > 1 {
			delete(r.Header, k)
		}
	}
	// §13.1.5: an If-Range that is not one entity-tag or one date cannot
	// match, and then Range MUST be ignored (net/http matches the first
	// line, or the first tag of a list).
	if v, ok := r.Header["If-Range"]; ok && (len(v) != 1 || !validIfRange(v[0])) {
		delete(r.Header, "If-Range")
		delete(r.Header, "Range")
	}
	x.h.ServeHTTP(w, r)
}

// validIfRange: one entity-tag and nothing after it, or anything else
// (a date, which net/http parses itself).
func validIfRange(v string) bool {
	v = strings.TrimSpace(v)
	t := strings.TrimPrefix(v, "W/")
	if !strings.HasPrefix(t, `"`) {
		return !strings.HasPrefix(v, "W/")
	}
	end := strings.IndexByte(t[1:], '"')
	return end >= 0 && end+2 == len(t)
}

// validHost checks Host = uri-host [ ":" port ] (RFC 9112 §3.2, RFC 3986
// §3.2.2 and §3.2.3): an IP-literal in brackets or a reg-name (an IPv4
// address is one), and a port of digits only.
func validHost(h string) bool {
	var port string
	if strings.HasPrefix(h, "[") {
		end := strings.IndexByte(h, ']')
		if end < 0 || !validIPLiteral(h[1:end]) {
			return false
		}
		rest := h[end+1:]
		if rest != "" && rest[0] != ':' {
			return false
		}
		port = strings.TrimPrefix(rest, ":")
	} else {
		name, p, _ := strings.Cut(h, ":")
		for i := 0; i < len(name); i++ {
			ch := name[i]
			switch {
			case 'a' <= ch && ch <= 'z', 'A' <= ch && ch <= 'Z', '0' <= ch && ch <= '9', strings.IndexByte("-._~!$&'()*+,;=", ch) >= 0:
			case ch == '%' && i+2 < len(name) && isHex(name[i+1]) && isHex(name[i+2]):
				i += 2
			default:
				return false
			}
		}
		port = p
	}
	for i := 0; i < len(port); i++ {
		if port[i] < '0' || port[i] > '9' {
			return false
		}
	}
	return true
}

// validIPLiteral is IPv6address or IPvFuture (RFC 3986 §3.2.2); a zone
// identifier is not part of a Host.
func validIPLiteral(s string) bool {
	if len(s) > 1 && (s[0] == 'v' || s[0] == 'V') {
		ver, rest, ok := strings.Cut(s[1:], ".")
		if !ok || ver == "" || rest == "" {
			return false
		}
		for i := 0; i < len(ver); i++ {
			if !isHex(ver[i]) {
				return false
			}
		}
		for i := 0; i < len(rest); i++ {
			ch := rest[i]
			if !('a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9' || strings.IndexByte("-._~!$&'()*+,;=:", ch) >= 0) {
				return false
			}
		}
		return true
	}
	ip := net.ParseIP(s)
	return ip != nil && strings.Contains(s, ":")
}

func isHex(b byte) bool {
	return '0' <= b && b <= '9' || 'a' <= b && b <= 'f' || 'A' <= b && b <= 'F'
}
