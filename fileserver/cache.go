package fileserver

import (
	"container/list"
	"context"
	"errors"
	"io"
	"sync"
	"time"
)

// CacheConfig bounds the cache. TTL 0 turns it off.
type CacheConfig struct {
	TTL     time.Duration // static-cache-ttl: an entry older than this is revalidated with a stat
	MaxFile int64         // static-cache-max-file: larger files keep only metadata and an open handle
	MaxSize int64         // static-cache-size: total bytes of cached content
	// MaxHandles bounds the open handles kept for files over MaxFile.
	MaxHandles int
}

// entry is one cached path of one mount.
type entry struct {
	key     string
	info    Info
	checked time.Time
	data    []byte // whole content of a small regular file, else nil
	handle  *sharedFile
	elem    *list.Element
}

// sharedFile is an open handle kept by the cache and lent to requests; it
// closes when the cache has dropped it and the last request is done.
type sharedFile struct {
	mu      sync.Mutex
	f       File
	refs    int
	dropped bool
}

func (s *sharedFile) acquire() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dropped {
		return false
	}
	s.refs++
	return true
}

func (s *sharedFile) release() {
	s.mu.Lock()
	s.refs--
	closeNow := s.dropped && s.refs == 0
	s.mu.Unlock()
	if closeNow {
		s.f.Close()
	}
}

func (s *sharedFile) drop() {
	s.mu.Lock()
	s.dropped = true
	closeNow := s.refs == 0
	s.mu.Unlock()
	if closeNow {
		s.f.Close()
	}
}

// Cache holds metadata, small files' content and large files' open handles,
// in one LRU. Consistency: an entry is served unchecked for at most TTL
// after its last stat; then one stat revalidates it, and a changed mtime,
// size or inode drops it. A reader therefore sees a change at most TTL
// late, the same staleness a FUSE mount of the volume gives through the
// kernel's attribute timeout and page cache (attr_timeout=1s by default).
type Cache struct {
	cfg CacheConfig

	mu      sync.Mutex
	lru     *list.List // front: most recent
	entries map[string]*entry
	bytes   int64
	handles int
	loading map[string]*load
}

type load struct {
	done  chan struct{}
	stale *entry // the entry to revalidate, nil for a new one
	e     *entry
	err   error
}

// NewCache makes a cache; nil when TTL is 0.
func NewCache(cfg CacheConfig) *Cache {
	if cfg.TTL <= 0 {
		return nil
	}
	if cfg.MaxHandles <= 0 {
		cfg.MaxHandles = 1024
	}
	return &Cache{cfg: cfg, lru: list.New(), entries: map[string]*entry{}, loading: map[string]*load{}}
}

// lookup returns a fresh entry for key, revalidating or loading it as
// needed. Concurrent misses of one key share one load. The load runs with
// the context of the request that started it: when that client goes away,
// the others waiting for the load start it again with their own.
func (c *Cache) lookup(ctx context.Context, key string, b Backend, name string) (*entry, error) {
	for {
		e, l, wait := c.begin(key)
		if e != nil {
			return e, nil
		}
		if wait {
			select {
			case <-l.done:
				if ctx.Err() == nil && (errors.Is(l.err, context.Canceled) || errors.Is(l.err, context.DeadlineExceeded)) {
					continue // the loader's request ended, not ours
				}
				return l.e, l.err
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return c.load(ctx, key, b, name, l)
	}
}

// begin finds key fresh in the cache (e), or a load of it to wait for
// (wait), or registers a new load l for the caller to run.
func (c *Cache) begin(key string) (e *entry, l *load, wait bool) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	e = c.entries[key]
	if e != nil && now.Sub(e.checked) < c.cfg.TTL {
		c.lru.MoveToFront(e.elem)
		return e, nil, false
	}
	if l := c.loading[key]; l != nil {
		return nil, l, true
	}
	l = &load{done: make(chan struct{}), stale: e}
	c.loading[key] = l
	return nil, l, false
}

// load runs the load l registered by begin.
func (c *Cache) load(ctx context.Context, key string, b Backend, name string, l *load) (*entry, error) {
	l.e, l.err = c.fill(ctx, key, b, name, l.stale)
	c.mu.Lock()
	delete(c.loading, key)
	c.mu.Unlock()
	close(l.done)
	return l.e, l.err
}

// fill revalidates a stale entry with one stat, or loads a new one.
func (c *Cache) fill(ctx context.Context, key string, b Backend, name string, stale *entry) (*entry, error) {
	info, err := b.Stat(ctx, name)
	if err != nil {
		if stale != nil && ctx.Err() == nil {
			c.remove(stale)
		}
		return nil, err
	}
	if stale != nil {
		if stale.info.same(info) {
			c.mu.Lock()
			stale.checked = time.Now()
			if stale.elem != nil {
				c.lru.MoveToFront(stale.elem)
			}
			c.mu.Unlock()
			return stale, nil
		}
		c.remove(stale)
	}
	e := &entry{key: key, info: info, checked: time.Now()}
	if info.Regular {
		f, finfo, err := b.Open(ctx, name)
		if err != nil {
			return nil, err
		}
		e.info = finfo
		if finfo.Size <= c.cfg.MaxFile {
			data := make([]byte, finfo.Size)
			n, err := f.ReadAt(ctx, data, 0)
			f.Close()
			if err != nil && !(err == io.EOF && int64(n) == finfo.Size) {
				return nil, err
			}
			e.data = data[:n]
		} else {
			e.handle = &sharedFile{f: f}
		}
	}
	c.insert(e)
	return e, nil
}

func (c *Cache) insert(e *entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.entries[e.key]; old != nil {
		c.removeLocked(old)
	}
	e.elem = c.lru.PushFront(e)
	c.entries[e.key] = e
	c.bytes += int64(len(e.data))
	if e.handle != nil {
		c.handles++
	}
	for (c.bytes > c.cfg.MaxSize || c.handles > c.cfg.MaxHandles) && c.lru.Len() > 1 {
		c.removeLocked(c.lru.Back().Value.(*entry))
	}
}

func (c *Cache) remove(e *entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries[e.key] == e {
		c.removeLocked(e)
	}
}

func (c *Cache) removeLocked(e *entry) {
	delete(c.entries, e.key)
	if e.elem != nil {
		c.lru.Remove(e.elem)
		e.elem = nil
	}
	c.bytes -= int64(len(e.data))
	if e.handle != nil {
		c.handles--
		e.handle.drop()
	}
}

// Stats reports the cache's size.
func (c *Cache) Stats() (entries int, bytes int64, handles int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries), c.bytes, c.handles
}

// Close drops everything.
func (c *Cache) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.entries {
		c.removeLocked(e)
	}
}
