package vassalfile

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/emperor-dev/emperor/spell"
	"github.com/emperor-dev/emperor/uwsgi"
)

// CheckAppServer checks the lines a vassal hands to uWSGI's app server
// against the uwsgi installed here and its plugins (uwsgi.Installed: one
// `uwsgi --plugin ... --help` per set of plugins, cached). Every problem is
// a diagnostic of path at the line it is about:
//   - a plugin that cannot be loaded, with the Debian package that ships it
//     (on the loader's line when the plugin was loaded for it);
//   - an option of a plugin the file does not load, saying which;
//   - an option the installed uwsgi does not know, with a hint;
//   - a route line (route, route-if, final-route, response-route...) that
//     uWSGI cannot read, whose route-if condition it does not have, or
//     whose action no plugin it loads registers (checkRoutes).
//
// No uwsgi at all is an error on the first line that asks for the app
// server; a uwsgi that cannot be asked (it hangs, it fails) is a warning:
// the lines are then not checked. It returns nothing for a vassal without
// an app.
func CheckAppServer(path string, app *App) []Diag {
	if app == nil {
		return nil
	}
	c := appCheck{path: path, app: app, named: map[string]int{}}
	var dirs, plugins []string
	for _, l := range app.Lines {
		switch l.Key {
		case "plugins-dir", "plugin-dir":
			dirs = append(dirs, l.Value)
		case "plugin", "plugins", "need-plugin", "need-plugins":
			for _, p := range uwsgi.SplitPlugins(l.Value) {
				plugins = append(plugins, p)
				if _, dup := c.named[uwsgi.PluginName(p)]; !dup {
					c.named[uwsgi.PluginName(p)] = l.Line
				}
			}
		}
	}
	in, err := uwsgi.Installed(dirs, plugins)
	switch {
	case errors.Is(err, uwsgi.ErrNotInstalled):
		c.errorf(c.firstAsking(), "this vassal runs an app on uWSGI's app server, and %v", err)
		return c.out
	case err != nil:
		c.add(c.firstAsking(), true, fmt.Sprintf("the lines for uWSGI are not checked against the installed uwsgi: %v", err))
		return c.out
	}
	for _, name := range sortedByLine(in.Missing, c.named) {
		c.missingPlugin(name, in.Missing[name])
	}
	for _, l := range app.Lines {
		if l.Line == 0 || in.Options[l.Key] {
			continue
		}
		c.unknown(l, in)
	}
	c.checkRoutes(dirs, plugins, in)
	return c.out
}

// routeLine is a route line of the file and what it names.
type routeLine struct {
	AppLine
	uwsgi.Route
}

// checkRoutes checks the route lines as uWSGI reads them when it starts
// (core/routing.c, uwsgi_opt_add_route): it exits at a line it cannot
// read, at a route-if condition it does not have, and at an action no
// plugin it loaded registers ("unable to register route"). The conditions
// are the catalog's (uwsgi lists none); the actions are those the
// installed uwsgi lists with the file's plugins loaded
// (uwsgi.RouteActions), so that a plugin of the file's own plugins-dir
// counts. The plugin of every action and condition the catalog knows is
// loaded for the file (BuildApp); the arguments of an action are not
// checked.
func (c *appCheck) checkRoutes(dirs, plugins []string, in *uwsgi.Installation) {
	var routes []routeLine
	for _, l := range c.app.Lines {
		r, ok, err := uwsgi.ParseRoute(l.Key, l.Value)
		switch {
		case !ok || l.Line == 0:
		case err != nil:
			c.errorf(l.Line, "%s: %v", l.Key, err)
		default:
			routes = append(routes, routeLine{l, r})
		}
	}
	if len(routes) == 0 {
		return
	}
	actions, err := uwsgi.RouteActions(dirs, plugins)
	if err != nil {
		c.add(routes[0].Line, true, fmt.Sprintf("the route actions are not checked against the installed uwsgi: %v", err))
	}
	for _, r := range routes {
		if _, known := uwsgi.ConditionPlugin(r.Condition); r.If && !known {
			c.errorf(r.Line, "%s: uWSGI has no route condition %s%s", r.Key, QuoteValue(r.Condition), hint(r.Condition, uwsgi.Conditions()))
		}
		if err == nil && !actions[r.Action] {
			c.unknownAction(r, actions, in)
		}
	}
}

// unknownAction reports a route line whose action the installed uwsgi
// does not register with the file's plugins loaded.
func (c *appCheck) unknownAction(r routeLine, actions map[string]bool, in *uwsgi.Installation) {
	plugin, known := uwsgi.ActionPlugin(r.Action)
	switch {
	case !known:
		all := uwsgi.Actions()
		for a := range actions {
			all = append(all, a)
		}
		sort.Strings(all)
		c.errorf(r.Line, "%s: uWSGI has no route action %s%s", r.Key, QuoteValue(r.Action), hint(r.Action, all))
	case plugin == "":
		c.errorf(r.Line, "%s: the installed uwsgi has no route action %s, which uWSGI %s has in its core", r.Key, QuoteValue(r.Action), uwsgi.Version)
	default:
		if _, failed := in.Missing[plugin]; failed {
			return // the plugin's own error says it
		}
		pkg, _ := uwsgi.PackageOf(plugin)
		if _, loaded := c.named[plugin]; loaded {
			c.errorf(r.Line, "%s: route action %s is uWSGI's %s plugin's (%s), which the installed uwsgi does not register with that plugin loaded", r.Key, QuoteValue(r.Action), plugin, pkg)
			return
		}
		c.errorf(r.Line, "%s: route action %s needs uWSGI's %s plugin (%s), which this file does not load: add plugin = %s", r.Key, QuoteValue(r.Action), plugin, pkg, plugin)
	}
}

