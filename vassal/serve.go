package vassal

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emperor-dev/emperor/control"
	"github.com/emperor-dev/emperor/fileserver"
	"github.com/emperor-dev/emperor/vassalfile"
)

// httpService is the vassal's own file server: http-socket listeners bound
// as root, one handler swapped atomically on reload, and the GlusterFS
// connections, kept across reloads when their mount is unchanged.
type httpService struct {
	v         *vassal
	listeners []net.Listener
	servers   []*http.Server
	handler   atomic.Pointer[fileserver.Server]

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

// bindHTTP binds every http-socket before the privilege drop, so a
// tenant's vassal can serve :80.
func (v *vassal) bindHTTP() error {
	if len(v.spec.HTTPSockets) == 0 {
		return nil
	}
	hs := &httpService{v: v, glusters: map[string]*glusterConn{}}
	for _, addr := range v.spec.HTTPSockets {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			for _, o := range hs.listeners {
				o.Close()
			}
			return fmt.Errorf("http-socket %s: %w", addr, err)
		}
		hs.listeners = append(hs.listeners, l)
	}
	v.http = hs
	return nil
}

// start builds the handler and serves. Gluster volumes connect in the
// background; until then their requests get 503.
func (hs *httpService) start() error {
	if err := hs.apply(hs.v.spec); err != nil {
		return err
	}
	for _, l := range hs.listeners {
		srv := &http.Server{
			Handler:           http.HandlerFunc(hs.serveHTTP),
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       120 * time.Second,
			ErrorLog:          slog.NewLogLogger(hs.v.log.Handler(), slog.LevelWarn),
		}
		hs.servers = append(hs.servers, srv)
		go srv.Serve(l)
		hs.v.log.Info("serving HTTP", "addr", l.Addr().String())
	}
	return nil
}

func (hs *httpService) serveHTTP(w http.ResponseWriter, r *http.Request) {
	hs.handler.Load().ServeHTTP(w, r)
}

// apply (re)builds the mount table from spec and swaps it in. A gluster
// mount whose configuration is unchanged keeps its connection; the others
// are closed after the swap, once their in-flight calls return.
func (hs *httpService) apply(spec *vassalfile.Spec) error {
	var mounts []fileserver.Mount
	keep := map[string]bool{}
	var opened []*fileserver.Local
	for _, sm := range spec.StaticMaps {
		l, err := fileserver.NewLocal(sm.Dir, spec.StaticSafe)
		if err != nil {
			for _, o := range opened {
				o.Close()
			}
			return err
		}
		opened = append(opened, l)
		mounts = append(mounts, fileserver.Mount{Prefix: sm.Prefix, Backend: l, Index: spec.StaticIndex, Autoindex: spec.StaticAutoindex})
	}
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
	if old := hs.handler.Swap(srv); old != nil {
		// In-flight requests of the old handler hold their own references;
		// its cache's open handles close when the last one is done.
		old.Close()
	}
	for _, gc := range drop {
		go gc.g.Close()
	}
	hs.report()
	return nil
}

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

// stop closes the listeners, lets in-flight requests finish within mercy,
// then closes the volumes, in parallel and waiting at most finiWait.
func (hs *httpService) stop(mercy time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), mercy)
	defer cancel()
	var wg sync.WaitGroup
	for _, s := range hs.servers {
		wg.Add(1)
		go func() { defer wg.Done(); s.Shutdown(ctx) }()
	}
	wg.Wait()
	hs.mu.Lock()
	glusters := hs.glusters
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

// startCPUProfile profiles PID 1 into path until the returned stop runs.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
