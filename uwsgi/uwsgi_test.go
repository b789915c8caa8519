package uwsgi

import (
	"sort"
	"strings"
	"testing"
)

func TestCatalog(t *testing.T) {
	for name, plugin := range map[string]string{
		"socket": "", "master": "", "processes": "", "chmod-socket": "", "static-map": "", "plugin": "",
		"psgi": "psgi", "module": "python3", "wsgi-file": "python3", "php-docroot": "php", "http": "http",
	} {
		o, ok := Lookup(name)
		if !ok || o.Plugin != plugin {
			t.Errorf("Lookup(%s) = %+v %v, want plugin %q", name, o, ok, plugin)
		}
	}
	if _, ok := Lookup("attach-deamon"); ok {
		t.Error("a typo is in the catalog")
	}
	n := Names()
	if len(n) < 1000 || !sort.StringsAreSorted(n) {
		t.Fatalf("%d names, sorted %v", len(n), sort.StringsAreSorted(n))
	}
}

func TestLoaders(t *testing.T) {
	for name, want := range map[string]Loader{
		"psgi":        {"psgi", "psgi", "uwsgi-plugin-psgi"},
		"module":      {"module", "python3", "uwsgi-plugin-python3"},
		"mount":       {"mount", "python3", "uwsgi-plugin-python3"},
		"php-docroot": {"php-docroot", "php", "uwsgi-plugin-php"},
		"php-app":     {"php-app", "php", "uwsgi-plugin-php"},
		"rack":        {"rack", "rack", "uwsgi-plugin-rack-ruby3.1"},
	} {
		if got, ok := LoaderOf(name); !ok || got != want {
			t.Errorf("LoaderOf(%s) = %+v %v, want %+v", name, got, ok, want)
		}
	}
	for _, name := range []string{"pythonpath", "master", "http-socket", "plugin"} {
		if _, ok := LoaderOf(name); ok {
			t.Errorf("%s is not a loader", name)
		}
	}
	for name, want := range map[string]bool{"socket": true, "http": true, "fastcgi-socket": true, "http-socket": false, "chmod-socket": false, "psgi": true} {
		if AsksForApp(name) != want {
			t.Errorf("AsksForApp(%s) != %v", name, want)
		}
	}
	if !IsSocket("http-socket") || !IsSocket("socket") || IsSocket("chmod-socket") {
		t.Error("IsSocket")
	}
}

func TestRender(t *testing.T) {
	got := string(Render([]Line{{Key: "plugin", Value: "psgi"}, {Key: "http-socket", Value: ":9090", Line: 3}, {Key: "env", Value: "A=50%d\nB"}}))
	want := "[uwsgi]\nplugin = psgi\nhttp-socket = :9090\nenv = A=50%%d\n"
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestCatalogFlagsAndAliases(t *testing.T) {
	for name, want := range map[string]Option{
		"master":     {Name: "master", Arg: ArgFlag},
		"vacuum":     {Name: "vacuum", Arg: ArgFlag},
		"processes":  {Name: "processes"},
		"workers":    {Name: "workers", Alias: "processes"},
		"logdate":    {Name: "logdate", Arg: ArgOptional},
		"wsgi":       {Name: "wsgi", Plugin: "python3", Alias: "module"},
		"httprouter": {Name: "httprouter", Plugin: "http", Alias: "http"},
		"rack":       {Name: "rack", Plugin: "rack"},
		"lua":        {Name: "lua", Plugin: "lua"},
		// route and final-route share a handler and a target, not a
		// meaning: not aliases.
		"final-route": {Name: "final-route"},
		// Debian's own plugin, not in uWSGI's source.
		"apparmor-profile": {Name: "apparmor-profile", Plugin: "apparmor"},
	} {
		if got, ok := Lookup(name); !ok || got != want {
			t.Errorf("Lookup(%s) = %+v %v, want %+v", name, got, ok, want)
		}
	}
	for _, p := range Plugins() {
		if pkg, ok := PackageOf(p); !ok || !strings.HasPrefix(pkg, "uwsgi-") {
			t.Errorf("plugin %s: package %q", p, pkg)
		}
	}
	for _, name := range Names() {
		o, _ := Lookup(name)
		if _, ok := PackageOf(o.Plugin); !ok {
			t.Errorf("%s: plugin %q has no package", name, o.Plugin)
		}
		if a, ok := Lookup(o.Alias); o.Alias != "" && (!ok || a.Plugin != o.Plugin || a.Alias != "") {
			t.Errorf("%s: alias of %q", name, o.Alias)
		}
	}
}

// Every loader is an option of the catalog, of its plugin (mount and
// worker-mount are the core's, and load with the plugin of their app).
func TestLoadersAreInTheCatalog(t *testing.T) {
	for name, plugin := range loaders {
		o, ok := Lookup(name)
		switch {
		case !ok:
			t.Errorf("loader %s is not in the catalog", name)
		case name == "mount" || name == "worker-mount":
			if o.Plugin != "" {
				t.Errorf("%s: plugin %q", name, o.Plugin)
			}
		case o.Plugin != plugin:
			t.Errorf("loader %s: plugin %q in the catalog, %q in loaders", name, o.Plugin, plugin)
		}
	}
	for v, want := range map[string]string{"/=app.py": "python3", "/app=myapp.pl": "psgi", "/r=config.ru": "rack", "/=app:application": "python3", "/l=app.lua": "lua", "/p=index.php": "php"} {
		if got := PluginsOf("mount", v); len(got) != 1 || got[0] != want {
			t.Errorf("mount = %s: plugin %s, want %s", v, got, want)
		}
	}
	for _, c := range []struct{ key, value, want string }{
		{"http", ":80", "http"}, {"master", "true", ""}, {"php-app", "x", "php"},
		{"route", "^/old redirect:/new", "router_redirect"}, {"route", "^/ log:x", ""},
		{"route-if", "incache:key=${REQUEST_URI} cache:key=${REQUEST_URI}", "router_cache"},
		{"route-if", "incache:k redirect:/", "router_cache router_redirect"},
		{"final-route-status", "404 basicauth:r,u:p", "router_basicauth"},
		{"route-label", "redirect:x", ""}, {"route", "^/old", ""},
	} {
		if got := strings.Join(PluginsOf(c.key, c.value), " "); got != c.want {
			t.Errorf("PluginsOf(%s, %s) = %q, want %q", c.key, c.value, got, c.want)
		}
	}
}

// TestInstalled asks the uwsgi of make deps (uwsgi-core with the python3,
// psgi and php plugins).
func TestInstalled(t *testing.T) {
	in, err := Installed(nil, []string{"psgi", "rack"})
	if err != nil {
		t.Fatal(err)
	}
	if !in.Options["psgi"] || !in.Options["master"] || in.Options["module"] {
		t.Fatalf("options: psgi %v master %v module %v", in.Options["psgi"], in.Options["master"], in.Options["module"])
	}
	if _, ok := in.Missing["rack"]; !ok || len(in.Missing) != 1 {
		t.Fatalf("missing %v", in.Missing)
	}
	again, err := Installed(nil, []string{"psgi", "rack"})
	if err != nil || again != in {
		t.Fatalf("not cached: %v", err)
	}
	if got := SplitPlugins("python3, http,,/usr/lib/uwsgi/plugins/psgi_plugin.so"); len(got) != 3 || PluginName(got[2]) != "psgi" {
		t.Fatalf("%q", got)
	}
}
