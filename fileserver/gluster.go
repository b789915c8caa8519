package fileserver

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/emperor-dev/emperor/gfapi"
	"github.com/emperor-dev/emperor/vassalfile"
)

// GlusterServer is one volfile server: tcp host:port, or a unix socket.
type GlusterServer struct {
	Transport string // "tcp" or "unix"
	Host      string
	Port      int
}

// GlusterConfig is one glusterfs-mount.
type GlusterConfig struct {
	Volume  string
	Servers []GlusterServer
	Volfile string
	Timeout time.Duration // glusterfs-timeout: the longest any call may take
	Creds   Creds         // whose permissions apply (the vassal's)
}

// Key identifies a volume connection, so a reload keeps an unchanged one.
func (c GlusterConfig) Key() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s|%s|%v|%v", c.Volume, c.Volfile, c.Timeout, c.Creds)
	for _, s := range c.Servers {
		fmt.Fprintf(&b, "|%s:%s:%d", s.Transport, s.Host, s.Port)
	}
	return b.String()
}

// Mount states, as `emperor status` shows them.
const (
	StateConnecting = "connecting"
	StateConnected  = "connected"
)

// Gluster reads a GlusterFS volume through libgfapi.
type Gluster struct {
	cfg     GlusterConfig
	log     *slog.Logger
	onState func(state, detail string)
	vol     atomic.Pointer[gfapi.Volume]
	creds   Creds
	perms   dirPerms
	// downSince is when calls started failing with transport errors
	// (0: the last call worked); reconnecting is set while a reconnect is
	// asked for or under way, so redial gets at most one request.
	downSince    atomic.Int64
	reconnecting atomic.Bool
	redial       chan struct{}
	stop         chan struct{}
	done         chan struct{}
	once         sync.Once
	// firstTry closes when the first glfs_init attempt has finished.
	firstTry     chan struct{}
	firstTryOnce sync.Once
	// gflog takes libgfapi's own log lines into ours (nil: they go to
	// stderr as they are, when no pipe could be made).
	gflog *gfapiLog
}

const glusterLogLevel = 4 // GF_LOG_ERROR: libgfapi's own errors only

// NewGluster starts connecting in the background: glfs_init can take
// seconds (or fail) and never runs on the request path. Until it succeeds
// requests get 503 with Retry-After.
func NewGluster(cfg GlusterConfig, log *slog.Logger, onState func(state, detail string)) *Gluster {
	if cfg.Timeout <= 0 {
		cfg.Timeout = vassalfile.DefaultOf[time.Duration]("glusterfs-timeout")
	}
	g := &Gluster{cfg: cfg, log: log.With("volume", cfg.Volume), onState: onState, creds: cfg.Creds,
		perms: dirPerms{m: map[string]dirPerm{}}, redial: make(chan struct{}, 1), stop: make(chan struct{}),
		done: make(chan struct{}), firstTry: make(chan struct{})}
	var err error
	if g.gflog, err = newGfapiLog(g.log); err != nil {
		g.log.Warn("libgfapi's own log goes to stderr as it is", "err", err)
	}
	go g.connector()
	return g
}

// connector is the one goroutine that connects the volume, for its whole
// life: it connects at start, and again with a fresh glfs_t whenever track
// asks for a reconnect. Being the only writer of vol besides Close, which
// waits for it, it can never swap a volume in after Close.
func (g *Gluster) connector() {
	defer close(g.done)
	for {
		v := g.dial()
		if v == nil {
			return // closed
		}
		if old := g.vol.Swap(v); old != nil {
			go old.Fini() // once the calls still in it have returned
		}
		g.firstTryOnce.Do(func() { close(g.firstTry) })
		g.downSince.Store(0)
		g.reconnecting.Store(false)
		g.notify(StateConnected, "")
		select {
		case <-g.stop:
			return
		case <-g.redial:
		}
		g.log.Warn("glusterfs volume unreachable; reconnecting with a fresh connection", "for", reconnectAfter)
		g.notify(StateConnecting, "volume unreachable; reconnecting")
	}
}

