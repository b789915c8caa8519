package integration

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestAppRoutes: uWSGI's internal routing in an app vassal.
//   - A file written for a uWSGI with its routers built in (no plugin line
//     for them) runs: the plugins of its route actions are loaded for it,
//     and uWSGI redirects and adds the header. Debian's uwsgi alone exits
//     at such a file (unable to register route).
//   - `emperor check` reports, at file:line, an action and a route-if
//     condition uWSGI does not have (with a hint) and an action whose
//     plugin is not installed (with its package), as uWSGI would exit at
//     them; the emperor puts such a vassal in failed-config with the same
//     list and does not spawn it.
func TestAppRoutes(t *testing.T) {
	requireRoot(t)
	requireAppServer(t, "psgi", "router_redirect")
	bad := "[uwsgi]\nhttp-socket = 127.0.0.1:9\npsgi = /srv/app.pl\nroute = ^/old redirct:/new\nroute-if = equl:${HTTP_HOST};a log:x\nroute = ^/admin access:action=deny\n"
	want := []string{
		`:4: route: uWSGI has no route action "redirct" (did you mean "redirect"?)`,
		`:5: route-if: uWSGI has no route condition "equl" (did you mean "equal"?)`,
		`:6: route: route action "access" needs uWSGI's router_access plugin, which is not installed: apt-get install uwsgi-plugin-router-access`,
	}
	checkFails(t, bad, want)

	user, _, _ := testUser(t, "emprte")
	app := filepath.Join(publicDir(t), "app.pl")
	os.WriteFile(app, []byte("my $app = sub { return [200, ['Content-Type' => 'text/plain'], [\"routed\\n\"]]; };\n"), 0o644)
	port := freePort(t)
	e := startEmperor(t)
	e.install("routes", fmt.Sprintf(`[uwsgi]
uid = %[1]s
gid = %[1]s
http-socket = 127.0.0.1:%[2]d
psgi = %[3]s
route = ^/old redirect:/new
route-run = addheader:X-Routed: yes
`, user, port, app))
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	if body := waitHTTP(t, base+"/", time.Minute); body != "routed\n" {
		t.Fatalf("GET /: %q", body)
	}
	noFollow := &http.Client{Timeout: hangTimeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(base + "/old")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/new" {
		t.Fatalf("GET /old: %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, err = noFollow.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("X-Routed") != "yes" {
		t.Fatalf("GET /: no X-Routed header: %v", resp.Header)
	}

	e.failsConfig(t, "badroutes", bad, want)
}
