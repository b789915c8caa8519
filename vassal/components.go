package vassal

import "github.com/emperor-dev/emperor/hooks"

// components lists what a vassal is made of, in start order (lifecycle.go
// drives them: start and reload in this order, shutdown in reverse). The
// order is the privilege order of a uWSGI vassal: everything that needs
// root and the host's view (the setup hooks, the jail, binding sockets)
// comes before the privilege drop; everything the tenant runs comes after.
//
// Each entry has a file of its own. The next components (an app server, cron,
// log files, a cgroup, tenant volumes) take their place in this list.
func (v *vassal) components() []namedComponent {
	socks := &sockets{v: v}
	dm := &daemons{v: v, socks: socks, set: daemonSet{policy: v.policy}}
	ct := newCrontab(v)
	appSocks := &appSockets{v: v}
	v.app = &appServer{v: v, socks: appSocks}
	return []namedComponent{
		// logto, opened as root before anything logs (logto.go).
		{"logto", &logTo{v: v}},
		// hook-asap, hook-pre-jail, hook-in-jail and hook-post-jail, as root
		// in the vassal's namespaces, before the root changes: uWSGI runs
		// in-jail and post-jail after its namespace jail and before chroot
		// and pivot_root (hooks.go).
		{"hooks asap, pre-jail, in-jail, post-jail", &setupHooks{v: v, phases: []hooks.Phase{hooks.Asap, hooks.PreJail, hooks.InJail, hooks.PostJail}}},
		// chroot or pivot_root (jail.go).
		{"jail", &jail{v: v}},
		// wait-for-interface, -fs, -file, -dir, -mountpoint, in the new
		// root, before as-root as in uWSGI (hooks.go).
		{"wait-for", &waits{v: v}},
		// hook-as-root, in the new root (hooks.go).
		{"hooks as-root", &setupHooks{v: v, phases: []hooks.Phase{hooks.AsRoot}}},
		// shared-socket and http-socket, bound as root so :80 works (sockets.go).
		{"sockets", socks},
		// the app server's TCP sockets, bound as root so :80 works (app.go).
		{"app sockets", appSocks},
		// setgid, setgroups, setuid to what uid/gid/add-gid resolved to (creds.go).
		{"credentials", &credentials{}},
		// logto2, opened as the vassal's user (logto.go).
		{"logto2", &logTo{v: v, late: true}},
		// hook-as-user on start and reload, hook-as-user-atexit on stop and
		// before a reload (hooks.go).
		{"hooks as-user", &userHooks{v: v}},
		// wait-for-socket of a vassal without an app, after as-user
		// (hooks.go).
		{"wait-for-socket", &waits{v: v, sockets: true}},
		// chdir (workdir.go).
		{"chdir", &workdir{v: v}},
		// the file server of http-socket (serve.go).
		{"http", &httpService{v: v, socks: socks}},
		// uWSGI's app server for a file that asks for an app (app.go).
		{"app server", v.app},
		// attach-daemon and smart-attach-daemon (daemons.go).
		{"daemons", dm},
		// cron, unique-cron and cron2: jobs run as the tenant in the jail
		// (cron.go). A reload keeps their runs going.
		{"cron", ct},
		// stats: the vassal's status as JSON, without an app (stats.go).
		{"stats", newStatsServer(v, dm, ct)},
		// touch-reload and the other touch-* options, watched with inotify
		// after chdir, in the jail's view (touch.go).
		{"touch", newTouchWatcher(v)},
		// mountpoint-check, last so that it is the first to stop: nothing
		// checks a mount while the daemons stop or the as-user-atexit hooks
		// unmount it (mountcheck.go).
		{"mountpoint-check", newMountCheck(v)},
	}
}
