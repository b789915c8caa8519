// Command uwsgi-catalog writes uwsgi/catalog.txt, the catalog of the option
// names of uWSGI 2.0.21 as Debian ships it: the core and every plugin of
// Debian's uwsgi packages, installed here or not. Run it after a change of
// Debian's uwsgi (it needs the installed uwsgi-core and the uWSGI source):
//
//	go run ./scripts/uwsgi-catalog -src /work/.mirror/unbit+uwsgi/repo > uwsgi/catalog.txt
//
// Where the names come from:
//   - the core's: `uwsgi --help` of the installed binary (Debian builds some
//     plugins into it);
//   - an installed plugin's: what `uwsgi --plugin NAME --help` adds. Its
//     name is its file name under the plugin directory without _plugin.so;
//     of several files that are one plugin (python3_plugin.so ->
//     python311_plugin.so) the shortest name is kept, the one Debian's
//     alternatives give. Its package comes from dpkg -S;
//   - a plugin of a Debian package that is not installed: the option
//     tables (struct uwsgi_option) of its directory in the uWSGI source at
//     the tag, with the plugin and package names of debianPlugins.
//
// The actions of uWSGI's internal routing (the ACTION of route = REGEXP
// ACTION:ARGS) and the conditions of route-if come the same way: the
// core's and the installed plugins' actions from `uwsgi [--plugin NAME]
// --router-list` (what a plugin adds is its own), the other Debian plugins'
// from the uwsgi_register_router calls of their source. uwsgi lists no
// conditions: those are the uwsgi_register_route_condition calls of the
// source, each one of the core or of an installed plugin kept only when the
// installed uwsgi takes it in a route-if line (a condition of the source
// may be compiled out, as lord is without SSL).
//
// Whether an option takes a value (no_argument is a flag) and which options
// are aliases come from the source's option tables: two entries of one
// table are one option when they have the same handler, target, argument
// kind and help text (a handler may read the option's name, as
// uwsgi_opt_add_route does for route and final-route, so the same handler
// and target are not enough); the first one is the name, the others its
// aliases.
package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// debianPlugin is a plugin of a Debian package that may not be installed:
// its name (the file name Debian's alternatives give it), its directory in
// the uWSGI source, and the package.
type debianPlugin struct{ name, dir, pkg string }

// debianPlugins are the plugin packages of Debian 12's uwsgi 2.0.21 source
// package besides uwsgi-core (read from the packages' file lists and
// update-alternatives calls).
var debianPlugins = []debianPlugin{
	{"alarm_curl", "alarm_curl", "uwsgi-plugin-alarm-curl"},
	{"alarm_xmpp", "alarm_xmpp", "uwsgi-plugin-alarm-xmpp"},
	{"asyncio_python3", "asyncio", "uwsgi-plugin-asyncio-python3"},
	{"curl_cron", "curl_cron", "uwsgi-plugin-curl-cron"},
	{"emperor_pg", "emperor_pg", "uwsgi-plugin-emperor-pg"},
	{"fiber", "fiber", "uwsgi-plugin-fiber"},
	{"gccgo", "gccgo", "uwsgi-plugin-gccgo"},
	{"geoip", "geoip", "uwsgi-plugin-geoip"},
	{"gevent_python3", "gevent", "uwsgi-plugin-gevent-python3"},
	{"glusterfs", "glusterfs", "uwsgi-plugin-glusterfs"},
	{"graylog2", "graylog2", "uwsgi-plugin-graylog2"},
	{"greenlet_python3", "greenlet", "uwsgi-plugin-greenlet-python3"},
	{"jvm", "jvm", "uwsgi-plugin-jvm-openjdk-17"},
	{"jwsgi", "jwsgi", "uwsgi-plugin-jwsgi-openjdk-17"},
	{"ldap", "ldap", "uwsgi-plugin-ldap"},
	{"lua", "lua", "uwsgi-plugin-lua5.1"},
	{"emperor_mongodb", "emperor_mongodb", "uwsgi-plugin-mongo"},
	{"gridfs", "gridfs", "uwsgi-plugin-mongo"},
	{"mongodblog", "mongodblog", "uwsgi-plugin-mongo"},
	{"stats_pusher_mongodb", "stats_pusher_mongodb", "uwsgi-plugin-mongo"},
	{"mono", "mono", "uwsgi-plugin-mono"},
	{"php", "php", "uwsgi-plugin-php"},
	{"psgi", "psgi", "uwsgi-plugin-psgi"},
	{"python3", "python", "uwsgi-plugin-python3"},
	{"rack", "rack", "uwsgi-plugin-rack-ruby3.1"},
	{"rados", "rados", "uwsgi-plugin-rados"},
	{"rbthreads", "rbthreads", "uwsgi-plugin-rbthreads"},
	{"ring", "ring", "uwsgi-plugin-ring-openjdk-17"},
	{"router_access", "router_access", "uwsgi-plugin-router-access"},
	{"servlet", "servlet", "uwsgi-plugin-servlet-openjdk-17"},
	{"sqlite3", "sqlite3", "uwsgi-plugin-sqlite3"},
	{"tornado_python3", "tornado", "uwsgi-plugin-tornado-python3"},
	{"xslt", "xslt", "uwsgi-plugin-xslt"},
}

