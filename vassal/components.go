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
	return []namedComponent{
		// hook-asap and hook-pre-jail, as root in the host's view (hooks.go).
		{"hooks asap, pre-jail", &setupHooks{v: v, phases: []hooks.Phase{hooks.Asap, hooks.PreJail}}},
		// chroot or pivot_root (jail.go).
		{"jail", &jail{v: v}},
		// hook-post-jail, hook-in-jail and hook-as-root, in the jail (hooks.go).
		{"hooks post-jail, in-jail, as-root", &setupHooks{v: v, phases: []hooks.Phase{hooks.PostJail, hooks.InJail, hooks.AsRoot}}},
		// shared-socket and http-socket, bound as root so :80 works (sockets.go).
		{"sockets", socks},
		// setgid, setgroups, setuid to what uid/gid/add-gid resolved to (creds.go).
		{"credentials", &credentials{}},
		// hook-as-user on start and reload, hook-as-user-atexit on stop and
		// before a reload (hooks.go).
		{"hooks as-user", &userHooks{v: v}},
		// chdir (workdir.go).
		{"chdir", &workdir{v: v}},
		// the file server of http-socket (serve.go).
		{"http", &httpService{v: v, socks: socks}},
		// attach-daemon and smart-attach-daemon (daemons.go).
		{"daemons", &daemons{v: v, socks: socks, set: daemonSet{policy: v.policy}}},
		// mountpoint-check, last so that it is the first to stop: nothing
		// checks a mount while the daemons stop or the as-user-atexit hooks
		// unmount it (mountcheck.go).
		{"mountpoint-check", newMountCheck(v)},
	}
}
