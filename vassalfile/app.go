package vassalfile

import (
	"fmt"
	"sort"

	"github.com/emperor-dev/emperor/uwsgi"
)

// Owner says who acts on an option: the emperor (PID 1 and its
// components) or uWSGI's app server, which runs the app of a vassal file
// that asks for one (see AsksForApp).
type Owner int

const (
	// OwnerEmperor options are ours, always, and never handed to uWSGI.
	OwnerEmperor Owner = iota
	// OwnerShared options are ours in a vassal without an app, and
	// uWSGI's, handed to it verbatim with their uWSGI meaning, in a vassal
	// that runs an app. Only names uWSGI 2.0.21 knows can be shared.
	OwnerShared
	// OwnerApp options are uWSGI's. Without an app they are accepted with
	// a warning. Every option of the uwsgi catalog that we do not register
	// is OwnerApp.
	OwnerApp
)

func (o Owner) String() string {
	switch o {
	case OwnerShared:
		return "shared"
	case OwnerApp:
		return "uWSGI"
	}
	return "emperor"
}

// AppLine is one line handed to uWSGI's app server, after our expansion:
// Key, Value, and Line (0: added by us, a plugin auto-loaded for a loader).
type AppLine = uwsgi.Line

// App is the app server part of a vassal; Spec.App is nil when the file
// asks for no app.
type App struct {
	Lines   []AppLine // in file order, auto-loaded plugin lines first
	Sockets []AppLine // the lines among Lines that listen (uwsgi.IsSocket)
}

// catalogOption is the registry entry of an option that only uWSGI's
// catalog knows: uWSGI's, its value passed as written.
func catalogOption(name string) (*Option, bool) {
	co, ok := uwsgi.Lookup(name)
	if !ok {
		return nil, false
	}
	return &Option{Name: co.Name, Scope: ScopeVassal | ScopeEmperor, Kind: KindString, List: true,
		Owner: OwnerApp, Default: "-", Doc: "uWSGI's own option.", UWSGI: "same"}, true
}

// ownerOf is the owner of an entry's canonical key.
func ownerOf(key string) Owner {
	if o, ok := Lookup(key); ok {
		return o.Owner
	}
	if _, ok := uwsgi.Lookup(key); ok {
		return OwnerApp
	}
	return OwnerEmperor
}

// fileServerOnly are options of our file server that uWSGI does not
// know: in a vassal that runs an app, uWSGI serves http-socket and they
// have no effect.
var fileServerOnly = map[string]bool{
	"static-autoindex": true, "static-cache-ttl": true, "static-cache-max-file": true,
	"static-cache-size": true, "glusterfs-timeout": true,
}

// appDiags are the diagnostics of a file that count only once it is known
// whether the file asks for an app: they are gathered as the lines are
// read (so a line in a loop is counted like any other) and merged into the
// file's at its end, where they get its path and kind.
type appDiags struct {
	noApp, withApp struct{ errs, warns diagList }
	// bad are the entries (indexes in File.Entries) of shared options
	// whose value is an error for our use: rejected without an app.
	bad []int
}

// appLoopMark marks where a for block's body starts in the app's
// diagnostics; the function it returns notes the repeats, as the loop does
// for the file's own (diagList.inLoop).
func (p *parser) appLoopMark() func(key string, line, items int) {
	lists := []*diagList{&p.app.noApp.errs, &p.app.noApp.warns, &p.app.withApp.errs, &p.app.withApp.warns}
	marks := make([]int, len(lists))
	for i, l := range lists {
		marks[i] = l.mark()
	}
	return func(key string, line, items int) {
		for i, l := range lists {
			l.inLoop(marks[i], key, line, items)
		}
	}
}

// applyApp keeps a line of an option uWSGI may own: shared options are
// parsed for our use (an error counts only if the file runs no app),
// uWSGI's are kept as written. In the emperor's config uWSGI's options
// have no effect.
func (p *parser) applyApp(l rawLine, k string, opt *Option, v string) {
	p.setPH(opt.Name, v) // (apply has set k: %(name) is the first value, as in uWSGI)
	if p.o.Scope&ScopeVassal == 0 {
		p.warnf(l.line, "%s has no effect under this emperor and is ignored", k)
		return
	}
	e := Entry{Key: opt.Name, Value: v, Val: v, Line: l.line}
	if k != opt.Name {
		e.As = k
	}
	switch opt.Owner {
	case OwnerShared:
		if val, err := opt.parse(v); err != nil {
			p.app.bad = append(p.app.bad, len(p.file.Entries))
			p.app.noApp.errs.add(l.line, fmt.Sprintf("%s: %v", k, err))
		} else {
			e.Val = val
		}
	case OwnerApp:
		if opt.Parse != nil {
			// A value uWSGI would fail on (a hook action it lacks).
			if _, err := opt.parse(v); err != nil {
				p.app.withApp.errs.add(l.line, fmt.Sprintf("%s: %v", k, err))
			}
		}
		if opt.NoApp != "" && !flagOff(opt.Name, v) {
			p.app.noApp.errs.add(l.line, opt.NoApp)
		} else {
			p.app.noApp.warns.add(l.line, fmt.Sprintf("%s has no effect: this vassal runs no app server%s", k, noAppHint(k, v)))
		}
	}
	p.file.Entries = append(p.file.Entries, e)
}