// hint is " (did you mean X?)" for the name of known that typed most
// likely meant, or "".
func hint(typed string, known []string) string {
	if s := spell.Nearest(typed, known, nil); s != "" {
		return fmt.Sprintf(" (did you mean %s?)", QuoteValue(s))
	}
	return ""
}

type appCheck struct {
	path  string
	app   *App
	named map[string]int // plugin -> line of the plugin line that names it (0: loaded for a loader)
	out   []Diag
}

func (c *appCheck) add(line int, warning bool, msg string) {
	c.out = append(c.out, Diag{File: c.path, Line: line, Message: clip(msg, MaxMessage), Warning: warning})
}

func (c *appCheck) errorf(line int, format string, a ...any) {
	c.add(line, false, fmt.Sprintf(format, a...))
}

// firstAsking is the line of the first line that asks for the app server.
func (c *appCheck) firstAsking() int {
	for _, l := range c.app.Lines {
		if l.Line > 0 && uwsgi.AsksForApp(l.Key) {
			return l.Line
		}
	}
	for _, l := range c.app.Lines {
		if l.Line > 0 {
			return l.Line
		}
	}
	return 0
}

// user is the first line that needs plugin: where an error about a plugin
// loaded for the file belongs.
func (c *appCheck) user(plugin string) (AppLine, bool) {
	for _, l := range c.app.Lines {
		if l.Line > 0 && slices.Contains(uwsgi.PluginsOf(l.Key, l.Value), plugin) {
			return l, true
		}
	}
	return AppLine{}, false
}

// needer names what of line l needs plugin: its option, or for a route
// line its action or condition.
func needer(l AppLine, plugin string) string {
	r, ok, err := uwsgi.ParseRoute(l.Key, l.Value)
	if !ok || err != nil {
		return l.Key
	}
	if p, _ := uwsgi.ActionPlugin(r.Action); p == plugin {
		return fmt.Sprintf("%s: route action %s", l.Key, QuoteValue(r.Action))
	}
	return fmt.Sprintf("%s: route condition %s", l.Key, QuoteValue(r.Condition))
}

// missingPlugin reports a plugin the installed uwsgi could not load.
func (c *appCheck) missingPlugin(name, reason string) {
	pkg, debian := uwsgi.PackageOf(name)
	install := "apt-get install " + pkg
	if line := c.named[name]; line > 0 {
		switch {
		case debian:
			c.errorf(line, "plugin %s is not installed: %s", name, install)
		case alternative(name) != "":
			c.errorf(line, "plugin %s cannot be loaded (%s): Debian's is %s (write plugin = %s)", name, reason, alternative(name), alternative(name))
		default:
			c.errorf(line, "plugin %s cannot be loaded: %s", name, reason)
		}
		return
	}
	if l, ok := c.user(name); ok {
		c.errorf(l.Line, "%s needs uWSGI's %s plugin, which is not installed: %s", needer(l, name), name, install)
		return
	}
	c.errorf(c.firstAsking(), "uWSGI's %s plugin is not installed: %s", name, install)
}

// alternative is Debian's name of a plugin named the way other builds name
// it (python for python3, asyncio for asyncio_python3).
func alternative(name string) string {
	for _, cand := range []string{name + "3", name + "_python3"} {
		if _, ok := uwsgi.PackageOf(cand); ok {
			return cand
		}
	}
	return ""
}

// unknown reports a line whose option the installed uwsgi, with the
// plugins the file loads, does not know.
func (c *appCheck) unknown(l AppLine, in *uwsgi.Installation) {
	o, known := uwsgi.Lookup(l.Key)
	switch {
	case known && o.Plugin != "":
		if _, failed := in.Missing[o.Plugin]; failed {
			return // the plugin's own error says it
		}
		for m := range in.Missing {
			if alternative(m) == o.Plugin {
				return // the error of plugin m says to write o.Plugin
			}
		}
		if _, loaded := c.named[o.Plugin]; loaded {
			c.errorf(l.Line, "%s is an option of uWSGI's %s plugin, which the installed uwsgi does not know with that plugin loaded", l.Key, o.Plugin)
			return
		}
		pkg, _ := uwsgi.PackageOf(o.Plugin)
		msg := fmt.Sprintf("%s is an option of uWSGI's %s plugin, which this file does not load: add %s to its plugins line", l.Key, o.Plugin, o.Plugin)
		if !installed(o.Plugin) {
			msg += fmt.Sprintf(" and install it (apt-get install %s)", pkg)
		}
		c.errorf(l.Line, "%s", msg)
	default:
		msg := fmt.Sprintf("the installed uwsgi does not know the option %s", QuoteValue(l.Key))
		if s := closest(l.Key, in.Options); s != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", QuoteValue(s))
		}
		c.errorf(l.Line, "%s", msg)
	}
}

func installed(plugin string) bool {
	for _, p := range uwsgi.InstalledPlugins() {
		if p == plugin {
			return true
		}
	}
	return false
}

// closest is the name of names that a typo k most likely meant, by the
// rules of suggest.
func closest(k string, names map[string]bool) string {
	list := make([]string, 0, len(names))
	for n := range names {
		list = append(list, n)
	}
	sort.Strings(list)
	class := phaseClass(k)
	return spell.Nearest(k, list, func(name string) bool { return phaseClass(name) == class })
}

// sortedByLine sorts the names of m by the line in lines (then by name).
func sortedByLine(m map[string]string, lines map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		if lines[out[i]] != lines[out[j]] {
			return lines[out[i]] < lines[out[j]]
		}
		return strings.Compare(out[i], out[j]) < 0
	})
	return out
}