// debianOnly are the options of Debian's own plugins, which are not in
// uWSGI's source (from `uwsgi --plugin apparmor_plugin.so --help` of the
// package's file; both take a profile name).
var debianOnly = []struct {
	plugin, pkg string
	names       []string
}{
	{"apparmor", "uwsgi-plugin-apparmor", []string{"apparmor-profile", "emperor-apparmor"}},
}

func main() {
	bin := flag.String("uwsgi", "uwsgi", "the installed uwsgi binary")
	dir := flag.String("plugins", "/usr/lib/uwsgi/plugins", "Debian's plugin directory")
	src := flag.String("src", "/work/.mirror/unbit+uwsgi/repo", "a git repository of uWSGI's source")
	tag := flag.String("tag", "2.0.21", "the tag of the installed version")
	flag.Parse()
	if err := run(*bin, *dir, *src, *tag); err != nil {
		fmt.Fprintln(os.Stderr, "uwsgi-catalog:", err)
		os.Exit(1)
	}
}

// srcOpt is one entry of an option table in the source.
type srcOpt struct {
	name, arg, handler, target, help string
}

// entry matches {"name", X_argument, shortcut, "help", handler, target, flags}
// (flags may be missing).
var entry = regexp.MustCompile(`\{\s*"([A-Za-z0-9_.\-]+)"\s*,\s*(no_argument|required_argument|optional_argument)\s*,\s*[^,]+,\s*"((?:[^"\\]|\\.)*)"\s*,\s*([A-Za-z0-9_]+)\s*,\s*([^,{}]*?)\s*[,}]`)

// registered matches a call that registers a routing action or a route-if
// condition by name.
var registered = regexp.MustCompile(`uwsgi_register_route(r|_condition)\(\s*"([^"]+)"`)

// sourceRouting are the routing actions and route-if conditions that the
// source registers, per "core" or plugin directory, in source order.
type sourceRouting struct {
	actions, conditions map[string][]string
}