// flagOff says whether v turns off the uWSGI flag name (need-app = false):
// uwsgi_opt_true reads false, off, no and 0 as off.
func flagOff(name, v string) bool {
	co, ok := uwsgi.Lookup(name)
	on, err := ParseBool(v)
	return ok && co.Flag() && err == nil && !on
}

// appFileServerLine notes, for a line of ours, what it means in a vassal
// that runs an app: our file server does not run there.
func (p *parser) appFileServerLine(l rawLine, k, name string) {
	if p.o.Scope&ScopeVassal == 0 || (name != "glusterfs-mount" && !fileServerOnly[name]) {
		return
	}
	if name == "glusterfs-mount" {
		p.app.withApp.errs.add(l.line, "glusterfs-mount cannot be served in a vassal that runs an app: uWSGI's app server owns http-socket there, and our file server cannot share it in this version; serve the volume from a vassal of its own")
		return
	}
	p.app.withApp.warns.add(l.line, fmt.Sprintf("%s has no effect: this vassal runs an app, and uWSGI's app server serves its HTTP, not our file server", k))
}

// finishApp runs once the whole file is read, when it is known whether it
// asks for an app, and adds the diagnostics that hold: without an app, the
// errors of shared options and a warning for each of uWSGI's; with one,
// a warning for our file server's options and an error for
// glusterfs-mount.
func (p *parser) finishApp() {
	d := &p.app.withApp
	if !AsksForApp(p.file.Entries) {
		d = &p.app.noApp
		// The lines in error are rejected, as any option's with a bad
		// value: no entry, and Decode does not report them missing.
		if len(p.app.bad) > 0 {
			bad := map[int]bool{}
			for _, i := range p.app.bad {
				bad[i] = true
				p.file.reject(p.file.Entries[i].Key)
			}
			kept := p.file.Entries[:0]
			for i, e := range p.file.Entries {
				if !bad[i] {
					kept = append(kept, e)
				}
			}
			p.file.Entries = kept
		}
	}
	p.errs.merge(&d.errs)
	p.warns.merge(&d.warns)
	sort.SliceStable(p.warns.list, func(i, j int) bool { return p.warns.list[i].Line < p.warns.list[j].Line })
}

// merge adds the diagnostics of o to l, keeping l's bound; they take l's
// file and kind.
func (l *diagList) merge(o *diagList) {
	for _, d := range o.list {
		if l.full() {
			l.more += max(d.Count, 1)
			continue
		}
		d.File, d.Warning = l.path, l.warning
		l.list = append(l.list, d)
	}
	l.more += o.more
}

// name is the option name as the file wrote it.
func (e Entry) name() string {
	if e.As != "" {
		return e.As
	}
	return e.Key
}

// AsksForApp says whether entries ask for uWSGI's app server: a language
// loader (module, wsgi-file, psgi, rack, php-*...), a socket that only the
// app server serves (socket, uwsgi-socket, fastcgi-socket...), or uWSGI's
// http/https router.
func AsksForApp(entries []Entry) bool {
	for _, e := range entries {
		if uwsgi.AsksForApp(e.name()) {
			return true
		}
	}
	return false
}

// pluginLines are the lines that name the plugins uWSGI loads.
var pluginLines = map[string]bool{"plugin": true, "plugins": true, "need-plugin": true, "need-plugins": true}

// BuildApp is the app server part of a parsed file, nil when it asks for
// no app. Its lines are those of options uWSGI owns (OwnerApp, and
// OwnerShared since there is an app), in file order, with the key as
// written. Each plugin its lines need (a loader's, or any other option's
// of a plugin: http for http, psgi for psgi; a route's action:
// router_redirect for redirect) that no plugin line names is
// loaded for it: a plugin line for each, in order of first use, before the
// file's own lines. So a file written for a uWSGI with those plugins built
// in (pip's, or one that names only its language plugin) runs on Debian's
// modular uwsgi unchanged; uWSGI skips a plugin loaded twice.
func BuildApp(f *File) *App {
	if !AsksForApp(f.Entries) {
		return nil
	}
	app := &App{}
	named := map[string]bool{}
	var need []string
	seen := map[string]bool{}
	for _, e := range f.Entries {
		if ownerOf(e.Key) == OwnerEmperor {
			continue
		}
		k := e.name()
		app.Lines = append(app.Lines, AppLine{Key: k, Value: e.Value, Line: e.Line})
		if pluginLines[k] {
			for _, p := range uwsgi.SplitPlugins(e.Value) {
				named[uwsgi.PluginName(p)] = true
			}
		}
		for _, plugin := range uwsgi.PluginsOf(k, e.Value) {
			if !seen[plugin] {
				seen[plugin] = true
				need = append(need, plugin)
			}
		}
	}
	var auto []AppLine
	for _, p := range need {
		if !named[p] {
			auto = append(auto, AppLine{Key: "plugin", Value: p})
		}
	}
	if len(auto) > 0 {
		app.Lines = append(auto, app.Lines...)
	}
	for _, l := range app.Lines {
		if uwsgi.IsSocket(l.Key) {
			app.Sockets = append(app.Sockets, l)
		}
	}
	return app
}

// emperorPart is f without the entries uWSGI's app server owns in a vassal
// that runs an app: what our components decode.
func emperorPart(f *File) *File {
	out := *f
	out.Entries = make([]Entry, 0, len(f.Entries))
	for _, e := range f.Entries {
		if ownerOf(e.Key) == OwnerEmperor {
			out.Entries = append(out.Entries, e)
		}
	}
	return &out
}
