package uwsgi

import (
	"path"
	"sort"
	"strings"
)

// Loader is a language loader: an option that gives uWSGI an app to run,
// the plugin that provides it and the Debian package that ships that
// plugin.
type Loader struct {
	Option  string
	Plugin  string
	Package string
}

// loaders maps each loader option of Debian's plugins to its plugin. A
// vassal file with one of these asks for an app server; when it names no
// plugin, the plugin is loaded for it. Every php-* option counts too (see
// LoaderOf): the php plugin serves the scripts of its docroot with no
// other line. Options that only tune a loader (pythonpath, callable,
// mono-index, cgi-allowed-ext...) are not loaders.
var loaders = map[string]string{
	// python3: an app from a module, a file, a Paste/Pecan config.
	"module": "python3", "wsgi": "python3", "wsgi-file": "python3", "file": "python3",
	"eval": "python3", "paste": "python3", "ini-paste": "python3",
	"ini-paste-logged": "python3", "pecan": "python3", "web3": "python3", "pump": "python3",
	"wsgi-lite": "python3",
	// core's mount and worker-mount load MOUNTPOINT=APP with the plugin
	// that claims APP (MountPlugin); Python's when nothing else does.
	"mount": "python3", "worker-mount": "python3",
	"psgi": "psgi",
	"rack": "rack", "rails": "rack",
	"lua":      "lua",
	"cgi":      "cgi",
	"mono-app": "mono",
	"jwsgi":    "jwsgi",
	"ring-app": "ring",
	"go-load":  "gccgo", "gccgo-load": "gccgo",
	"xslt-docroot": "xslt",
	"webdav-mount": "webdav",
	"symcall":      "symcall",
}

// LoaderOf says whether option name is a language loader, and which.
func LoaderOf(name string) (Loader, bool) {
	p, ok := loaders[name]
	if !ok && strings.HasPrefix(name, "php-") {
		if o, known := Lookup(name); known && o.Plugin == "php" {
			p, ok = "php", true
		}
	}
	if !ok {
		return Loader{}, false
	}
	pkg, _ := PackageOf(p)
	return Loader{Option: name, Plugin: p, Package: pkg}, true
}

// MountPlugin is the plugin that loads the app of a mount value
// (MOUNTPOINT=APP): the one whose file type APP has, as each of uWSGI's
// request plugins claims its own in its mount_app hook; Python's for a
// module or anything else.
func MountPlugin(value string) string {
	_, app, ok := strings.Cut(value, "=")
	if !ok {
		app = value
	}
	switch path.Ext(strings.TrimSpace(app)) {
	case ".pl", ".psgi":
		return "psgi"
	case ".ru":
		return "rack"
	case ".lua", ".ws":
		return "lua"
	case ".php":
		return "php"
	}
	return "python3"
}

// PluginsOf are the plugins a line of option key with value needs: a
// loader's (mount's by its value), else the catalog's for the option
// (none for the core or an option the catalog does not know), and for a
// route line the plugins of its route-if condition and its action
// (router_redirect for route = ^/old redirect:/new).
func PluginsOf(key, value string) []string {
	if key == "mount" || key == "worker-mount" {
		return []string{MountPlugin(value)}
	}
	if ld, ok := LoaderOf(key); ok {
		return []string{ld.Plugin}
	}
	if o, ok := Lookup(key); ok && o.Plugin != "" {
		return []string{o.Plugin}
	}
	return routePlugins(key, value)
}

// sockets are the options that make uWSGI listen.
var sockets = map[string]bool{
	"socket": true, "uwsgi-socket": true, "suwsgi-socket": true, "ssl-socket": true,
	"puwsgi-socket": true, "http-socket": true, "http11-socket": true, "https-socket": true,
	"fastcgi-socket": true, "fastcgi-nph-socket": true, "scgi-socket": true,
	"scgi-nph-socket": true, "raw-socket": true, "shared-socket": true,
	"undeferred-shared-socket": true, "http": true, "httprouter": true, "https": true,
	"https2": true,
}

// IsSocket says whether option name makes uWSGI listen.
func IsSocket(name string) bool { return sockets[name] }

// appServerOnly are the options that only uWSGI's app server can serve: a
// protocol our file server does not speak (uwsgi, FastCGI, SCGI, raw,
// TLS) or uWSGI's HTTP router. http-socket is not among them: the file
// server speaks HTTP.
var appServerOnly = map[string]bool{
	"socket": true, "uwsgi-socket": true, "suwsgi-socket": true, "ssl-socket": true,
	"puwsgi-socket": true, "https-socket": true, "fastcgi-socket": true,
	"fastcgi-nph-socket": true, "scgi-socket": true, "scgi-nph-socket": true,
	"raw-socket": true, "http": true, "httprouter": true, "https": true, "https2": true,
}

// AsksForApp says whether a line of option name asks for uWSGI's app
// server: a language loader, or a socket only the app server can serve.
func AsksForApp(name string) bool {
	if appServerOnly[name] {
		return true
	}
	_, ok := LoaderOf(name)
	return ok
}

// ServesOnlyApps says whether option name is a socket that only uWSGI's
// app server serves (the uwsgi protocol, FastCGI, SCGI, raw, TLS, or its
// HTTP router), as opposed to http-socket, which our file server serves
// too.
func ServesOnlyApps(name string) bool { return appServerOnly[name] }

// Loaders returns every loader option of the table, sorted by plugin and
// option (the php plugin's: every php-* option, which this does not list).
func Loaders() []Loader {
	out := make([]Loader, 0, len(loaders))
	for name := range loaders {
		ld, _ := LoaderOf(name)
		out = append(out, ld)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Plugin != out[j].Plugin {
			return out[i].Plugin < out[j].Plugin
		}
		return out[i].Option < out[j].Option
	})
	return out
}
