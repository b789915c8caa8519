package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"
)

// emperor-stats answers each connection with one valid JSON document in
// uWSGI's shape, on TCP and on a unix socket.
func TestEmperorStats(t *testing.T) {
	port := freePort(t)
	sock := filepath.Join(t.TempDir(), "stats.sock")
	for _, c := range []struct{ network, addr, line string }{
		{"tcp", fmt.Sprintf("127.0.0.1:%d", port), fmt.Sprintf("emperor-stats = 127.0.0.1:%d", port)},
		{"unix", sock, "emperor-stats-server = " + sock},
	} {
		t.Run(c.network, func(t *testing.T) {
			e := startEmperor(t, c.line)
			e.install("st", "[uwsgi]\nattach-daemon = exec sleep 1000\n")
			v := e.waitState("st", "running", time.Minute)
			conn, err := net.DialTimeout(c.network, c.addr, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(time.Minute))
			b, err := io.ReadAll(conn)
			if err != nil {
				t.Fatal(err)
			}
			var doc struct {
				PID     int      `json:"pid"`
				Emperor []string `json:"emperor"`
				Vassals []struct {
					ID        string            `json:"id"`
					PID       int               `json:"pid"`
					Ready     int               `json:"ready"`
					Accepting int               `json:"accepting"`
					LastMod   int64             `json:"last_mod"`
					Born      int64             `json:"born"`
					Attrs     map[string]string `json:"attrs"`
					Respawns  int               `json:"respawns"`
					State     string            `json:"state"`
				} `json:"vassals"`
			}
			if err := json.Unmarshal(b, &doc); err != nil {
				t.Fatalf("not valid JSON (%v):\n%s", err, b)
			}
			if doc.PID != e.cmd.Process.Pid || len(doc.Emperor) != 1 || doc.Emperor[0] != e.dir || len(doc.Vassals) != 1 {
				t.Fatalf("document:\n%s", b)
			}
			s := doc.Vassals[0]
			if s.ID != "st.ini" || s.PID != v.PID || s.Ready != 1 || s.Accepting != 1 || s.LastMod == 0 || s.Born == 0 ||
				s.Attrs == nil || s.Respawns != 0 || s.State != "running" {
				t.Fatalf("vassal: %+v\n%s", s, b)
			}
		})
	}
}
