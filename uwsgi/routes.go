package uwsgi

import (
	"errors"
	"fmt"
	"strings"
)

// The lines of uWSGI's internal routing (core/routing.c,
// uwsgi_opt_add_route) are the route options of four tables: route,
// final-route, error-route and response-route, each with a subject
// (route-host, route-uri...), route-label, route-if, route-if-not and
// route-run; the three others also with -status. uWSGI parses each line
// when it applies the options, after it loaded every plugin: a line whose
// action (or route-if condition) no loaded plugin registered makes it exit
// at start.

// routeKind is how uWSGI reads the value of a route option.
type routeKind int

const (
	routeSubject routeKind = iota // REGEXP ACTION:ARGS
	routeLabel                    // LABEL: no action
	routeIf                       // CONDITION:ARGS ACTION:ARGS (route-if, route-if-not)
	routeStatus                   // STATUS ACTION:ARGS
	routeRun                      // ACTION:ARGS
)

// routeSuffixes are the route options of one table, after its prefix
// (core/uwsgi.c, the options with the handler uwsgi_opt_add_route).
var routeSuffixes = map[string]routeKind{
	"route": routeSubject, "route-host": routeSubject, "route-uri": routeSubject,
	"route-qs": routeSubject, "route-remote-addr": routeSubject, "route-user-agent": routeSubject,
	"route-remote-user": routeSubject, "route-referer": routeSubject,
	"route-label": routeLabel, "route-if": routeIf, "route-if-not": routeIf, "route-run": routeRun,
	"route-status": routeStatus,
}

// routeForms are what uWSGI reads in the value of each kind of route line.
var routeForms = map[routeKind]string{
	routeSubject: "REGEXP ACTION:ARGS", routeIf: "CONDITION:ARGS ACTION:ARGS",
	routeStatus: "STATUS ACTION:ARGS", routeRun: "ACTION:ARGS",
}

// routeKindOf says whether option name is a route option, and how uWSGI
// reads its value.
func routeKindOf(name string) (routeKind, bool) {
	table := ""
	for _, p := range []string{"final-", "error-", "response-"} {
		if strings.HasPrefix(name, p) {
			table, name = p, strings.TrimPrefix(name, p)
			break
		}
	}
	k, ok := routeSuffixes[name]
	if ok && k == routeStatus && table == "" {
		return 0, false // there is no route-status: the status is a response's
	}
	return k, ok
}

// Route is what a route line names: its action (the name before the
// colon of ACTION:ARGS) and, for route-if and route-if-not, its condition.
type Route struct {
	If        bool // a route-if or route-if-not line: it has a condition
	Condition string
	Action    string
}

// ErrRouteSyntax and ErrRouteConditionSyntax are uWSGI's own errors for a
// route line it cannot read (its messages: invalid route syntax, invalid
// route condition syntax).
var (
	ErrRouteSyntax          = errors.New("invalid route syntax")
	ErrRouteConditionSyntax = errors.New("invalid route condition syntax")
)

// ParseRoute reads a line of option key with value as uWSGI's
// uwsgi_opt_add_route does: the subject (a regexp, a status or a
// condition) ends at the first space, the action is the rest, and its name
// ends at its first colon. ok is false when key is no route option, and
// for route-label (a label names no action). A value uWSGI cannot read is
// an error that wraps ErrRouteSyntax or ErrRouteConditionSyntax and says
// what uWSGI reads there.
func ParseRoute(key, value string) (r Route, ok bool, err error) {
	kind, isRoute := routeKindOf(key)
	if !isRoute || kind == routeLabel {
		return Route{}, false, nil
	}
	r, err = parseRoute(kind, value)
	if err != nil {
		err = fmt.Errorf("%w: uWSGI reads %s = %s", err, key, routeForms[kind])
	}
	return r, true, err
}

func parseRoute(kind routeKind, value string) (r Route, err error) {
	command := value
	if kind != routeRun {
		subject, rest, found := strings.Cut(value, " ")
		if !found {
			return Route{}, ErrRouteSyntax
		}
		if kind == routeIf {
			cond, _, found := strings.Cut(subject, ":")
			if !found {
				return Route{}, ErrRouteConditionSyntax
			}
			r.If, r.Condition = true, cond
		}
		command = rest
	}
	action, _, found := strings.Cut(command, ":")
	if !found {
		return Route{}, ErrRouteSyntax
	}
	r.Action = action
	return r, nil
}

// routePlugins are the plugins a route line needs by the catalog: its
// condition's and its action's (none for the core's, or a name the
// catalog does not know).
func routePlugins(key, value string) []string {
	r, ok, err := ParseRoute(key, value)
	if !ok || err != nil {
		return nil
	}
	var out []string
	if p, _ := ConditionPlugin(r.Condition); p != "" {
		out = append(out, p)
	}
	if p, _ := ActionPlugin(r.Action); p != "" && (len(out) == 0 || out[0] != p) {
		out = append(out, p)
	}
	return out
}