// sourceTables reads the option tables of the source at tag: a map of
// "core" or a plugin directory to its entries in source order, the
// directories the source has, and the routing names each registers.
func sourceTables(repo, tag string) (map[string][]srcOpt, map[string]bool, sourceRouting, error) {
	routing := sourceRouting{actions: map[string][]string{}, conditions: map[string][]string{}}
	cmd := exec.Command("git", "-C", repo, "archive", "--format=tar", tag, "core", "plugins")
	out, err := cmd.Output()
	if err != nil {
		return nil, nil, routing, fmt.Errorf("git archive %s of %s: %w", tag, repo, err)
	}
	tables := map[string][]srcOpt{}
	dirs := map[string]bool{}
	tr := tar.NewReader(bytes.NewReader(out))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, routing, err
		}
		ext := path.Ext(h.Name)
		if h.Typeflag != tar.TypeReg || (ext != ".c" && ext != ".cc" && ext != ".h" && ext != ".m") {
			continue
		}
		parts := strings.Split(h.Name, "/")
		key := "core"
		if parts[0] == "plugins" && len(parts) > 2 {
			key = parts[1]
		}
		dirs[key] = true
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, nil, routing, err
		}
		// Join continued lines (macros), then read every entry.
		text := strings.ReplaceAll(string(b), "\\\n", " ")
		for _, m := range entry.FindAllStringSubmatch(text, -1) {
			tables[key] = append(tables[key], srcOpt{name: m[1], arg: m[2], help: m[3], handler: m[4], target: m[5]})
		}
		for _, m := range registered.FindAllStringSubmatch(text, -1) {
			if m[1] == "r" {
				routing.actions[key] = append(routing.actions[key], m[2])
			} else {
				routing.conditions[key] = append(routing.conditions[key], m[2])
			}
		}
	}
	return tables, dirs, routing, nil
}

// facts are what the source says of the names of one table: flag or not,
// and the name each alias stands for.
type facts struct {
	arg   map[string]string
	alias map[string]string
}

func tableFacts(t []srcOpt) facts {
	f := facts{arg: map[string]string{}, alias: map[string]string{}}
	first := map[string]string{}
	for _, o := range t {
		if _, dup := f.arg[o.name]; dup {
			continue
		}
		f.arg[o.name] = o.arg
		k := o.handler + "\x00" + o.target + "\x00" + o.arg + "\x00" + o.help
		if o.handler == "0" || o.handler == "NULL" {
			continue
		}
		if c, ok := first[k]; ok {
			f.alias[o.name] = c
		} else {
			first[k] = o.name
		}
	}
	return f
}

var optLine = regexp.MustCompile(`^    (?:-.\|)?--(\S+)`)

// help runs uwsgi --help with the given plugins and returns the option
// names in the order printed.
func help(bin string, args ...string) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, append(args, "--help")...).Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s --help: %w", bin, strings.Join(args, " "), err)
	}
	var names []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if m := optLine.FindStringSubmatch(sc.Text()); m != nil {
			names = append(names, m[1])
		}
	}
	return names, sc.Err()
}

// noClock names a clock no uwsgi has: uwsgi exits at --clock right after
// it printed the lists it was asked for (core/uwsgi.c, core/clock.c).
const noClock = "uwsgi-catalog-no-such-clock"

var routersList = regexp.MustCompile(`(?s)\*\*\* uWSGI loaded routers \*\*\*\n(.*?)--- end of routers list ---`)

// routers runs uwsgi --router-list with the given plugins and returns the
// routing actions in the order printed.
func routers(bin string, args ...string) ([]string, error) {
	out, err := uwsgiUntilClock(bin, append(args, "--router-list")...)
	m := routersList.FindStringSubmatch(out)
	if m == nil {
		return nil, fmt.Errorf("%s %s --router-list printed no routers list: %v", bin, strings.Join(args, " "), err)
	}
	return strings.Fields(m[1]), nil
}

// takesCondition says whether the installed uwsgi, with the given plugins,
// takes the route-if condition name: it parses the route lines before it
// reaches --clock, and exits at an unknown condition.
func takesCondition(bin, name string, args ...string) (bool, error) {
	out, err := uwsgiUntilClock(bin, append(args, "--route-if", name+":x log:x")...)
	switch {
	case strings.Contains(out, fmt.Sprintf("unable to find %q route condition", name)):
		return false, nil
	case strings.Contains(out, fmt.Sprintf("unable to set %q clock", noClock)):
		return true, nil
	}
	return false, fmt.Errorf("%s %s --route-if %s:x: %v: %s", bin, strings.Join(args, " "), name, err, out)
}

