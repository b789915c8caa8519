package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emperor-dev/emperor/control"
	"github.com/emperor-dev/emperor/emperor"
)

// apiClient talks HTTP to the emperor's API on its unix socket.
func apiClient(sock string) *http.Client {
	return &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}
}

// apiDo sends method path and returns the status and body.
func apiDo(t *testing.T, c *http.Client, method, url string, auth string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The HTTP API drives a real emperor: the table, stop and start of a
// vassal (held stopped while its file stays and changes), pause and resume
// of the reaction to files, and /metrics; on TCP only with the token.
func TestAPI(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	e := startEmperorCmd(t, func(c *exec.Cmd) {
		c.Args = append(c.Args, "--api-tcp", fmt.Sprintf("127.0.0.1:%d", port), "--api-token-file", tokenFile)
	})
	c := apiClient(filepath.Join(filepath.Dir(e.control), "api.sock"))
	const base = "http://emperor"
	vassal := "[uwsgi]\nattach-daemon = exec sleep 1000\n"
	pathA := e.install("a", vassal)
	e.install("b", vassal)
	a := e.waitState("a", "running", time.Minute)
	e.waitState("b", "running", time.Minute)

	code, body := apiDo(t, c, "GET", base+"/v1/vassals", "")
	var table []control.VassalStatus
	if err := json.Unmarshal([]byte(body), &table); code != 200 || err != nil || len(table) != 2 {
		t.Fatalf("GET /v1/vassals: %d %v %s", code, err, body)
	}

	t.Run("stop holds the vassal while its file stays", func(t *testing.T) {
		if code, body := apiDo(t, c, "POST", base+"/v1/vassals/a/stop", ""); code != 202 {
			t.Fatalf("stop: %d %s", code, body)
		}
		waitFor(t, time.Minute, "a held stopped", func() bool {
			v, ok := e.vassal("a")
			return ok && v.State == emperor.StateHeld && v.PID == 0
		})
		if !processGone(a.PID) {
			t.Fatalf("PID 1 %d of a still there", a.PID)
		}
		if code, _ := apiDo(t, c, "POST", base+"/v1/vassals/a/stop", ""); code != 409 {
			t.Fatalf("second stop: %d, want 409", code)
		}
		// A change of the held file starts nothing. The loop takes file
		// events in order: once c, touched after it, runs, a's event was
		// handled.
		now := time.Now()
		if err := os.Chtimes(pathA, now, now); err != nil {
			t.Fatal(err)
		}
		e.install("c", vassal)
		e.waitState("c", "running", time.Minute)
		if v, _ := e.vassal("a"); v.State != emperor.StateHeld {
			t.Fatalf("a after a touch of its file: %+v", v)
		}
		if code, body := apiDo(t, c, "POST", base+"/v1/vassals/a/start", ""); code != 202 {
			t.Fatalf("start: %d %s", code, body)
		}
		if v := e.waitState("a", "running", time.Minute); v.PID == a.PID {
			t.Fatalf("a runs with its old PID 1 %d", v.PID)
		}
		if code, _ := apiDo(t, c, "POST", base+"/v1/vassals/a/start", ""); code != 409 {
			t.Fatalf("start of a running vassal: %d, want 409", code)
		}
		if code, _ := apiDo(t, c, "POST", base+"/v1/vassals/zz/stop", ""); code != 404 {
			t.Fatalf("stop of no vassal: %d, want 404", code)
		}
	})

	t.Run("pause defers file changes until resume", func(t *testing.T) {
		if code, body := apiDo(t, c, "POST", base+"/v1/pause", ""); code != 200 || !strings.Contains(body, `"paused": true`) {
			t.Fatalf("pause: %d %s", code, body)
		}
		e.install("d", vassal)
		waitFor(t, time.Minute, "the change to be deferred", func() bool {
			_, body := apiDo(t, c, "GET", base+"/v1/emperor", "")
			var info emperor.Info
			return json.Unmarshal([]byte(body), &info) == nil && info.Deferred >= 1
		})
		if _, ok := e.vassal("d"); ok {
			t.Fatal("d started while paused")
		}
		if code, body := apiDo(t, c, "POST", base+"/v1/resume", ""); code != 200 || !strings.Contains(body, `"paused": false`) {
			t.Fatalf("resume: %d %s", code, body)
		}
		e.waitState("d", "running", time.Minute)
	})

	t.Run("metrics", func(t *testing.T) {
		code, body := apiDo(t, c, "GET", base+"/metrics", "")
		for _, want := range []string{`emperor_vassals{state="running"} 4`, `emperor_vassal_state{state="running",vassal="a"} 1`,
			"emperor_spawn_duration_seconds_count 5", "emperor_rescans_total", "emperor_inotify_events_total", "process_resident_memory_bytes"} {
			if code != 200 || !strings.Contains(body, want) {
				t.Errorf("/metrics (%d) lacks %q", code, want)
			}
		}
	})

	t.Run("TCP needs the token", func(t *testing.T) {
		tc := &http.Client{Timeout: time.Minute}
		url := fmt.Sprintf("http://127.0.0.1:%d/v1/vassals", port)
		if code, _ := apiDo(t, tc, "GET", url, ""); code != 401 {
			t.Fatalf("no token: %d, want 401", code)
		}
		if code, _ := apiDo(t, tc, "GET", url, "Bearer wrong"); code != 401 {
			t.Fatalf("wrong token: %d, want 401", code)
		}
		if code, body := apiDo(t, tc, "GET", url, "Bearer s3cret-token-0123456789"); code != 200 || !strings.Contains(body, `"name": "d"`) {
			t.Fatalf("token: %d %s", code, body)
		}
	})
}

// processGone says whether pid has exited and been reaped.
func processGone(pid int) bool {
	_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	return os.IsNotExist(err)
}
