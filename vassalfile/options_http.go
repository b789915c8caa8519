package vassalfile

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// GlusterServer is one entry of a glusterfs-mount server list.
type GlusterServer struct {
	Transport string // "tcp" or "unix"
	Host      string // host, or the socket path for unix
	Port      int    // 24007 when written as 0
}

// GlusterMount is one glusterfs-mount line.
type GlusterMount struct {
	Mountpoint string
	Volume     string
	Servers    []GlusterServer
	Volfile    string
	Line       int
}

// StaticMap is one static-map line.
type StaticMap struct {
	Prefix string
	Dir    string
	Line   int
}

// DefaultGlusterPort is what port 0 means, as in uWSGI's plugin.
const DefaultGlusterPort = 24007

// ParseGlusterMount reads uWSGI's glusterfs-mount value:
// mountpoint=/,volume=NAME,server=H:P;H:P (or servers=, or volfile=PATH).
// A server without a colon is a unix socket path; port 0 means 24007.
func ParseGlusterMount(v string) (GlusterMount, error) {
	m := GlusterMount{Mountpoint: "/"}
	for _, kv := range strings.Split(v, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return m, fmt.Errorf("%s is not key=value (keys: mountpoint, volume, server, servers, volfile)", QuoteValue(kv))
		}
		switch k {
		case "mountpoint":
			if !strings.HasPrefix(val, "/") {
				return m, fmt.Errorf("mountpoint %s must start with /", QuoteValue(val))
			}
			m.Mountpoint = "/" + strings.Trim(val, "/")
		case "volume":
			m.Volume = val
		case "server", "servers":
			for _, s := range strings.Split(val, ";") {
				s = strings.TrimSpace(s)
				if s == "" {
					continue
				}
				gs, err := parseGlusterServer(s)
				if err != nil {
					return m, err
				}
				m.Servers = append(m.Servers, gs)
			}
		case "volfile":
			m.Volfile = val
		default:
			return m, fmt.Errorf("unknown glusterfs-mount key %s (keys: mountpoint, volume, server, servers, volfile)", QuoteValue(k))
		}
	}
	if m.Volume == "" {
		return m, fmt.Errorf("volume= is required")
	}
	if len(m.Servers) == 0 && m.Volfile == "" {
		return m, fmt.Errorf("server= (or servers=, or volfile=) is required")
	}
	if len(m.Servers) > 0 && m.Volfile != "" {
		return m, fmt.Errorf("server= and volfile= cannot both be given")
	}
	return m, nil
}

func parseGlusterServer(s string) (GlusterServer, error) {
	if !strings.Contains(s, ":") {
		return GlusterServer{Transport: "unix", Host: s}, nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return GlusterServer{}, fmt.Errorf("server %s: %v", QuoteValue(s), err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 || host == "" {
		return GlusterServer{}, fmt.Errorf("server %s: want HOST:PORT (port 0 = %d) or a unix socket path", QuoteValue(s), DefaultGlusterPort)
	}
	if p == 0 {
		p = DefaultGlusterPort
	}
	return GlusterServer{Transport: "tcp", Host: host, Port: p}, nil
}

func parseGlusterMount(v string) (any, error) {
	if !glusterBuilt {
		return nil, fmt.Errorf("this emperor was built without GlusterFS support (-tags nogluster); rebuild with libgfapi (make deps build)")
	}
	return ParseGlusterMount(v)
}

// ParseStaticMap reads "/prefix=/dir".
func ParseStaticMap(v string) (StaticMap, error) {
	prefix, dir, ok := strings.Cut(v, "=")
	if !ok || !strings.HasPrefix(prefix, "/") || dir == "" {
		return StaticMap{}, fmt.Errorf("static-map wants /prefix=/dir, got %s", QuoteValue(v))
	}
	return StaticMap{Prefix: "/" + strings.Trim(prefix, "/"), Dir: dir}, nil
}

func parseStaticMap(v string) (any, error) { return ParseStaticMap(v) }

func validateModifier1(v string) error {
	if strings.TrimSpace(v) != "27" {
		return fmt.Errorf("modifier1 %s selects a uWSGI request plugin this emperor does not embed; only 27 (glusterfs, static files) is served here", v)
	}
	return nil
}

// ParseSize reads a byte size: 1048576, 512k, 16M, 1G.
func ParseSize(v string) (int64, error) {
	s := strings.TrimSpace(strings.ToLower(v))
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "k"):
		mult, s = 1<<10, strings.TrimSuffix(s, "k")
	case strings.HasSuffix(s, "m"):
		mult, s = 1<<20, strings.TrimSuffix(s, "m")
	case strings.HasSuffix(s, "g"):
		mult, s = 1<<30, strings.TrimSuffix(s, "g")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<50)/mult {
		return 0, fmt.Errorf("%s is not a size (bytes, or with k, M, G)", QuoteValue(v))
	}
	return n * mult, nil
}

func parseSize(v string) (any, error) { return ParseSize(v) }

