package uwsgi

import (
	"errors"
	"strings"
	"testing"
)

func TestParseRoute(t *testing.T) {
	for _, c := range []struct {
		key, value string
		want       Route
		ok         bool
		err        error
	}{
		{"route", "^/old redirect:/new", Route{Action: "redirect"}, true, nil},
		{"route-host", "^example\\.com$ rewrite:/x", Route{Action: "rewrite"}, true, nil},
		{"route-run", "addheader:X-A: b c", Route{Action: "addheader"}, true, nil},
		{"route-if", "equal:${HTTP_HOST};a break:403", Route{If: true, Condition: "equal", Action: "break"}, true, nil},
		{"final-route-if-not", "empty:${X} log:x", Route{If: true, Condition: "empty", Action: "log"}, true, nil},
		{"error-route-status", "404 log:nf", Route{Action: "log"}, true, nil},
		{"response-route", "^/ gzip:", Route{Action: "gzip"}, true, nil},
		// The condition ends at the first space: the rest is the action.
		{"route-if", "equal:a b log:x", Route{If: true, Condition: "equal", Action: "b log"}, true, nil},
		{"route-label", "foo", Route{}, false, nil},
		{"route-status", "404 log:x", Route{}, false, nil}, // no such option: a status is a response's
		{"master", "true", Route{}, false, nil},
		{"route", "^/old", Route{}, true, ErrRouteSyntax},
		{"route", "^/old redirect", Route{}, true, ErrRouteSyntax},
		{"route-run", "break", Route{}, true, ErrRouteSyntax},
		{"route-if", "equal log:x", Route{}, true, ErrRouteConditionSyntax},
	} {
		r, ok, err := ParseRoute(c.key, c.value)
		if r != c.want || ok != c.ok || !errors.Is(err, c.err) {
			t.Errorf("ParseRoute(%s, %q) = %+v %v %v, want %+v %v %v", c.key, c.value, r, ok, err, c.want, c.ok, c.err)
		}
	}
	_, _, err := ParseRoute("final-route-status", "404")
	if err == nil || err.Error() != "invalid route syntax: uWSGI reads final-route-status = STATUS ACTION:ARGS" {
		t.Errorf("%v", err)
	}
}

// The catalog names the plugin of every routing action and route-if
// condition of uWSGI 2.0.21 as Debian ships it (core/routing.c and the
// uwsgi_register_router calls of Debian's plugins).
func TestRoutingCatalog(t *testing.T) {
	for name, want := range map[string]string{
		"log": "", "break": "", "addheader": "", "goto": "", "harakiri": "", "+": "",
		"redirect": "router_redirect", "redirect-301": "router_redirect", "rewrite": "router_rewrite",
		"basicauth": "router_basicauth", "cache": "router_cache", "cachestore": "router_cache",
		"static": "router_static", "file": "router_static", "uwsgi": "router_uwsgi", "http": "router_http",
		"expires": "router_expires", "gzip": "transformation_gzip", "cgi": "cgi", "rpc": "rpc",
		"access": "router_access", "ldapauth": "ldap", "xslt": "xslt", "gridfs": "gridfs",
	} {
		if p, ok := ActionPlugin(name); !ok || p != want {
			t.Errorf("action %s: plugin %q %v, want %q", name, p, ok, want)
		}
	}
	for _, name := range []string{"redirct", "fcgi", "spnego"} { // a typo; not in 2.0.21; not Debian's
		if p, ok := ActionPlugin(name); ok {
			t.Errorf("action %s is in the catalog (%q)", name, p)
		}
	}
	for name, want := range map[string]string{"equal": "", "==": "", "regexp": "", "empty": "", "lord": "", "incache": "router_cache"} {
		if p, ok := ConditionPlugin(name); !ok || p != want {
			t.Errorf("condition %s: plugin %q %v, want %q", name, p, ok, want)
		}
	}
	for _, a := range Actions() {
		p, _ := ActionPlugin(a)
		if pkg, ok := PackageOf(p); !ok || !strings.HasPrefix(pkg, "uwsgi-") {
			t.Errorf("action %s: plugin %q, package %q", a, p, pkg)
		}
	}
	if n := len(Actions()); n != 121 {
		t.Errorf("%d actions, want 121", n)
	}
}

// TestRouteActions asks the uwsgi of make deps.
func TestRouteActions(t *testing.T) {
	a, err := RouteActions(nil, []string{"router_redirect"})
	if err != nil {
		t.Fatal(err)
	}
	if !a["redirect"] || !a["redirect-301"] || !a["log"] || !a["break"] || a["rewrite"] || a["cache"] {
		t.Fatalf("actions with router_redirect loaded: %v", a)
	}
	if again, err := RouteActions(nil, []string{"router_redirect"}); err != nil || len(again) != len(a) {
		t.Fatalf("again: %v %v", again, err)
	}
	// Core only: every core action of the catalog, no plugin's.
	core, err := RouteActions(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range Actions() {
		if p, _ := ActionPlugin(name); (p == "") != core[name] {
			t.Errorf("action %s: plugin %q, the installed core has it: %v", name, p, core[name])
		}
	}
}
