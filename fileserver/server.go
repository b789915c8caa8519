package fileserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/emperor-dev/emperor/vassalfile"
)

const (
	// ChunkSize is the read size from a backend: at least 128 KiB, so a
	// large file streams in few round trips to the bricks, and memory per
	// request stays bounded whatever the file size.
	ChunkSize = 256 << 10
	// MaxPath bounds a request path (and NAME_MAX each component).
	MaxPath    = 4096
	maxName    = 255
	maxListing = 10000
)

// Mount is one URL prefix and its backend.
type Mount struct {
	Prefix    string // "/", "/foo"
	Backend   Backend
	Index     []string // static-index
	Autoindex bool     // static-autoindex
}

// Config configures a Server.
type Config struct {
	Mounts  []Mount
	Threads int           // requests in flight; 0 = the threads option's default
	Wait    time.Duration // longest wait for a free thread before 503
	Cache   CacheConfig
	Log     *slog.Logger // access log; nil = off (disable-logging)
}

// Server is an http.Handler.
type Server struct {
	mounts []Mount
	sem    chan struct{}
	wait   time.Duration
	cache  *Cache
	log    *slog.Logger
}

// New builds a server. Mounts are matched by the longest prefix, so "/foo"
// and "/bar" work beside "/" without a front router setting SCRIPT_NAME.
func New(cfg Config) *Server {
	if cfg.Threads <= 0 {
		cfg.Threads = vassalfile.DefaultOf[int]("threads")
	}
	if cfg.Wait <= 0 {
		cfg.Wait = vassalfile.DefaultOf[time.Duration]("glusterfs-timeout")
	}
	ms := append([]Mount(nil), cfg.Mounts...)
	for i := range ms {
		ms[i].Prefix = "/" + strings.Trim(ms[i].Prefix, "/")
	}
	sort.SliceStable(ms, func(i, j int) bool { return len(ms[i].Prefix) > len(ms[j].Prefix) })
	return &Server{mounts: ms, sem: make(chan struct{}, cfg.Threads), wait: cfg.Wait, cache: NewCache(cfg.Cache), log: cfg.Log}
}

// Close releases the cache (open handles).
func (s *Server) Close() {
	if s.cache != nil {
		s.cache.Close()
	}
}

// Cache returns the cache, nil when off.
func (s *Server) Cache() *Cache { return s.cache }

var bufPool = sync.Pool{New: func() any { b := make([]byte, ChunkSize); return &b }}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var lw *logWriter
	if s.log != nil {
		lw = &logWriter{ResponseWriter: w, status: 200}
		w = lw
		defer func() {
			status := lw.status
			if !lw.wrote && r.Context().Err() != nil {
				status = statusClientGone
			}
			s.log.Info("request", "method", r.Method, "path", r.URL.RequestURI(), "status", status,
				"bytes", lw.bytes, "ms", float64(time.Since(start).Microseconds())/1000, "remote", r.RemoteAddr)
		}()
	}
	w.Header().Set("Server", "emperor")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		httpError(w, http.StatusMethodNotAllowed)
		return
	}
	p := r.URL.Path
	if p == "" && r.URL.Host != "" && r.URL.Opaque == "" {
		// The absolute form with an empty path means "/" (RFC 9112
		// §3.2.2).
		p = "/"
	}
	if strings.IndexByte(p, 0) >= 0 || len(p) > MaxPath || len(r.URL.RawPath) > MaxPath*3 || !strings.HasPrefix(p, "/") {
		httpError(w, http.StatusBadRequest)
		return
	}
	for _, c := range strings.Split(p, "/") {
		if len(c) > maxName {
			httpError(w, http.StatusBadRequest)
			return
		}
	}
	slash := strings.HasSuffix(p, "/")
	clean := path.Clean(p) // ".." and "%2e%2e" (decoded already) cannot climb above "/"
	m, sub, ok := s.route(clean)
	if !ok {
		httpError(w, http.StatusNotFound)
		return
	}
	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	case <-time.After(s.wait):
		w.Header().Set("Retry-After", "1")
		httpError(w, http.StatusServiceUnavailable)
		return
	case <-r.Context().Done():
		return
	}
	s.serve(w, r, m, clean, sub, slash)
}