// uwsgiUntilClock runs uwsgi with args and a clock it does not have, so
// that it exits once configured, and returns its output (both streams).
func uwsgiUntilClock(bin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(args, "--clock", noClock)...)
	cmd.Dir = "/"
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// installed lists the plugins of dir, one name per plugin file.
func installed(dir string) (map[string]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*_plugin.so"))
	if err != nil {
		return nil, err
	}
	byTarget := map[string]string{}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), "_plugin.so")
		target, err := filepath.EvalSymlinks(f)
		if err != nil {
			return nil, err
		}
		if old, ok := byTarget[target]; !ok || len(name) < len(old) {
			byTarget[target] = name
		}
	}
	out := map[string]string{}
	for target, n := range byTarget {
		out[n] = target
	}
	return out, nil
}

// packageOf asks dpkg which package ships file.
func packageOf(file string) (string, error) {
	out, err := exec.Command("dpkg", "-S", file).Output()
	if err != nil {
		return "", fmt.Errorf("dpkg -S %s: %w", file, err)
	}
	pkg, _, _ := strings.Cut(strings.TrimSpace(string(out)), ":")
	return pkg, nil
}

type option struct {
	name, plugin, arg, alias string
}

// routingName is a routing action or route-if condition and its plugin.
type routingName struct{ name, plugin string }

// routingNames collects routing names, the first plugin of a name winning.
type routingNames struct {
	list []routingName
	seen map[string]string
}

func (r *routingNames) add(name, plugin string) {
	if r.seen == nil {
		r.seen = map[string]string{}
	}
	if p, dup := r.seen[name]; dup {
		if p != plugin {
			fmt.Fprintf(os.Stderr, "uwsgi-catalog: %s is registered by %q and %q; recorded as %q's\n", name, p, plugin, p)
		}
		return
	}
	r.seen[name] = plugin
	r.list = append(r.list, routingName{name, plugin})
}

