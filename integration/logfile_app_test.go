package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// An app vassal's log file gets uWSGI's output (its own lines, its request
// log, what the app writes to stderr), which stays out of the emperor's
// log; touch-reload reloads it through the emperor, and
// touch-chain-reload is handed to uWSGI, whose master chain-reloads.
func TestAppLogFileAndTouches(t *testing.T) {
	requireBinary(t, "uwsgi")
	if _, err := os.Stat("/usr/lib/uwsgi/plugins/psgi_plugin.so"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("uwsgi-plugin-psgi is missing (make deps installs it), and CI=true forbids skipping: %v", err)
		}
		t.Skipf("uwsgi-plugin-psgi is missing (make deps installs it): %v", err)
	}
	e := startEmperor(t)
	d := publicDir(t)
	if err := os.Chmod(d, 0o777); err != nil {
		t.Fatal(err)
	}
	app := filepath.Join(d, "app.pl")
	if err := os.WriteFile(app, []byte(`my $app = sub { print STDERR "app-saw-a-request\n"; return [200, ['Content-Type' => 'text/plain'], ["hello\n"]]; };`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, reload, chain := filepath.Join(d, "app.log"), filepath.Join(d, "reload"), filepath.Join(d, "chain")
	port := freePort(t)
	e.install("applog", fmt.Sprintf(`[uwsgi]
uid = nobody
gid = nogroup
logto2 = %s
http-socket = 127.0.0.1:%d
psgi = %s
master = true
touch-reload = %s
touch-chain-reload = %s
`, logf, port, app, reload, chain))
	e.waitState("applog", "running", time.Minute)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	if body := waitHTTP(t, url, time.Minute); body != "hello\n" {
		t.Fatalf("app answered %q", body)
	}
	waitFor(t, time.Minute, "the app's stderr and uWSGI's request log in the log file", func() bool {
		return fileHas(logf, "app-saw-a-request\n") && fileHas(logf, "GET / =>")
	})
	if el := e.log.String(); strings.Contains(el, "app-saw-a-request") || strings.Contains(el, "GET / =>") {
		t.Errorf("uWSGI's output reached the emperor's log although the vassal has a log file")
	}

	if err := os.WriteFile(reload, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "touch-reload to reload the app vassal", func() bool {
		return strings.Contains(e.log.String(), "touch-reload "+reload) && strings.Count(e.log.String(), `msg="reload applied"`) == 1
	})
	e.waitState("applog", "running", time.Minute)
	if body := waitHTTP(t, url, time.Minute); body != "hello\n" {
		t.Fatalf("after the reload the app answered %q", body)
	}

	// uWSGI reads the mtime in whole seconds against the one it saw at
	// start: a time in the future is newer for certain.
	if err := os.WriteFile(chain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(chain, later, later); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "uWSGI's chain reload", func() bool { return fileHas(logf, "has been touched... chain reload") })
	if strings.Contains(e.log.String(), "touch-chain-reload "+chain) {
		t.Errorf("PID 1 acted on touch-chain-reload although uWSGI owns it in an app vassal")
	}
}