// route picks the mount with the longest prefix that is a whole path
// segment prefix of p ("/foo" matches "/foo" and "/foo/x", not "/foobar").
func (s *Server) route(p string) (*Mount, string, bool) {
	for i := range s.mounts {
		m := &s.mounts[i]
		if m.Prefix == "/" {
			return m, p, true
		}
		if p == m.Prefix {
			return m, "/", true
		}
		if strings.HasPrefix(p, m.Prefix+"/") {
			return m, p[len(m.Prefix):], true
		}
	}
	return nil, "", false
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, m *Mount, urlPath, name string, slash bool) {
	ctx := r.Context()
	e, err := s.stat(ctx, m, name)
	if err != nil {
		fail(w, err)
		return
	}
	if e.info.IsDir {
		if !slash {
			// urlPath is clean: only "/" itself ends with a slash, and
			// "/." or "/sub/.." must not redirect to "//", a
			// network-path reference naming no path (RFC 3986 §4.2).
			loc := (&url.URL{Path: strings.TrimSuffix(urlPath, "/") + "/"}).EscapedPath()
			if r.URL.RawQuery != "" {
				loc += "?" + r.URL.RawQuery
			}
			w.Header().Set("Location", loc)
			httpError(w, http.StatusMovedPermanently)
			return
		}
		for _, idx := range m.Index {
			ie, err := s.stat(ctx, m, path.Join(name, idx))
			if err == nil && ie.info.Regular {
				s.sendFile(w, r, m, path.Join(name, idx), ie)
				return
			}
			if err != nil && errors.Is(err, ErrUnavailable) {
				fail(w, err)
				return
			}
		}
		if m.Autoindex {
			s.listing(w, r, m, urlPath, name)
			return
		}
		httpError(w, http.StatusForbidden)
		return
	}
	if slash && name != "/" {
		httpError(w, http.StatusNotFound) // "file.txt/" names a directory that is not one
		return
	}
	if !e.info.Regular {
		httpError(w, http.StatusForbidden) // fifos, devices, sockets are never served
		return
	}
	s.sendFile(w, r, m, name, e)
}

// stat looks a path up through the cache (or straight from the backend when
// the cache is off).
func (s *Server) stat(ctx context.Context, m *Mount, name string) (*entry, error) {
	if s.cache != nil {
		return s.cache.lookup(ctx, m.Prefix+"\x00"+name, m.Backend, name)
	}
	info, err := m.Backend.Stat(ctx, name)
	if err != nil {
		return nil, err
	}
	return &entry{info: info}, nil
}

func etag(i Info) string {
	return fmt.Sprintf(`"%x-%x-%x"`, i.Ino, i.Size, i.ModTime.UnixNano())
}

func contentType(name string) string {
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}

// sendFile answers with the file: ranges, If-Range, If-Modified-Since,
// If-None-Match and HEAD are http.ServeContent's (RFC 9110), given a strong
// ETag from inode, size and mtime.
func (s *Server) sendFile(w http.ResponseWriter, r *http.Request, m *Mount, name string, e *entry) {
	h := w.Header()
	h.Set("Content-Type", contentType(name))
	h.Set("Accept-Ranges", "bytes")
	switch {
	case e.data != nil:
		h.Set("ETag", etag(e.info))
		http.ServeContent(w, exactRange(r, int64(len(e.data))), "", e.info.ModTime, bytes.NewReader(e.data))
		return
	case e.handle != nil && e.handle.acquire():
		defer e.handle.release()
		h.Set("ETag", etag(e.info))
		cr := newChunkReader(r.Context(), e.handle.f, e.info.Size)
		defer cr.release()
		http.ServeContent(w, exactRange(r, e.info.Size), "", e.info.ModTime, cr)
		return
	}
	f, info, err := m.Backend.Open(r.Context(), name)
	if err != nil {
		fail(w, err)
		return
	}
	defer f.Close()
	if !info.Regular {
		httpError(w, http.StatusForbidden)
		return
	}
	h.Set("ETag", etag(info))
	r = exactRange(r, info.Size)
	if lf, ok := f.(localFile); ok {
		// A local file: net/http sends it with sendfile(2).
		http.ServeContent(w, r, "", info.ModTime, lf.f)
		return
	}
	cr := newChunkReader(r.Context(), f, info.Size)
	defer cr.release()
	http.ServeContent(w, r, "", info.ModTime, cr)
}

// chunkReader is an io.ReadSeeker over positional reads of ChunkSize, with a
// pooled buffer: memory per request is one chunk whatever the file size.
// Every read carries the request's context, so a client that goes away
// between two chunks of a large file stops the reading.
type chunkReader struct {
	ctx      context.Context
	f        File
	size     int64
	off      int64
	buf      *[]byte
	bstart   int64
	blen     int
	poisoned bool
}