func run(bin, dir, repo, tag string) error {
	ver, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return fmt.Errorf("%s --version: %w", bin, err)
	}
	if v := strings.TrimSpace(string(ver)); !strings.HasPrefix(v, tag) {
		return fmt.Errorf("the installed uwsgi is %s, the source tag %s", v, tag)
	}
	tables, dirs, srcRouting, err := sourceTables(repo, tag)
	if err != nil {
		return err
	}
	// Facts of a name: from its own table first, else from any table.
	own := map[string]facts{}
	for k, t := range tables {
		own[k] = tableFacts(t)
	}
	anyArg := map[string]string{}
	for _, k := range sortedKeys(tables) {
		for n, a := range own[k].arg {
			if _, ok := anyArg[n]; !ok {
				anyArg[n] = a
			}
		}
	}
	var opts []option
	seen := map[string]bool{}
	add := func(name, plugin, dir string) {
		if seen[name] {
			return
		}
		seen[name] = true
		o := option{name: name, plugin: plugin, arg: own[dir].arg[name], alias: own[dir].alias[name]}
		if o.arg == "" {
			o.arg = anyArg[name]
			if o.arg == "" {
				fmt.Fprintf(os.Stderr, "uwsgi-catalog: %s (%s) is in no option table of the source; recorded as taking a value\n", name, plugin)
			}
		}
		opts = append(opts, o)
	}
	core, err := help(bin)
	if err != nil {
		return err
	}
	for _, n := range core {
		add(n, "", "core")
	}
	var actions, conditions routingNames
	coreActions, err := routers(bin)
	if err != nil {
		return err
	}
	for _, a := range coreActions {
		actions.add(a, "")
	}
	// addConditions keeps the conditions of the source's dir that the
	// installed uwsgi takes with args.
	addConditions := func(plugin, dir string, args ...string) error {
		for _, c := range srcRouting.conditions[dir] {
			ok, err := takesCondition(bin, c, args...)
			if err != nil {
				return err
			}
			if !ok {
				fmt.Fprintf(os.Stderr, "uwsgi-catalog: condition %s of %s is in the source, not in the installed uwsgi: left out\n", c, dir)
				continue
			}
			conditions.add(c, plugin)
		}
		return nil
	}
	if err := addConditions("", "core"); err != nil {
		return err
	}
	inst, err := installed(dir)
	if err != nil {
		return err
	}
	srcDir := map[string]string{}
	pkgs := map[string]string{"": "uwsgi-core"}
	for _, p := range debianPlugins {
		srcDir[p.name] = p.dir
		pkgs[p.name] = p.pkg
	}
	for _, p := range sortedKeys(inst) {
		names, err := help(bin, "--plugin", p)
		if err != nil {
			return err
		}
		d, ok := srcDir[p]
		if !ok {
			d = p
		}
		if pkgs[p], err = packageOf(inst[p]); err != nil {
			return err
		}
		for _, n := range names {
			add(n, p, d)
		}
		acts, err := routers(bin, "--plugin", p)
		if err != nil {
			return err
		}
		for _, a := range acts {
			if plugin, seen := actions.seen[a]; !seen || plugin != "" {
				actions.add(a, p) // what the plugin adds to the core's
			}
		}
		if err := addConditions(p, d, "--plugin", p); err != nil {
			return err
		}
	}
	for _, p := range debianPlugins {
		if _, ok := inst[p.name]; ok {
			continue
		}
		if !dirs[p.dir] {
			return fmt.Errorf("plugin %s: no plugins/%s in the source", p.name, p.dir)
		}
		for _, o := range tables[p.dir] {
			add(o.name, p.name, p.dir)
		}
		for _, a := range srcRouting.actions[p.dir] {
			actions.add(a, p.name)
		}
		for _, c := range srcRouting.conditions[p.dir] {
			conditions.add(c, p.name)
		}
	}
	for _, d := range debianOnly {
		pkgs[d.plugin] = d.pkg
		if _, ok := inst[d.plugin]; ok {
			continue
		}
		for _, n := range d.names {
			if !seen[n] {
				seen[n] = true
				opts = append(opts, option{name: n, plugin: d.plugin, arg: "required_argument"})
			}
		}
	}
	// An alias must name an option of the catalog, of the same plugin.
	plugin := map[string]string{}
	for _, o := range opts {
		plugin[o.name] = o.plugin
	}
	w := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(w, "# The option catalog of uWSGI %s as Debian ships it (uwsgi %s): the core\n", tag, strings.TrimSpace(string(ver)))
	fmt.Fprintf(w, "# and every plugin of Debian's uwsgi packages. Generated by\n")
	fmt.Fprintf(w, "# `go run ./scripts/uwsgi-catalog > uwsgi/catalog.txt`; do not edit.\n")
	fmt.Fprintf(w, "#\n# plugin<TAB>NAME<TAB>DEBIAN PACKAGE (NAME - is the core)\n")
	fmt.Fprintf(w, "# option<TAB>NAME<TAB>PLUGIN<TAB>value|flag|optional<TAB>ALIAS OF (or -)\n")
	fmt.Fprintf(w, "# action<TAB>NAME<TAB>PLUGIN (a routing action: route = REGEXP NAME:ARGS)\n")
	fmt.Fprintf(w, "# condition<TAB>NAME<TAB>PLUGIN (a route-if condition: route-if = NAME:ARGS ACTION)\n")
	for _, p := range sortedKeys(pkgs) {
		name := p
		if name == "" {
			name = "-"
		}
		fmt.Fprintf(w, "plugin\t%s\t%s\n", name, pkgs[p])
	}
	for _, o := range opts {
		arg := map[string]string{"no_argument": "flag", "optional_argument": "optional"}[o.arg]
		if arg == "" {
			arg = "value"
		}
		alias := o.alias
		if p, ok := plugin[alias]; !ok || p != o.plugin {
			alias = ""
		}
		if alias == "" {
			alias = "-"
		}
		p := o.plugin
		if p == "" {
			p = "-"
		}
		fmt.Fprintf(w, "option\t%s\t%s\t%s\t%s\n", o.name, p, arg, alias)
	}
	for _, r := range []struct {
		kind  string
		names routingNames
	}{{"action", actions}, {"condition", conditions}} {
		for _, n := range r.names.list {
			p := n.plugin
			if p == "" {
				p = "-"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\n", r.kind, n.name, p)
		}
	}
	return w.Flush()
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
