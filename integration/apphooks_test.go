package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAppHookPhases runs a PSGI vassal whose hooks span both sides: PID 1
// runs as-user; uWSGI's app server runs pre-app, post-app (exec),
// master-start and accepting1-once at its own moments, as the tenant, and
// honours a private ("!") hook. A vassal without an app that sets
// hook-pre-app fails its check with the reason.
func TestAppHookPhases(t *testing.T) {
	requireRoot(t)
	requireBinary(t, "uwsgi")
	if _, err := os.Stat("/usr/lib/uwsgi/plugins/psgi_plugin.so"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("uWSGI's psgi plugin is missing (make deps installs it), and CI=true forbids skipping")
		}
		t.Skipf("uWSGI's psgi plugin is missing (make deps installs it)")
	}
	user, uid, _ := testUser(t, "emphka")
	dir := publicDir(t)
	marks := filepath.Join(dir, "marks")
	if err := os.Mkdir(marks, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chown(marks, uid, -1)
	app := filepath.Join(dir, "app.pl")
	os.WriteFile(app, []byte("my $app = sub { return [200, ['Content-Type' => 'text/plain'], [\"hooked\\n\"]]; };\n"), 0o644)
	order := filepath.Join(marks, "order")
	const secret = "s3cr3t-app-hook-token"
	port := freePort(t)
	e := startEmperor(t)
	e.install("apphk", fmt.Sprintf(`[uwsgi]
uid = %[1]s
gid = %[1]s
master = true
processes = 1
http-socket = 127.0.0.1:%[2]d
psgi = %[3]s
logto = %[4]s/vassal.log
hook-as-user = appendn:%[5]s as-user
hook-pre-app = appendn:%[5]s pre-app
hook-pre-app = !write:%[4]s/secret %[6]s
exec-post-app = echo post-app >> %[5]s
hook-master-start = appendn:%[5]s master-start
hook-accepting1-once = appendn:%[5]s accepting1-once
`, user, port, app, marks, order, secret))
	if body := waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/", port), time.Minute); body != "hooked\n" {
		t.Fatalf("app answered %q", body)
	}
	var got string
	waitFor(t, time.Minute, "every app server phase to run", func() bool {
		b, _ := os.ReadFile(order)
		got = string(b)
		return strings.Contains(got, "master-start") && strings.Contains(got, "accepting1-once")
	})
	// master-start (the master) and accepting1-once (the first worker)
	// race each other; what comes before them does not.
	if !strings.HasPrefix(got, "as-user\npre-app\npost-app\n") || len(strings.Split(strings.TrimSpace(got), "\n")) != 5 {
		t.Fatalf("phases ran as %q", got)
	}
	st, err := os.Stat(order)
	if err != nil {
		t.Fatal(err)
	}
	if sys := st.Sys().(*syscall.Stat_t); int(sys.Uid) != uid {
		t.Fatalf("the hooks wrote as uid %d, want the tenant's %d", sys.Uid, uid)
	}
	if b, _ := os.ReadFile(filepath.Join(marks, "secret")); string(b) != secret {
		t.Fatalf("the private pre-app hook did not run: %q", b)
	}
	waitFor(t, time.Minute, "uWSGI's private hook line in the vassal log", func() bool {
		b, _ := os.ReadFile(filepath.Join(marks, "vassal.log"))
		return strings.Contains(string(b), "PRIVATE HOOK")
	})
	b, _ := os.ReadFile(filepath.Join(marks, "vassal.log"))
	if strings.Contains(string(b), secret) || strings.Contains(e.log.String(), secret) {
		t.Fatal("a private hook's argument reached a log")
	}

	// Without an app, hook-pre-app has no moment to run: a config error.
	e.install("noapp", "[uwsgi]\nattach-daemon = exec sleep 1000\nhook-pre-app = exec:true\n")
	v := e.waitState("noapp", "failed-config", time.Minute)
	if want := "hook-pre-app runs in the app server before the app loads; this vassal runs no app server"; !strings.Contains(v.ConfigError, want) {
		t.Fatalf("noapp: %q, want %q", v.ConfigError, want)
	}
}