// dial makes fresh glfs_t until one connects, waiting 200 ms after the
// first failure and twice as long after each next one, up to 10 s. It
// returns nil when the Gluster is closed first.
func (g *Gluster) dial() *gfapi.Volume {
	delay := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		v, err := g.tryInit()
		if err == nil {
			g.log.Info("glusterfs volume connected", "attempt", attempt)
			return v
		}
		g.firstTryOnce.Do(func() { close(g.firstTry) })
		g.log.Warn("glusterfs volume not connected yet", "attempt", attempt, "err", err, "retry_in", delay)
		g.notify(StateConnecting, err.Error())
		t := time.NewTimer(delay)
		select {
		case <-g.stop:
			t.Stop()
			return nil
		case <-t.C:
		}
		delay = min(delay*2, 10*time.Second)
	}
}

// tryInit makes a fresh glfs_t for each attempt: a glfs_t whose init
// failed is not initialized again.
func (g *Gluster) tryInit() (*gfapi.Volume, error) {
	v, err := gfapi.New(g.cfg.Volume)
	if err != nil {
		return nil, err
	}
	if g.cfg.Volfile != "" {
		err = v.SetVolfile(g.cfg.Volfile)
	} else {
		// Every server before the single glfs_init: libgfapi fails over
		// between them itself.
		for _, s := range g.cfg.Servers {
			if err = v.SetVolfileServer(s.Transport, s.Host, s.Port); err != nil {
				break
			}
		}
	}
	if err == nil {
		fd := 2
		if g.gflog != nil {
			fd = g.gflog.fd()
		}
		err = v.SetLoggingFD(fd, glusterLogLevel)
	}
	if err == nil {
		err = v.Init()
	}
	if err != nil {
		v.Fini()
		return nil, err
	}
	return v, nil
}

func (g *Gluster) notify(state, detail string) {
	if g.onState != nil {
		g.onState(state, detail)
	}
}

// Close stops connecting and frees the volume once every in-flight call
// has returned.
func (g *Gluster) Close() {
	g.once.Do(func() {
		close(g.stop)
		<-g.done
		if v := g.vol.Swap(nil); v != nil {
			v.Fini()
		}
		if g.gflog != nil {
			g.gflog.Close()
		}
	})
}

type result[T any] struct {
	v   T
	err error
}

// call runs fn against the volume with glusterfs-timeout: a call that does
// not return in time (a brick host that stopped answering) makes the
// request fail with 503 instead of hanging. When ctx ends first (the client
// went away) call stops waiting at once and returns ctx's error, which says
// nothing of the volume's health. A blocking cgo call pins its thread and
// cannot be interrupted, so fn itself finishes in the background; late
// cleans up what it produced (an fd opened too late). Results travel
// through the channel only, so a late call writes nothing the caller still
// uses.
func call[T any](g *Gluster, ctx context.Context, fn func(v *gfapi.Volume) (T, error), late func(T)) (T, error) {
	var zero T
	v := g.vol.Load()
	if v == nil {
		// During the first connection attempt a request waits for it
		// (bounded by glusterfs-timeout) rather than fail at once; after
		// a failed attempt, 503 straight away.
		t := time.NewTimer(g.cfg.Timeout)
		select {
		case <-g.firstTry:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return zero, fmt.Errorf("volume %s: %w", g.cfg.Volume, ctx.Err())
		}
		t.Stop()
		if v = g.vol.Load(); v == nil {
			return zero, fmt.Errorf("volume %s is %s: %w", g.cfg.Volume, StateConnecting, ErrUnavailable)
		}
	}
	if err := ctx.Err(); err != nil {
		return zero, fmt.Errorf("volume %s: %w", g.cfg.Volume, err)
	}
	done := make(chan result[T], 1)
	go func() {
		r, err := fn(v)
		done <- result[T]{r, err}
	}()
	t := time.NewTimer(g.cfg.Timeout)
	defer t.Stop()
	var err error
	select {
	case r := <-done:
		err := classify(r.err)
		g.track(err)
		return r.v, err
	case <-t.C:
		err = fmt.Errorf("volume %s: no answer in %v: %w", g.cfg.Volume, g.cfg.Timeout, ErrUnavailable)
		g.track(err)
	case <-ctx.Done():
		err = fmt.Errorf("volume %s: %w", g.cfg.Volume, ctx.Err())
	}
	if late != nil {
		go func() {
			if r := <-done; r.err == nil {
				late(r.v)
			}
		}()
	}
	return zero, err
}

// reconnectAfter is how long every call must fail with a transport error
// before a fresh glfs_t is built: after all bricks went away and came back
// on new ports, the old one was seen to stay offline.
const reconnectAfter = 5 * time.Second