func init() {
	register(
		&Option{Name: "http-socket", Owner: OwnerShared, Aliases: []string{"http11-socket"}, Scope: ScopeVassal, Kind: KindString, List: true, Restart: true,
			Validate: validateSocket, Default: "(none)",
			Doc:   "[ADDR]:PORT the vassal serves HTTP/1.1 on (keep-alive), bound as root before the privilege drop so :80 works with uid set. Repeatable.",
			UWSGI: "Always HTTP/1.1 with keep-alive (uWSGI's http-socket is HTTP/1.0-style and closes without saying so)."},
		&Option{Name: "http-socket-modifier1", Owner: OwnerShared, Scope: ScopeVassal, Kind: KindInt, Validate: validateModifier1, Default: "27",
			Doc:   "Accepted for uWSGI compatibility: 27 (glusterfs) is the only handler. Any other value is an error.",
			UWSGI: "uWSGI routes to the plugin with this number; here the file server is the only one."},
		&Option{Name: "threads", Owner: OwnerShared, Scope: ScopeVassal, Kind: KindInt, Parse: intRange(1, 100000), Default: "64",
			Doc:   "Requests in flight at once, and with them concurrent libgfapi calls (each blocking cgo call pins an OS thread). More wait, up to glusterfs-timeout, then get 503.",
			UWSGI: "Goroutines, not OS threads per worker; the default is 64, not 1."},
		&Option{Name: "glusterfs-mount", Scope: ScopeVassal, Kind: KindString, List: true, Parse: parseGlusterMount, Default: "(none)",
			Doc:   "mountpoint=/PREFIX,volume=NAME,server=HOST:PORT;HOST:PORT (or servers=, or volfile=PATH). Serves a GlusterFS volume through libgfapi under the URL prefix. Port 0 is 24007; a server without a colon is a unix socket. Every server is given to libgfapi before one glfs_init, which runs in the background with retry (503 until connected). Not in a vassal that runs an app (an error: uWSGI's app server owns http-socket there; see docs/uwsgi.md).",
			UWSGI: "Mounts are chosen by the longest URL prefix, no SCRIPT_NAME needed; failover order fixed; Range, conditional requests, directories and 405 done right."},
		&Option{Name: "glusterfs-timeout", Scope: ScopeVassal, Kind: KindSeconds, Min: time.Millisecond, Max: time.Hour, Default: "10",
			Doc:   "Longest time a request waits on the volume (or for a free thread): past it, 503.",
			UWSGI: "uWSGI applies it only in async mode; here to every call."},
		&Option{Name: "static-map", Owner: OwnerShared, Scope: ScopeVassal, Kind: KindString, List: true, Parse: parseStaticMap, Default: "(none)",
			Doc:   "/PREFIX=/DIR serves a local folder under the URL prefix. Symlinks may not lead outside DIR (kernel-enforced, openat2 RESOLVE_BENEATH) unless into a static-safe folder.",
			UWSGI: "A miss is a 404 (there is no app to fall through to)."},
		&Option{Name: "static-index", Owner: OwnerShared, Scope: ScopeVassal, Kind: KindString, List: true, Validate: validateNotEmpty, Default: "index.html",
			Doc:   "Index file names tried for a directory URL, in order. Repeatable.",
			UWSGI: "Also used for glusterfs-mount (uWSGI's plugin has no index support)."},
		&Option{Name: "static-autoindex", Scope: ScopeVassal, Kind: KindBool, Default: "false",
			Doc:   "List a directory without an index file (else 403).",
			UWSGI: "Not in uWSGI."},
		&Option{Name: "static-safe", Owner: OwnerShared, Scope: ScopeVassal, Kind: KindString, List: true, Validate: validateAbs, Default: "(none)",
			Doc:   "A folder that symlinks under a static-map may point into.",
			UWSGI: "same"},
		&Option{Name: "static-cache-ttl", Scope: ScopeVassal, Kind: KindSeconds, Min: 0, Max: 24 * time.Hour, Default: "1",
			Doc:   "How long a cached entry is served before one stat revalidates it (a changed mtime, size or inode drops it). 0 turns the cache off. See docs/serving.md for the consistency this gives.",
			UWSGI: "Not in uWSGI's glusterfs plugin."},
		&Option{Name: "static-cache-max-file", Scope: ScopeVassal, Kind: KindString, Parse: parseSize, Default: "16M",
			Doc:   "Largest file whose content is cached; larger files cache metadata and an open handle.",
			UWSGI: "Not in uWSGI's glusterfs plugin."},
		&Option{Name: "static-cache-size", Scope: ScopeVassal, Kind: KindString, Parse: parseSize, Default: "256M",
			Doc:   "Cap on cached content; least recently used entries go first.",
			UWSGI: "Not in uWSGI's glusterfs plugin."},
		&Option{Name: "disable-logging", Owner: OwnerShared, Scope: ScopeVassal, Kind: KindBool, Default: "false",
			Doc:   "No access log lines (they carry the vassal name).",
			UWSGI: "same"},
	)
}
