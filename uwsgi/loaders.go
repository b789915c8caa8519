package uwsgi

// Loader is a language loader: an option that makes uWSGI load an app, the
// plugin that provides it and the Debian package that ships that plugin.
type Loader struct {
	Option  string
	Plugin  string
	Package string
}

// loaders maps a loader option to its plugin. A vassal file with one of
// these asks for an app server; when it names no plugin, the plugin is
// loaded for it. php-* options all count: the php plugin serves the
// scripts of its docroot with no other line.
var loaders = map[string]string{
	// python3: an app from a module, a file, a Paste/Pecan config, or
	// mount's MOUNTPOINT=APP (mount loads with modifier1 0, Python).
	"module": "python3", "wsgi": "python3", "wsgi-file": "python3", "file": "python3",
	"mount": "python3", "eval": "python3", "paste": "python3", "ini-paste": "python3",
	"ini-paste-logged": "python3", "pecan": "python3", "web3": "python3", "pump": "python3",
	"wsgi-lite": "python3",
	"psgi":      "psgi",
	"rack":      "rack", "rails": "rack",
	"lua":      "lua",
	"cgi":      "cgi",
	"mono-app": "mono", "mono-index": "mono",
	"jwsgi": "jwsgi", "ring": "ring", "servlet": "servlet",
}

// packages maps a plugin to the Debian package that ships it.
var packages = map[string]string{
	"python3": "uwsgi-plugin-python3",
	"psgi":    "uwsgi-plugin-psgi",
	"php":     "uwsgi-plugin-php",
	"rack":    "uwsgi-plugin-rack-ruby3.1",
	"lua":     "uwsgi-plugin-lua5.1",
	"cgi":     "uwsgi-core",
	"mono":    "uwsgi-plugin-mono",
	"jwsgi":   "uwsgi-plugin-jwsgi-openjdk-17",
	"ring":    "uwsgi-plugin-ring-openjdk-17",
	"servlet": "uwsgi-plugin-servlet-openjdk-17",
}

// LoaderOf says whether option name is a language loader, and which.
func LoaderOf(name string) (Loader, bool) {
	p, ok := loaders[name]
	if !ok {
		if o, known := Lookup(name); known && o.Plugin == "php" {
			p, ok = "php", true
		}
	}
	if !ok {
		return Loader{}, false
	}
	return Loader{Option: name, Plugin: p, Package: PackageOf(p)}, true
}

// PackageOf is the Debian package that ships plugin ("" for the core, or a
// plugin we know no package of).
func PackageOf(plugin string) string {
	if plugin == "" {
		return "uwsgi-core"
	}
	return packages[plugin]
}

// sockets are the options that make uWSGI listen.
var sockets = map[string]bool{
	"socket": true, "uwsgi-socket": true, "suwsgi-socket": true, "ssl-socket": true,
	"puwsgi-socket": true, "http-socket": true, "http11-socket": true, "https-socket": true,
	"fastcgi-socket": true, "fastcgi-nph-socket": true, "scgi-socket": true,
	"scgi-nph-socket": true, "raw-socket": true, "shared-socket": true,
	"undeferred-shared-socket": true, "http": true, "https": true, "https2": true,
	"http-socket-ssl": true,
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
	"raw-socket": true, "http": true, "https": true, "https2": true,
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