func newChunkReader(ctx context.Context, f File, size int64) *chunkReader {
	return &chunkReader{ctx: ctx, f: f, size: size, buf: bufPool.Get().(*[]byte), bstart: -1}
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if c.off >= c.size {
		return 0, io.EOF
	}
	if c.bstart < 0 || c.off < c.bstart || c.off >= c.bstart+int64(c.blen) {
		if err := c.ctx.Err(); err != nil {
			return 0, err
		}
		want := min(int64(len(*c.buf)), c.size-c.off)
		n, err := c.f.ReadAt(c.ctx, (*c.buf)[:want], c.off)
		if n == 0 {
			if err != nil && err != io.EOF {
				// A read given up on (timed out, or its client gone) may
				// still land in the buffer later: it must never go back
				// to the pool.
				c.poisoned = true
			}
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF // the file shrank under us
			}
			return 0, err
		}
		c.bstart, c.blen = c.off, n
	}
	n := copy(p, (*c.buf)[c.off-c.bstart:c.blen])
	c.off += int64(n)
	return n, nil
}

func (c *chunkReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += c.off
	case io.SeekEnd:
		offset += c.size
	}
	if offset < 0 {
		return 0, errors.New("negative seek")
	}
	c.off = offset
	return offset, nil
}

func (c *chunkReader) release() {
	if !c.poisoned && c.buf != nil {
		bufPool.Put(c.buf)
	}
	c.buf = nil
}

func (s *Server) listing(w http.ResponseWriter, r *http.Request, m *Mount, urlPath, name string) {
	ents, err := m.Backend.ReadDir(r.Context(), name)
	if err != nil {
		fail(w, err)
		return
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name < ents[j].Name })
	var b bytes.Buffer
	title := html.EscapeString(urlPath)
	fmt.Fprintf(&b, "<!doctype html>\n<title>Index of %s</title>\n<h1>Index of %s</h1>\n<pre>\n<a href=\"../\">../</a>\n", title, title)
	for _, e := range ents {
		n := e.Name
		if e.Info.IsDir {
			n += "/"
		}
		fmt.Fprintf(&b, "<a href=\"%s\">%s</a> %s %d\n", (&url.URL{Path: n}).EscapedPath(), html.EscapeString(n), e.Info.ModTime.UTC().Format(time.RFC3339), e.Info.Size)
	}
	b.WriteString("</pre>\n")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	http.ServeContent(w, exactRange(r, int64(b.Len())), "", time.Time{}, bytes.NewReader(b.Bytes()))
}

// fail maps a backend error to a status: missing 404, permission (or a
// symlink out of the mount) 403, an unavailable volume 503 with Retry-After.
func fail(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		w.Header().Set("Retry-After", "1")
		httpError(w, http.StatusServiceUnavailable)
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		httpError(w, http.StatusNotFound)
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EXDEV), errors.Is(err, syscall.ELOOP):
		httpError(w, http.StatusForbidden)
	case errors.Is(err, syscall.ENAMETOOLONG):
		httpError(w, http.StatusBadRequest)
	case errors.Is(err, context.Canceled):
		// the client went away
	default:
		httpError(w, http.StatusInternalServerError)
	}
}

func httpError(w http.ResponseWriter, code int) {
	h := w.Header()
	h.Del("ETag")
	h.Del("Last-Modified")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	fmt.Fprintln(w, http.StatusText(code))
}

// statusClientGone is what the access log shows for a request whose client
// went away before any answer was written (nginx's 499).
const statusClientGone = 499

// logWriter records status and size for the access log. It keeps
// io.ReaderFrom so that sendfile still works behind it.
type logWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
	wrote  bool // a header or body was written
}

func (l *logWriter) WriteHeader(code int) {
	l.status = code
	l.wrote = true
	l.ResponseWriter.WriteHeader(code)
}

func (l *logWriter) Write(p []byte) (int, error) {
	l.wrote = true
	n, err := l.ResponseWriter.Write(p)
	l.bytes += int64(n)
	return n, err
}

func (l *logWriter) ReadFrom(src io.Reader) (int64, error) {
	l.wrote = true
	n, err := l.ResponseWriter.(io.ReaderFrom).ReadFrom(src)
	l.bytes += n
	return n, err
}
