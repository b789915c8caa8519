package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emperor-dev/emperor/control"
	"github.com/emperor-dev/emperor/emperor"
)

// fleet is a Fleet with one vassal, "app", that records the actions.
type fleet struct{ did []string }

func (f *fleet) Info() emperor.Info { return emperor.Info{PID: 1, Vassals: 1} }
func (f *fleet) Status() []control.VassalStatus {
	return []control.VassalStatus{{Name: "app", State: "running", PID: 42}}
}
func (f *fleet) Reload(name string) (int, error) {
	if name != "" && name != "app" {
		return 0, fmt.Errorf("no vassal named %q", name)
	}
	f.did = append(f.did, "reload "+name)
	return 1, nil
}
func (f *fleet) Stop(name string) error {
	if name != "app" {
		return fmt.Errorf("vassal %q: %w", name, emperor.ErrNoVassal)
	}
	f.did = append(f.did, "stop "+name)
	return nil
}
func (f *fleet) Start(name string) error {
	return fmt.Errorf("vassal %q: %w", name, emperor.ErrConflict)
}
func (f *fleet) Pause() error  { f.did = append(f.did, "pause"); return nil }
func (f *fleet) Resume() error { return errors.New("the emperor is stopping") }
func (f *fleet) Metrics() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "emperor_vassals 1\n") })
}

func call(t *testing.T, h http.Handler, method, path, auth string) (int, http.Header, string) {
	t.Helper()
	r := httptest.NewRequest(method, path, nil)
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code, w.Header(), w.Body.String()
}

func TestRoutes(t *testing.T) {
	f := &fleet{}
	h := Handler(f, "")
	for _, c := range []struct {
		method, path string
		code         int
		body         string
	}{
		{"GET", "/v1/vassals", 200, `"name": "app"`},
		{"GET", "/v1/vassals/app", 200, `"pid": 42`},
		{"GET", "/v1/vassals/nope", 404, `"error": "no vassal named \"nope\""`},
		{"GET", "/v1/emperor", 200, `"vassals": 1`},
		{"POST", "/v1/vassals/app/reload", 202, `"action": "reload"`},
		{"POST", "/v1/vassals/nope/reload", 404, `no vassal named`},
		{"POST", "/v1/vassals/app/stop", 202, `"action": "stop"`},
		{"POST", "/v1/vassals/nope/stop", 404, `no such vassal`},
		{"POST", "/v1/vassals/app/start", 409, `not in a state for this action`},
		{"POST", "/v1/vassals/app/explode", 404, `no action \"explode\"`},
		{"POST", "/v1/reload", 202, `"reloaded": 1`},
		{"POST", "/v1/pause", 200, `"pid": 1`},
		{"POST", "/v1/resume", 503, `stopping`},
		{"GET", "/metrics", 200, "emperor_vassals 1"},
		{"GET", "/v2/nothing", 404, `no such endpoint`},
	} {
		code, _, body := call(t, h, c.method, c.path, "")
		if code != c.code || !strings.Contains(body, c.body) {
			t.Errorf("%s %s: %d %q, want %d with %q", c.method, c.path, code, body, c.code, c.body)
		}
		if c.path != "/metrics" {
			var v any
			if err := json.Unmarshal([]byte(body), &v); err != nil {
				t.Errorf("%s %s: not JSON: %q", c.method, c.path, body)
			}
		}
	}
	if got := strings.Join(f.did, ","); got != "reload app,stop app,reload ,pause" {
		t.Errorf("actions %q", got)
	}
	code, hdr, body := call(t, h, "DELETE", "/v1/vassals/app", "")
	if code != 405 || hdr.Get("Allow") != "GET" || !strings.Contains(body, "use GET") {
		t.Errorf("DELETE: %d %v %q", code, hdr, body)
	}
	if code, _, _ := call(t, h, "GET", "/v1/vassals/app/stop", ""); code != 405 {
		t.Errorf("GET of an action: %d, want 405", code)
	}
}

func TestToken(t *testing.T) {
	h := Handler(&fleet{}, "0123456789abcdef")
	for _, auth := range []string{"", "Bearer wrong", "Bearer 0123456789abcdef0", "Basic 0123456789abcdef"} {
		code, hdr, body := call(t, h, "GET", "/v1/vassals", auth)
		if code != 401 || hdr.Get("WWW-Authenticate") == "" || !strings.Contains(body, "bearer token") {
			t.Errorf("auth %q: %d %q", auth, code, body)
		}
	}
	if code, _, _ := call(t, h, "GET", "/v1/vassals", "Bearer 0123456789abcdef"); code != 200 {
		t.Errorf("right token: %d", code)
	}
}

func TestTCPNeedsToken(t *testing.T) {
	_, err := Start(&fleet{}, Config{TCP: "127.0.0.1:0"}, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "token") {
		t.Fatalf("TCP without a token: %v", err)
	}
}

func TestReadToken(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "token")
	os.WriteFile(p, []byte("0123456789abcdef\nignored\n"), 0o600)
	if tok, err := ReadToken(p); err != nil || tok != "0123456789abcdef" {
		t.Fatalf("%q %v", tok, err)
	}
	os.Chmod(p, 0o644)
	if _, err := ReadToken(p); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable token file: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "short"), []byte("abc\n"), 0o600)
	if _, err := ReadToken(filepath.Join(dir, "short")); err == nil {
		t.Fatal("a short token must be refused")
	}
}
