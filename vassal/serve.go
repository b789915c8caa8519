package vassal

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emperor-dev/emperor/control"
	"github.com/emperor-dev/emperor/fileserver"
	"github.com/emperor-dev/emperor/vassalfile"
)

// httpService is the vassal's own file server, the http component: it
// serves the http-socket listeners (bound as root by the sockets
// component) with one handler generation at a time, swapped atomically on
// reload, and keeps each GlusterFS connection across reloads while its
// mount is unchanged.
type httpService struct {
	v       *vassal
	socks   *sockets
	servers []*http.Server
	gen     atomic.Pointer[generation]
	cur     *config

	mu       sync.Mutex
	glusters map[string]*glusterConn // by mountpoint and GlusterConfig.Key
	statics  []vassalfile.StaticMap
}

type glusterConn struct {
	g      *fileserver.Gluster
	prefix string
	volume string
	state  string
	detail string
}

// generation is one handler with the static-map folders it opened. It is
// reference counted: the service holds one reference while the generation
// is current and each request in flight holds one, so that the folders of
// a replaced generation close when its last request is done, and never
// under a request (a closed descriptor number can be reused by another
// open, and openat2 would resolve beneath the wrong directory).
type generation struct {
	srv  *fileserver.Server
	refs atomic.Int64
	// retire closes what went out of use with this generation.
	retire func()
}

func newGeneration(srv *fileserver.Server, retire func()) *generation {
	g := &generation{srv: srv, retire: retire}
	g.refs.Store(1)
	return g
}

