package uwsgi

import (
	"sort"
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
