// Package api is the operator's HTTP interface to a running emperor: the
// vassal table and the emperor's state in JSON, the actions (reload, stop,
// start a vassal; pause and resume the reaction to file changes), and
// Prometheus metrics at /metrics. It listens on a unix socket, and on TCP
// only when asked, then only with a bearer token. docs/api.md is its
// reference.
package api

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/emperor-dev/emperor/control"
	"github.com/emperor-dev/emperor/emperor"
)

// Fleet is what the API drives: *emperor.Emperor.
type Fleet interface {
	Info() emperor.Info
	Status() []control.VassalStatus
	Reload(name string) (int, error)
	Stop(name string) error
	Start(name string) error
	Pause() error
	Resume() error
	Metrics() http.Handler
}

// Config says where the API listens.
type Config struct {
	// Unix is the unix socket path ("": none), mode 0660.
	Unix string
	// TCP is a host:port to listen on as well ("": none). It needs Token.
	TCP string
	// Token is the bearer token every TCP request must carry.
	Token string
}

// Limits of one API connection: the API is small requests and answers.
const (
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = time.Minute
	writeTimeout      = time.Minute
	maxHeaderBytes    = 16 << 10
)

// Server is the running API.
type Server struct {
	servers []*http.Server
}

// Start listens as cfg says and serves f until Close. It fails, with
// nothing left listening, if a listener cannot be made or TCP is asked
// without a token.
func Start(f Fleet, cfg Config, log *slog.Logger) (*Server, error) {
	if cfg.TCP != "" && cfg.Token == "" {
		return nil, errors.New("the API on TCP needs a token (--api-token-file): anyone who reaches the port could stop every vassal")
	}
	s := &Server{}
	start := func(ln net.Listener, token string) {
		srv := &http.Server{Handler: Handler(f, token), ReadHeaderTimeout: readHeaderTimeout, IdleTimeout: idleTimeout,
			WriteTimeout: writeTimeout, MaxHeaderBytes: maxHeaderBytes, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
		s.servers = append(s.servers, srv)
		go func() { _ = srv.Serve(ln) }()
	}
	if cfg.Unix != "" {
		ln, err := emperor.ListenUnix(cfg.Unix, "API socket", "--api")
		if err != nil {
			return nil, err
		}
		// The socket's mode (0660) is its access control, as for the
		// control socket.
		start(ln, "")
		log.Info("API listening", "unix", cfg.Unix)
	}
	if cfg.TCP != "" {
		ln, err := net.Listen("tcp", cfg.TCP)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("API on TCP %s: %w", cfg.TCP, err)
		}
		start(ln, cfg.Token)
		log.Info("API listening", "tcp", ln.Addr().String())
	}
	return s, nil
}

// Close stops listening and closes every connection.
func (s *Server) Close() {
	for _, srv := range s.servers {
		_ = srv.Close()
	}
}

// ReadToken reads the bearer token from path: its first line, which must
// not be empty. A file others can read is refused: the token is a key to
// every vassal.
func ReadToken(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("API token file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("API token file %s: mode %v lets others read it; chmod 600", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("API token file: %w", err)
	}
	tok, _, _ := strings.Cut(string(b), "\n")
	tok = strings.TrimSpace(tok)
	if len(tok) < 16 {
		return "", fmt.Errorf("API token file %s: the token on its first line must have at least 16 characters", path)
	}
	return tok, nil
}

// Handler is the API's routes. token, when set, must come as
// "Authorization: Bearer TOKEN" on every request.
func Handler(f Fleet, token string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/emperor", only("GET", func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusOK, f.Info())
	}))
	mux.HandleFunc("/v1/vassals", only("GET", func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusOK, f.Status())
	}))
	mux.HandleFunc("/v1/vassals/{name}", only("GET", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		for _, v := range f.Status() {
			if v.Name == name {
				reply(w, http.StatusOK, v)
				return
			}
		}
		fail(w, http.StatusNotFound, fmt.Sprintf("no vassal named %q", name))
	}))
	mux.HandleFunc("/v1/vassals/{name}/{action}", only("POST", func(w http.ResponseWriter, r *http.Request) {
		name, action := r.PathValue("name"), r.PathValue("action")
		var err error
		switch action {
		case "reload":
			_, err = f.Reload(name)
			if err != nil {
				fail(w, http.StatusNotFound, err.Error())
				return
			}
		case "stop":
			err = f.Stop(name)
		case "start":
			err = f.Start(name)
		default:
			fail(w, http.StatusNotFound, fmt.Sprintf("no action %q: reload, stop or start", action))
			return
		}
		if err != nil {
			actionFailed(w, err)
			return
		}
		reply(w, http.StatusAccepted, map[string]string{"vassal": name, "action": action})
	}))
	mux.HandleFunc("/v1/reload", only("POST", func(w http.ResponseWriter, r *http.Request) {
		n, _ := f.Reload("")
		reply(w, http.StatusAccepted, map[string]int{"reloaded": n})
	}))
	mux.HandleFunc("/v1/pause", only("POST", func(w http.ResponseWriter, r *http.Request) {
		if err := f.Pause(); err != nil {
			actionFailed(w, err)
			return
		}
		reply(w, http.StatusOK, f.Info())
	}))
	mux.HandleFunc("/v1/resume", only("POST", func(w http.ResponseWriter, r *http.Request) {
		if err := f.Resume(); err != nil {
			actionFailed(w, err)
			return
		}
		reply(w, http.StatusOK, f.Info())
	}))
	metrics := f.Metrics()
	mux.HandleFunc("/metrics", only("GET", metrics.ServeHTTP))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fail(w, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s (see docs/api.md)", r.URL.Path))
	})
	if token == "" {
		return mux
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="emperor"`)
			fail(w, http.StatusUnauthorized, "a valid bearer token is required")
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// only answers 405, with Allow, to any method but method (and HEAD for GET).
func only(method string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method && (method != "GET" || r.Method != "HEAD") {
			w.Header().Set("Allow", method)
			fail(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s %s: use %s", r.Method, r.URL.Path, method))
			return
		}
		h(w, r)
	}
}

// actionFailed maps an action's error to its status.
func actionFailed(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, emperor.ErrNoVassal):
		fail(w, http.StatusNotFound, err.Error())
	case errors.Is(err, emperor.ErrConflict):
		fail(w, http.StatusConflict, err.Error())
	default:
		fail(w, http.StatusServiceUnavailable, err.Error())
	}
}

func reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func fail(w http.ResponseWriter, code int, msg string) {
	reply(w, code, map[string]string{"error": msg})
}
