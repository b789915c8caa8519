package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// With --log-format json the whole stream is JSON: the vassals' PID 1s log
// in the emperor's format (it reaches them in the start message), their
// daemons' and hooks' output included, each line with the vassal's name.
// The old PID 1 always logged text, so the stream was mixed.
func TestJSONLogIsOneFormat(t *testing.T) {
	e := startEmperorCmd(t, func(c *exec.Cmd) { c.Args = append(c.Args, "--log-format", "json") })
	path := e.install("js", "[uwsgi]\nexec-as-user = echo hook-says-hi\nattach-daemon = echo daemon-says-hi; exec sleep 100000\n")
	e.waitState("js", "running", hangTimeout)
	waitFor(t, hangTimeout, "the daemon's line", func() bool { return strings.Contains(e.log.String(), "daemon-says-hi") })
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	waitFor(t, hangTimeout, "the vassal to go", func() bool { _, ok := e.vassal("js"); return !ok })
	if code := e.stop(); code != 0 {
		t.Fatalf("emperor exit %d", code)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(e.log.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not a JSON line: %q", line)
		}
		if msg, _ := m["msg"].(string); m["vassal"] == "js" {
			seen[msg] = true
		}
	}
	// Lines only PID 1 writes: its readiness (with its namespaces), the
	// hook's and the daemon's output, its stop.
	for _, msg := range []string{"vassal ready", "hook-says-hi", "daemon-says-hi", "stopping"} {
		if !seen[msg] {
			t.Errorf("no JSON line %q with vassal=js", msg)
		}
	}
}
