package fileserver

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emperor-dev/emperor/gfapi"
)

// hangBackend serves one large regular file, "/big", and "/hold", whose
// stat blocks until released. Its file answers the first chunk at once and
// blocks every later read until the read's context ends.
type hangBackend struct {
	holding  chan struct{} // closed when a stat of /hold is blocked
	release  chan struct{}
	blocked  chan struct{} // closed when a read past the first chunk waits
	stopped  chan error    // the context error that ended that read
	closed   chan struct{} // closed when the file was closed
	holdOnce sync.Once
	blkOnce  sync.Once
	clsOnce  sync.Once
}

func newHangBackend() *hangBackend {
	return &hangBackend{holding: make(chan struct{}), release: make(chan struct{}), blocked: make(chan struct{}),
		stopped: make(chan error, 1), closed: make(chan struct{})}
}

var bigInfo = Info{Size: 3 * ChunkSize, ModTime: time.Unix(1e9, 0), Ino: 1, Regular: true}

func (b *hangBackend) Stat(ctx context.Context, name string) (Info, error) {
	if name == "/hold" {
		b.holdOnce.Do(func() { close(b.holding) })
		<-b.release
		return Info{}, fs.ErrNotExist
	}
	return bigInfo, nil
}

func (b *hangBackend) Open(ctx context.Context, name string) (File, Info, error) {
	return hangFile{b}, bigInfo, nil
}

func (b *hangBackend) ReadDir(context.Context, string) ([]DirEntry, error) { return nil, nil }

type hangFile struct{ b *hangBackend }

func (f hangFile) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	if off == 0 {
		for i := range p {
			p[i] = 'a'
		}
		return len(p), nil
	}
	f.b.blkOnce.Do(func() { close(f.b.blocked) })
	<-ctx.Done()
	select {
	case f.b.stopped <- ctx.Err():
	default:
	}
	return 0, ctx.Err()
}

func (f hangFile) Close() error { f.b.clsOnce.Do(func() { close(f.b.closed) }); return nil }

func await(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(time.Minute):
		t.Fatalf("timed out waiting: %s", what)
	}
}

// A client that goes away in the middle of a large file stops the reading:
// the read of the next chunk gets the request's context, which ends.
func TestClientGoneStopsChunkedRead(t *testing.T) {
	for _, cache := range []CacheConfig{{}, {TTL: time.Minute, MaxFile: 1, MaxSize: 1 << 20}} {
		b := newHangBackend()
		base := serve(t, Config{Mounts: []Mount{{Prefix: "/", Backend: b}}, Cache: cache})
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/big", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(resp.Body, make([]byte, ChunkSize)); err != nil {
			t.Fatal(err)
		}
		await(t, b.blocked, "the read of the second chunk")
		cancel()
		resp.Body.Close()
		select {
		case err := <-b.stopped:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("cache %v: the read ended with %v", cache.TTL, err)
			}
		case <-time.After(time.Minute):
			t.Fatalf("cache %v: the read did not stop when its client went away", cache.TTL)
		}
		if cache.TTL == 0 {
			await(t, b.closed, "the file's close")
		}
	}
}

type recordHandler struct {
	slog.Handler
	recs chan slog.Record
}

func (h recordHandler) Enabled(context.Context, slog.Level) bool      { return true }
func (h recordHandler) Handle(_ context.Context, r slog.Record) error { h.recs <- r; return nil }

// A request waiting for a free slot under threads stops waiting when its
// client goes away, and is logged with status 499.
func TestClientGoneStopsWaitingForSlot(t *testing.T) {
	b := newHangBackend()
	recs := make(chan slog.Record, 4)
	s := New(Config{Mounts: []Mount{{Prefix: "/", Backend: b}}, Threads: 1, Wait: time.Hour,
		Log: slog.New(recordHandler{slog.DiscardHandler, recs})})
	ts := httptest.NewServer(s)
	defer ts.Close()
	defer close(b.release)

	go http.Get(ts.URL + "/hold")
	await(t, b.holding, "the first request to hold the only slot")

	// The second request is sent whole, then its client hangs up.
	c, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("GET /big HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	c.Close()
	select {
	case r := <-recs:
		var path string
		var status int64
		r.Attrs(func(a slog.Attr) bool {
			switch a.Key {
			case "path":
				path = a.Value.String()
			case "status":
				status = a.Value.Int64()
			}
			return true
		})
		if path != "/big" || status != statusClientGone {
			t.Fatalf("logged path %q status %d, want /big 499", path, status)
		}
	case <-time.After(time.Minute):
		t.Fatal("the request kept waiting for a slot after its client went away")
	}
}

// call stops waiting when the request's context ends, says so (not 503),
// and does not count it against the volume's health.
func TestGlusterCallStopsWaiting(t *testing.T) {
	g := &Gluster{cfg: GlusterConfig{Volume: "v", Timeout: time.Hour}, firstTry: make(chan struct{})}

	// Waiting for the first connection.
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan error, 1)
	go func() {
		_, err := call(g, ctx, func(*gfapi.Volume) (int, error) { return 0, nil }, nil)
		res <- err
	}()
	cancel()
	select {
	case err := <-res:
		if !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnavailable) {
			t.Fatalf("waiting for the connection: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("call kept waiting for the connection after its context ended")
	}

	// Waiting for a call in flight.
	g.vol.Store(new(gfapi.Volume))
	started, unblock, lateDone := make(chan struct{}), make(chan struct{}), make(chan int, 1)
	ctx, cancel = context.WithCancel(context.Background())
	go func() {
		_, err := call(g, ctx, func(*gfapi.Volume) (int, error) {
			close(started)
			<-unblock
			return 7, nil
		}, func(n int) { lateDone <- n })
		res <- err
	}()
	await(t, started, "the call to start")
	cancel()
	select {
	case err := <-res:
		if !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnavailable) {
			t.Fatalf("waiting for the call: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("call kept waiting for libgfapi after its context ended")
	}
	if g.downSince.Load() != 0 {
		t.Fatal("a client going away was counted as the volume being down")
	}
	close(unblock)
	select {
	case n := <-lateDone:
		if n != 7 {
			t.Fatalf("late got %d", n)
		}
	case <-time.After(time.Minute):
		t.Fatal("the late result was not cleaned up")
	}
}