// acquire takes a reference unless the generation is already retired.
func (g *generation) acquire() bool {
	for {
		n := g.refs.Load()
		if n <= 0 {
			return false
		}
		if g.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (g *generation) release() {
	if g.refs.Add(-1) == 0 {
		g.retire()
	}
}

// Start builds the first handler and serves. Gluster volumes connect in
// the background; until then their requests get 503.
func (hs *httpService) Start(c *config) error {
	if len(hs.socks.http) == 0 {
		return nil
	}
	hs.glusters = map[string]*glusterConn{}
	if err := hs.apply(c); err != nil {
		return err
	}
	for _, l := range hs.socks.http {
		srv := &http.Server{
			Handler:           http.HandlerFunc(hs.serveHTTP),
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       120 * time.Second,
			ErrorLog:          slog.NewLogLogger(hs.v.log.Handler(), slog.LevelWarn),
		}
		hs.servers = append(hs.servers, srv)
		go fileserver.Serve(srv, l) // net/http behind the exact-HTTP layer
		hs.v.log.Info("serving HTTP", "addr", l.Addr().String())
	}
	return nil
}

// Apply swaps in a handler for new. It fails, changing nothing, when a
// static-map folder cannot be opened.
func (hs *httpService) Apply(old, new *config) error {
	if len(hs.socks.http) == 0 {
		return nil
	}
	return hs.apply(new)
}

func (hs *httpService) serveHTTP(w http.ResponseWriter, r *http.Request) {
	for {
		g := hs.gen.Load()
		if g.acquire() {
			defer g.release()
			g.srv.ServeHTTP(w, r)
			return
		}
		if hs.gen.Load() == g {
			// Retired and still current: the service has stopped (a
			// connection that outlived the shutdown's mercy).
			w.Header().Set("Connection", "close")
			http.Error(w, "503 service stopping", http.StatusServiceUnavailable)
			return
		}
		// Retired between the load and the acquire: the next one is
		// already current.
	}
}

// apply builds the mount table of c, swaps it in and retires the previous
// generation: its folders close once its requests are done, and so do the
// GlusterFS connections that c no longer has. A connection whose mount is
// unchanged is kept.
func (hs *httpService) apply(c *config) error {
	spec := c.spec
	var mounts []fileserver.Mount
	var locals []*fileserver.Local
	closeLocals := func() {
		for _, l := range locals {
			l.Close()
		}
	}
	for _, sm := range spec.StaticMaps {
		l, err := fileserver.NewLocal(sm.Dir, spec.StaticSafe)
		if err != nil {
			closeLocals()
			return err
		}
		locals = append(locals, l)
		mounts = append(mounts, fileserver.Mount{Prefix: sm.Prefix, Backend: l, Index: spec.StaticIndex, Autoindex: spec.StaticAutoindex})
	}
	keep := map[string]bool{}
	hs.mu.Lock()
	for _, gm := range spec.GlusterMounts {
		cfg := fileserver.GlusterConfig{Volume: gm.Volume, Volfile: gm.Volfile, Timeout: spec.GlusterTimeout, Creds: currentCreds()}
		for _, s := range gm.Servers {
			cfg.Servers = append(cfg.Servers, fileserver.GlusterServer{Transport: s.Transport, Host: s.Host, Port: s.Port})
		}
		key := gm.Mountpoint + "|" + cfg.Key()
		keep[key] = true
		gc := hs.glusters[key]
		if gc == nil {
			gc = &glusterConn{prefix: gm.Mountpoint, volume: gm.Volume, state: fileserver.StateConnecting}
			hs.glusters[key] = gc
			gc.g = fileserver.NewGluster(cfg, hs.v.log.With("mount", gm.Mountpoint), func(state, detail string) {
				hs.setState(gc, state, detail)
			})
		}
		mounts = append(mounts, fileserver.Mount{Prefix: gm.Mountpoint, Backend: gc.g, Index: spec.StaticIndex, Autoindex: spec.StaticAutoindex})
	}
	hs.statics = spec.StaticMaps
	var drop []*glusterConn
	for key, gc := range hs.glusters {
		if !keep[key] {
			drop = append(drop, gc)
			delete(hs.glusters, key)
		}
	}
	hs.mu.Unlock()
	var log *slog.Logger
	if !spec.DisableLogging {
		log = hs.v.log
	}
	srv := fileserver.New(fileserver.Config{
		Mounts:  mounts,
		Threads: spec.Threads,
		Wait:    spec.GlusterTimeout,
		Cache:   fileserver.CacheConfig{TTL: spec.CacheTTL, MaxFile: spec.CacheMaxFile, MaxSize: spec.CacheSize},
		Log:     log,
	})
	next := newGeneration(srv, func() {
		srv.Close()
		closeLocals()
	})
	if prev := hs.gen.Swap(next); prev != nil {
		prev.retire = chain(prev.retire, func() {
			for _, gc := range drop {
				// glfs_fini takes seconds; nothing waits for it.
				go gc.g.Close()
			}
		})
		prev.release()
	}
	hs.cur = c
	hs.report()
	return nil
}

func chain(a, b func()) func() { return func() { a(); b() } }

func (hs *httpService) setState(gc *glusterConn, state, detail string) {
	hs.mu.Lock()
	changed := gc.state != state
	gc.state, gc.detail = state, detail
	hs.mu.Unlock()
	if changed {
		hs.report()
	}
}

// report tells the emperor the state of every served mount (emperor status).
func (hs *httpService) report() {
	hs.mu.Lock()
	var ms []control.MountStatus
	for _, sm := range hs.statics {
		ms = append(ms, control.MountStatus{Prefix: sm.Prefix, Kind: "static-map", Source: sm.Dir, State: "serving"})
	}
	for _, gc := range hs.glusters {
		ms = append(ms, control.MountStatus{Prefix: gc.prefix, Kind: "glusterfs", Source: gc.volume, State: gc.state, Detail: gc.detail})
	}
	hs.mu.Unlock()
	sort.Slice(ms, func(i, j int) bool { return ms[i].Prefix < ms[j].Prefix })
	_ = hs.v.conn.Send(control.Message{Type: control.MsgMounts, Mounts: ms})
}

// finiWait bounds how long a stopping vassal waits for glfs_fini. libgfapi
// tears its event threads down on timers and takes about 6 s here; PID 1 is
// about to exit, which closes the brick connections anyway, and the file
// server only ever reads (no write to flush, no lock to release), so the
// exit need not wait for that.
const finiWait = time.Second

// Stop closes the listeners, lets in-flight requests finish within mercy,
// retires the current generation, then closes the volumes, in parallel and
// waiting at most finiWait.
func (hs *httpService) Stop() {
	if hs.cur == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), hs.v.mercyFor(hs.cur.spec))
	defer cancel()
	var wg sync.WaitGroup
	for _, s := range hs.servers {
		wg.Add(1)
		go func() { defer wg.Done(); s.Shutdown(ctx) }()
	}
	wg.Wait()
	if g := hs.gen.Load(); g != nil {
		g.release()
	}
	hs.mu.Lock()
	glusters := hs.glusters
	hs.glusters = nil
	hs.mu.Unlock()
	closed := make(chan struct{})
	go func() {
		var wg sync.WaitGroup
		for _, gc := range glusters {
			wg.Add(1)
			go func() { defer wg.Done(); gc.g.Close() }()
		}
		wg.Wait()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(finiWait):
		hs.v.log.Info("glfs_fini still running; exiting without waiting for it", "waited", finiWait)
	}
	hs.servers, hs.cur = nil, nil
}

// currentCreds are PID 1's credentials after the privilege drop: the
// permissions a FUSE mount of the volume would apply to the tenant.
func currentCreds() fileserver.Creds {
	c := fileserver.Creds{UID: uint32(os.Geteuid()), GID: uint32(os.Getegid())}
	gs, _ := os.Getgroups()
	for _, g := range gs {
		c.Groups = append(c.Groups, uint32(g))
	}
	return c
}