// track follows the volume's health and starts a reconnect when it has been
// unreachable for reconnectAfter.
func (g *Gluster) track(err error) {
	if err == nil || !errors.Is(err, ErrUnavailable) {
		if g.downSince.Load() != 0 {
			g.downSince.Store(0)
		}
		return
	}
	now := time.Now().UnixNano()
	since := g.downSince.Load()
	if since == 0 {
		g.downSince.CompareAndSwap(0, now)
		return
	}
	if time.Duration(now-since) >= reconnectAfter && g.reconnecting.CompareAndSwap(false, true) {
		g.redial <- struct{}{} // never blocks: reconnecting admits one request at a time
	}
}

// classify maps transport errors to ErrUnavailable (503); ENOENT and EACCES
// keep their meaning (404, 403).
func classify(err error) error {
	if err == nil {
		return nil
	}
	var en syscall.Errno
	if errors.As(err, &en) {
		switch en {
		case syscall.ENOTCONN, syscall.EIO, syscall.ETIMEDOUT, syscall.ECONNREFUSED, syscall.EHOSTUNREACH, syscall.ESTALE, syscall.EAGAIN:
			return fmt.Errorf("%v: %w", err, ErrUnavailable)
		}
	}
	if errors.Is(err, gfapi.ErrClosed) {
		return fmt.Errorf("%v: %w", err, ErrUnavailable)
	}
	return err
}

func glusterInfo(s gfapi.Stat) Info {
	return Info{Size: s.Size, ModTime: s.ModTime, Ino: s.Ino, Dev: s.Dev, IsDir: s.IsDir(), Regular: s.IsRegular()}
}

// Stat implements Backend.
func (g *Gluster) Stat(ctx context.Context, name string) (Info, error) {
	if err := g.checkAncestors(ctx, name); err != nil {
		return Info{}, err
	}
	st, err := call(g, ctx, func(v *gfapi.Volume) (gfapi.Stat, error) { return v.Stat(name) }, nil)
	return glusterInfo(st), err
}

type opened struct {
	f  *gfapi.File
	st gfapi.Stat
}

// Open implements Backend.
func (g *Gluster) Open(ctx context.Context, name string) (File, Info, error) {
	if err := g.checkAncestors(ctx, name); err != nil {
		return nil, Info{}, err
	}
	o, err := call(g, ctx, func(v *gfapi.Volume) (opened, error) {
		st, err := v.Stat(name)
		if err != nil {
			return opened{}, err
		}
		if !g.creds.may(st, permRead) {
			return opened{}, &fs.PathError{Op: "open", Path: name, Err: fs.ErrPermission}
		}
		f, err := v.Open(name)
		if err != nil {
			return opened{}, err
		}
		// fstat: the file as opened, not as it was at the path a moment ago
		if st, err = f.Stat(); err != nil {
			f.Close()
			return opened{}, err
		}
		return opened{f, st}, nil
	}, func(o opened) { o.f.Close() })
	if err != nil {
		return nil, Info{}, err
	}
	return &glusterFile{g: g, f: o.f}, glusterInfo(o.st), nil
}

// ReadDir implements Backend.
func (g *Gluster) ReadDir(ctx context.Context, name string) ([]DirEntry, error) {
	if err := g.checkAncestors(ctx, name); err != nil {
		return nil, err
	}
	ents, err := call(g, ctx, func(v *gfapi.Volume) ([]gfapi.DirEntry, error) {
		st, err := v.Stat(name)
		if err != nil {
			return nil, err
		}
		if !g.creds.may(st, permRead) {
			return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrPermission}
		}
		return v.ReadDir(name, maxListing)
	}, nil)
	out := make([]DirEntry, 0, len(ents))
	for _, e := range ents {
		out = append(out, DirEntry{Name: e.Name, Info: glusterInfo(e.Stat)})
	}
	return out, err
}

// glusterFile bounds every read by glusterfs-timeout too: a brick that
// stops answering mid-stream ends the response instead of hanging it.
type glusterFile struct {
	g *Gluster
	f *gfapi.File
}

// ReadAt reads into p. After a timeout, or when ctx ends first, the late
// read may still write into p, so the caller must not reuse p (see
// chunkReader).
func (gf *glusterFile) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	return call(gf.g, ctx, func(*gfapi.Volume) (int, error) { return gf.f.ReadAt(p, off) }, nil)
}

func (gf *glusterFile) Close() error { return gf.f.Close() }
