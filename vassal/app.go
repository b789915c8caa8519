package vassal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/emperor-dev/emperor/procstat"
	"github.com/emperor-dev/emperor/reexec"
	"github.com/emperor-dev/emperor/restart"
	"github.com/emperor-dev/emperor/uwsgi"
	"github.com/emperor-dev/emperor/vassalfile"
	"golang.org/x/sys/unix"
)

// The app server is Debian's uWSGI (uwsgi-core and its plugins), run by
// PID 1 as its child for a vassal whose file asks for an app (Spec.App).
// How it is started, reloaded and stopped follows uWSGI 2.0's own code:
//
//   - Its config is the ini text of Spec.App's lines (uwsgi.Render) in a
//     memfd handed to it as fd 3 and read as `--ini fd://3` (core/io.c,
//     uwsgi_scheme_fd: read from the current offset to EOF). `--safe-fd 3`
//     keeps it open across the master's re-exec on SIGHUP
//     (core/master_utils.c, uwsgi_reload closes every other descriptor).
//     PID 1 shares the open file description, so it rewrites the memfd and
//     rewinds the shared offset before a reload: the re-exec'd master reads
//     the new file. No path into the jail is needed.
//   - Its TCP sockets are bound by PID 1 as root before the privilege drop
//     (appSockets), passed from fd 4 on, and found by name: uWSGI matches
//     inherited descriptors to its socket lines by address when
//     UWSGI_RELOADS is in its environment (core/setup_utils.c,
//     uwsgi_setup_inherited_sockets and core/socket.c,
//     uwsgi_add_socket_from_fd), as it does for its own re-exec.
//   - Readiness is uWSGI's own accepting phase: a hook-accepting1 that
//     logs a token only this vassal knows (core/uwsgi.c runs it when worker 1
//     enters accept; core/hooks.c, log action). Not hook-accepting1-once:
//     it tests the worker's respawn count, which only a master counts, so
//     a uWSGI without master never runs it. PID 1 reads the app server's
//     output anyway (the vassal's line logger); the line with the token is
//     the event.
const (
	// appBinary is looked up in the vassal's PATH inside its root.
	appBinary = "uwsgi"
	// appPluginDir is where Debian's uwsgi-core looks for plugins
	// (UWSGI_PLUGIN_DIR, `uwsgi --cflags`).
	appPluginDir = "/usr/lib/uwsgi/plugins"
	// appConfigFD is the app server's descriptor of its config; its
	// inherited sockets follow.
	appConfigFD = 3
	// appReadyTimeout bounds how long a start or reload of the app server
	// may take to reach its accepting phase (loading a large app on a busy
	// host). Past it the start fails, or the reload is rolled back.
	appReadyTimeout = 3 * time.Minute
)

// uWSGI's exit codes (uwsgi.h).
const (
	uwsgiReloadCode    = 17 // a worker without master, after SIGHUP (gracefully_kill)
	uwsgiFailedAppCode = 22 // need-app and no app loaded
	uwsgiEndCode       = 30 // SIGINT/SIGTERM without master (end_me)
)

// appSocketKind says how uWSGI takes a socket line's address.
type appSocketKind int

const (
	appSockPlain  appSocketKind = iota // the value is the address
	appSockSSL                         // addr,crt,key[,ciphers[,ca]]: the first field
	appSockRouter                      // a router's (gateway) socket: addr[,crt,key...]
)

// appSocketKeys are the listening options whose TCP sockets PID 1 binds
// for the app server (core/uwsgi.c uwsgi_base_options, plugins/http).
var appSocketKeys = map[string]appSocketKind{
	"socket": appSockPlain, "uwsgi-socket": appSockPlain, "http-socket": appSockPlain,
	"http11-socket": appSockPlain, "fastcgi-socket": appSockPlain, "fastcgi-nph-socket": appSockPlain,
	"scgi-socket": appSockPlain, "scgi-nph-socket": appSockPlain, "raw-socket": appSockPlain,
	"puwsgi-socket": appSockPlain, "shared-socket": appSockPlain, "undeferred-shared-socket": appSockPlain,
	"https-socket": appSockSSL, "suwsgi-socket": appSockSSL, "ssl-socket": appSockSSL,
	"http": appSockRouter, "https": appSockRouter,
}

// appLoaderKeys are the loaders that register an app in uWSGI's app table;
// with one of them PID 1 passes --need-app (uWSGI 2.0 would otherwise serve
// 500s in "full dynamic mode" after a failed import, and the start would
// look good). The php and cgi plugins register no app, so a file with only
// those gets no --need-app. A file's own need-app line wins.
var appLoaderKeys = map[string]bool{
	"module": true, "wsgi": true, "wsgi-file": true, "file": true, "eval": true, "callable": false,
	"paste": true, "ini-paste": true, "ini-paste-logged": true, "pecan": true, "mount": true,
	"psgi": true, "rack": true, "rails": true, "pymodule-alias": false,
}

// appSocket is one app server socket line with the descriptor PID 1 bound
// for it (nil: uWSGI binds it itself: a unix path, a name it resolves).
type appSocket struct {
	key, addr string
	line      int
	f         *os.File
}

// appSockets binds the app server's TCP sockets as root, before the
// privilege drop, so that :80 works for an unprivileged tenant as it does
// for a uWSGI started as root. They stay open in PID 1 for the vassal's
// life: connections queue in their backlog while the app server reloads or
// restarts, and never meet a closed port.
type appSockets struct {
	v     *vassal
	socks []appSocket
}

func (s *appSockets) Start(c *config) error {
	if c.spec.App == nil {
		return nil
	}
	opts := appSockOptsOf(c.spec.App.Lines)
	for _, l := range c.spec.App.Sockets {
		kind, ok := appSocketKeys[l.Key]
		if !ok {
			continue
		}
		addr, ok := appSocketAddr(kind, l.Value)
		if !ok {
			s.socks = append(s.socks, appSocket{key: l.Key, addr: strings.TrimSpace(l.Value), line: l.Line})
			continue
		}
		o := opts
		if l.Key == "raw-socket" {
			o.deferAccept = 0 // uwsgi_opt_add_socket_no_defer
		}
		f, err := bindAppSocket(addr, o)
		if err != nil {
			s.Stop()
			return fmt.Errorf("%s: %s = %s: %w", c.spec.Where(l.Line), l.Key, l.Value, err)
		}
		s.socks = append(s.socks, appSocket{key: l.Key, addr: addr, line: l.Line, f: f})
	}
	return nil
}

// Apply keeps the sockets. PID 1 has dropped root, so a new address could
// not be bound as the first was: a file that changes them needs a restart.
func (s *appSockets) Apply(old, new *config) error {
	if a, b := appSocketLines(old.spec), appSocketLines(new.spec); a != b {
		return fmt.Errorf("the app server's sockets changed (%s -> %s): they are bound as root at start; restart the vassal (delete and recreate its file) to change them", a, b)
	}
	return nil
}

func (s *appSockets) Stop() {
	for _, sk := range s.socks {
		if sk.f != nil {
			sk.f.Close()
		}
	}
	s.socks = nil
}

func appSocketLines(spec *vassalfile.Spec) string {
	if spec.App == nil {
		return "none"
	}
	var parts []string
	for _, l := range spec.App.Sockets {
		parts = append(parts, l.Key+"="+strings.TrimSpace(l.Value))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

// appSocketAddr is the TCP address PID 1 binds for a socket line, or false
// when uWSGI binds it itself: a unix or abstract socket (it binds those as
// the tenant, so that they belong to it and chmod-socket/chown-socket
// apply as in uWSGI), fd://N, =N (a shared socket), and * (autoip).
func appSocketAddr(kind appSocketKind, value string) (string, bool) {
	v := strings.TrimSpace(value)
	if kind != appSockPlain {
		v, _, _ = strings.Cut(v, ",")
	}
	if v == "" || strings.HasPrefix(v, "@") || strings.HasPrefix(v, "=") || strings.HasPrefix(v, "fd://") ||
		strings.ContainsAny(v, "*/%") || !strings.Contains(v, ":") {
		return "", false
	}
	return v, true
}

// appSockOpts are the socket options uWSGI's bind_to_tcp applies, from
// the app server's lines.
type appSockOpts struct {
	backlog     int  // listen (uWSGI's default: 100)
	deferAccept int  // TCP_DEFER_ACCEPT seconds (socket-timeout, default 4); 0: off
	reusePort   bool // reuse-port
}

// appSockOptsOf reads listen, socket-timeout, no-defer-accept and
// reuse-port from the lines (the last one of each wins, as in uWSGI).
func appSockOptsOf(lines []vassalfile.AppLine) appSockOpts {
	o := appSockOpts{backlog: 100, deferAccept: 4}
	noDefer := false
	for _, l := range lines {
		v := strings.TrimSpace(l.Value)
		switch l.Key {
		case "listen", "l":
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				o.backlog = n
			}
		case "socket-timeout", "z":
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				o.deferAccept = n
			}
		case "no-defer-accept":
			noDefer = uwsgiTrue(v)
		case "reuse-port":
			o.reusePort = uwsgiTrue(v)
		}
	}
	if noDefer {
		o.deferAccept = 0
	}
	return o
}

// uwsgiTrue is uwsgi_opt_true: a flag is on unless its value is false,
// off, no or 0.
func uwsgiTrue(v string) bool {
	switch strings.ToLower(v) {
	case "false", "off", "no", "0":
		return false
	}
	return true
}

// bindAppSocket binds addr as uWSGI's bind_to_tcp would (core/socket.c):
// "host:port" is IPv4 (":port" every address), "[host]:port" IPv6;
// SO_REUSEADDR, TCP_DEFER_ACCEPT (unless no-defer-accept, or a raw-socket),
// SO_REUSEPORT with reuse-port, and uWSGI's listen backlog.
// TCP_DEFER_ACCEPT matters beyond fidelity: a worker then accepts a
// connection with its request already there, instead of waiting for it in
// a poll(2) that a graceful reload's SIGHUP interrupts, which drops the
// request.
func bindAppSocket(addr string, o appSockOpts) (*os.File, error) {
	network := "tcp4"
	if strings.HasPrefix(addr, "[") {
		network = "tcp6"
	}
	ta, err := net.ResolveTCPAddr(network, addr)
	if err != nil {
		return nil, err
	}
	family, sa := unix.AF_INET, unix.Sockaddr(nil)
	if network == "tcp6" {
		family = unix.AF_INET6
		a := &unix.SockaddrInet6{Port: ta.Port}
		copy(a.Addr[:], ta.IP.To16())
		sa = a
	} else {
		a := &unix.SockaddrInet4{Port: ta.Port}
		if ip4 := ta.IP.To4(); ip4 != nil {
			copy(a.Addr[:], ip4)
		}
		sa = a
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, &os.SyscallError{Syscall: "socket", Err: err}
	}
	f := os.NewFile(uintptr(fd), "app-socket "+addr)
	setopt := func(level, opt, val int, name string) error {
		if err := unix.SetsockoptInt(fd, level, opt, val); err != nil {
			return &os.SyscallError{Syscall: "setsockopt " + name, Err: err}
		}
		return nil
	}
	if err := setopt(unix.SOL_SOCKET, unix.SO_REUSEADDR, 1, "SO_REUSEADDR"); err != nil {
		f.Close()
		return nil, err
	}
	if o.reusePort {
		if err := setopt(unix.SOL_SOCKET, unix.SO_REUSEPORT, 1, "SO_REUSEPORT"); err != nil {
			f.Close()
			return nil, err
		}
	}
	if o.deferAccept > 0 {
		if err := setopt(unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, o.deferAccept, "TCP_DEFER_ACCEPT"); err != nil {
			f.Close()
			return nil, err
		}
	}
	if err := unix.Bind(fd, sa); err != nil {
		f.Close()
		return nil, &os.SyscallError{Syscall: "bind", Err: err}
	}
	if err := unix.Listen(fd, o.backlog); err != nil {
		f.Close()
		return nil, &os.SyscallError{Syscall: "listen", Err: err}
	}
	return f, nil
}

// uwsgiSocketName is the name uWSGI computes for an inherited TCP socket
// (core/socket.c uwsgi_add_socket_from_fd): ":port" for 0.0.0.0,
// "ip:port", "[ip6]:port" ("[::]:port" for every IPv6 address).
func uwsgiSocketName(f *os.File) (string, error) {
	sa, err := unix.Getsockname(int(f.Fd()))
	if err != nil {
		return "", err
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		if a.Addr == [4]byte{} {
			return ":" + strconv.Itoa(a.Port), nil
		}
		return fmt.Sprintf("%d.%d.%d.%d:%d", a.Addr[0], a.Addr[1], a.Addr[2], a.Addr[3], a.Port), nil
	case *unix.SockaddrInet6:
		return "[" + netipFrom16(a.Addr) + "]:" + strconv.Itoa(a.Port), nil
	}
	return "", fmt.Errorf("not a TCP socket")
}

// uwsgiSameSocket is uWSGI's uwsgi_socket_strcmp: a "0.0.0.0:" prefix is
// the same as ":".
func uwsgiSameSocket(a, b string) bool {
	norm := func(s string) string {
		if strings.HasPrefix(s, "0.0.0.0:") {
			return s[7:]
		}
		return s
	}
	return norm(a) == norm(b)
}

// appFiles says what the app server inherits after stdin/stdout/stderr and
// its config, and rewrites the socket lines so that uWSGI finds each
// pre-bound descriptor: a line whose address is not the name uWSGI
// computes for the socket (a host name) gets that name; a router's socket
// (http, https) is named fd://N, which the routers take as is
// (plugins/corerouter/cr_common.c) and kept with safe-fd, since
// uwsgi_reload closes gateway descriptors.
func appFiles(lines []vassalfile.AppLine, socks []appSocket) (out []uwsgi.Line, files []*os.File, safe []int, err error) {
	byLine := map[int]appSocket{}
	for _, sk := range socks {
		if sk.f != nil {
			byLine[sk.line] = sk
		}
	}
	for _, l := range lines {
		ul := uwsgi.Line(l)
		sk, ok := byLine[l.Line]
		if ok && l.Line > 0 && sk.key == l.Key {
			fd := appConfigFD + 1 + len(files)
			files = append(files, sk.f)
			name, nerr := uwsgiSocketName(sk.f)
			if nerr != nil {
				return nil, nil, nil, fmt.Errorf("%s = %s: %w", l.Key, l.Value, nerr)
			}
			switch kind := appSocketKeys[l.Key]; {
			case kind == appSockRouter:
				_, rest, hasRest := strings.Cut(strings.TrimSpace(l.Value), ",")
				ul.Value = "fd://" + strconv.Itoa(fd)
				if hasRest {
					ul.Value += "," + rest
				}
				safe = append(safe, fd)
			case !uwsgiSameSocket(name, sk.addr):
				_, rest, hasRest := strings.Cut(strings.TrimSpace(l.Value), ",")
				ul.Value = name
				if kind == appSockSSL && hasRest {
					ul.Value += "," + rest
				}
			}
		}
		out = append(out, ul)
	}
	return out, files, safe, nil
}

// appArgv is the app server's command line: only what makes it our child
// (its config, readiness, mercy); everything else is in its config.
func appArgv(bin string, safe []int, token string, mercy time.Duration, needApp bool) []string {
	argv := []string{bin, "--safe-fd", strconv.Itoa(appConfigFD)}
	for _, fd := range safe {
		argv = append(argv, "--safe-fd", strconv.Itoa(fd))
	}
	secs := strconv.Itoa(int((mercy + time.Second - 1) / time.Second))
	argv = append(argv,
		"--hook-accepting1", "log:"+token,
		"--reload-mercy", secs, "--worker-reload-mercy", secs,
		// no-orphans: each worker asks the kernel for SIGKILL when its
		// master dies (PR_SET_PDEATHSIG, core/uwsgi.c). Without it a
		// master killed outright (the emperor's SIGKILL of a vassal with
		// no PID namespace, the OOM killer) leaves its workers running
		// with no one to supervise them; they spin at full CPU on the
		// socket they share. PID 1 starts a new master anyway, so a
		// worker has no use once its master is gone.
		"--no-orphans")
	if needApp {
		argv = append(argv, "--need-app")
	}
	return append(argv, "--ini", "fd://"+strconv.Itoa(appConfigFD))
}

func appNeedsApp(lines []vassalfile.AppLine) bool {
	for _, l := range lines {
		if appLoaderKeys[l.Key] {
			return true
		}
	}
	return false
}

// appConfig is the memfd that holds the app server's ini text.
type appConfig struct{ f *os.File }

// newAppConfig creates an anonymous file for the config: the app server
// reads it through its inherited descriptor, so nothing is written into
// the tenant's jail, and it is gone with the last descriptor.
func newAppConfig(name string) (*appConfig, error) {
	fd, err := unix.MemfdCreate("emperor-app-"+name, unix.MFD_CLOEXEC)
	if err != nil {
		return nil, &os.SyscallError{Syscall: "memfd_create", Err: err}
	}
	return &appConfig{f: os.NewFile(uintptr(fd), "emperor-app-config")}, nil
}

// write replaces the content and rewinds the offset that the app server
// shares with PID 1 (one open file description), so that its next read of
// fd://3 (a start, or the master's re-exec) reads all of it.
func (c *appConfig) write(b []byte) error {
	if err := c.f.Truncate(0); err != nil {
		return err
	}
	if _, err := c.f.WriteAt(b, 0); err != nil {
		return err
	}
	return c.rewind()
}

func (c *appConfig) rewind() error {
	_, err := c.f.Seek(0, 0)
	return err
}

func (c *appConfig) Close() error { return c.f.Close() }

// findAppBinary finds the app server as execvp would in the vassal's PATH,
// inside its root (PID 1 is already jailed and has dropped privileges).
func findAppBinary(env []string, jailed string) (string, error) {
	pathVar := DefaultPath
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], "PATH="); ok {
			pathVar = v
			break
		}
	}
	var tried []string
	for _, d := range strings.Split(pathVar, ":") {
		if d == "" {
			d = "."
		}
		p := d + "/" + appBinary
		if executable(p) {
			return p, nil
		}
		tried = append(tried, p)
	}
	return "", &AppMissingError{What: "the app server (" + appBinary + ")", Tried: tried, Jail: jailed}
}

// checkAppPlugins checks that every plugin the lines load exists where
// uWSGI looks for it (core/plugins.c uwsgi_load_plugin: a name with a
// slash as is, else NAME_plugin.so in each plugins-dir, then in
// appPluginDir). uWSGI only warns about a missing plugin and then fails
// on the first option of it; inside a jail the cause is a rootfs without
// the plugin, which this says.
func checkAppPlugins(lines []vassalfile.AppLine, jailed string, where func(int) string) error {
	var dirs []string
	for _, l := range lines {
		switch l.Key {
		case "plugins-dir", "plugin-dir":
			dirs = append(dirs, strings.TrimSpace(l.Value))
		case "plugin", "plugins":
			for _, name := range strings.Split(l.Value, ",") {
				name = strings.TrimSpace(name)
				if name == "" {
					continue
				}
				if _, after, ok := strings.Cut(name, ":"); ok {
					name = after
				}
				name, _, _ = strings.Cut(name, "|")
				if !strings.HasSuffix(name, "_plugin.so") {
					name += "_plugin.so"
				}
				var cands []string
				if strings.Contains(name, "/") {
					cands = []string{name}
				} else {
					for _, d := range append(append([]string(nil), dirs...), appPluginDir) {
						cands = append(cands, d+"/"+name)
					}
				}
				found := false
				for _, p := range cands {
					if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
						found = true
						break
					}
				}
				if !found {
					return &AppMissingError{What: fmt.Sprintf("uWSGI plugin %q (%s)", strings.TrimSpace(l.Value), where(l.Line)), Tried: cands, Jail: jailed}
				}
			}
		}
	}
	return nil
}

// AppMissingError is an app server binary or plugin that is not in the
// vassal's root.
type AppMissingError struct {
	What  string
	Tried []string
	Jail  string // the jail's description, "" when there is none
}

func (e *AppMissingError) Error() string {
	msg := fmt.Sprintf("%s not found: tried %s", e.What, strings.Join(e.Tried, ", "))
	if e.Jail != "" {
		msg += fmt.Sprintf(" inside the vassal's root (%s): the app server runs in the jail, so the rootfs must contain it (install uwsgi-core and the plugin packages into it, e.g. mmdebstrap --include=uwsgi-core,uwsgi-plugin-psgi), see docs/appserver.md", e.Jail)
	} else {
		msg += ": install uwsgi-core and the plugin's package (uwsgi-plugin-python3, uwsgi-plugin-psgi, uwsgi-plugin-php)"
	}
	return msg
}

// AppStartError is an app server that did not reach its accepting phase.
type AppStartError struct {
	Pid    int
	Status string // how it exited; "" if it did not
	Err    error
}

func (e *AppStartError) Error() string {
	if e.Status != "" {
		return fmt.Sprintf("app server (uwsgi, pid %d) exited before accepting connections: %s (its own messages are in the vassal's log: logto, else the emperor's log)", e.Pid, e.Status)
	}
	return fmt.Sprintf("app server (uwsgi, pid %d): %v", e.Pid, e.Err)
}
func (e *AppStartError) Unwrap() error { return e.Err }

// readyHandler passes the app server's log lines on, and turns the line
// with the readiness token into the ready event (logged as such).
type readyHandler struct {
	slog.Handler
	token string
	ready func()
}

func (h *readyHandler) Handle(ctx context.Context, r slog.Record) error {
	// The line the log action prints ends with the token (log-date may
	// prefix it); the line uWSGI logs before it (running "log:TOKEN"
	// (accepting1)...) does not.
	if strings.HasSuffix(strings.TrimSpace(r.Message), h.token) {
		h.ready()
		nr := slog.NewRecord(r.Time, slog.LevelInfo, "app server accepting connections", r.PC)
		r.Attrs(func(a slog.Attr) bool { nr.AddAttrs(a); return true })
		// PID 1's own record (the emperor's log too), not a line of the
		// app server's output (outputCtx: the log file only).
		return h.Handler.Handle(context.Background(), nr)
	}
	if strings.Contains(r.Message, h.token) {
		return nil // uWSGI's "running "log:TOKEN" (accepting1)...": our hook, not the tenant's
	}
	return h.Handler.Handle(ctx, r)
}

func (h *readyHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &readyHandler{Handler: h.Handler.WithAttrs(as), token: h.token, ready: h.ready}
}

func (h *readyHandler) WithGroup(name string) slog.Handler {
	return &readyHandler{Handler: h.Handler.WithGroup(name), token: h.token, ready: h.ready}
}

// startApp starts the app server from proc's environment and directory,
// as startShell starts a daemon (proc.start: own process group,
// Pdeathsig, output line by line to the vassal's log), with its config
// and sockets as fd 3 on. UWSGI_RELOADS makes uWSGI look for its sockets
// among the inherited descriptors.
func (p *proc) startApp(path string, argv []string, extra []*os.File, reloads int, log *slog.Logger) (int, <-chan unix.WaitStatus, error) {
	env := mergeEnv(p.env, []string{"UWSGI_RELOADS=" + strconv.Itoa(reloads)})
	return p.start(path, argv, env, extra, log)
}

// appServer is the app server component. A supervisor goroutine (appRun)
// owns the uWSGI process: it starts it, waits for its accepting phase,
// restarts it by the restart policy when it dies on its own, and carries
// out reloads and the stop. It is the only reader of the process's exit.
type appServer struct {
	v     *vassal
	socks *appSockets

	mu  sync.Mutex
	run *appRun
}

// appRun is one supervised app server, from Start to Stop.
type appRun struct {
	cfg    *appConfig
	files  []*os.File
	bin    string
	token  string
	log    *slog.Logger
	policy restart.Policy
	p      *proc

	fs *procstat.FS // the vassal's /proc (nil: none)

	mu     sync.Mutex
	argv   []string
	mercy  time.Duration
	model  appModel // master and threads, for the graceful reload
	pid    int      // 0 when no process runs
	expect bool     // the next exit is a reload asked for by Reload

	ready chan struct{} // the accepting phase of the current process
	req   chan appReq
	done  chan struct{}
}

type appReq struct {
	stop  bool
	reply chan error
}

// Start starts the app server of c and waits until it accepts connections.
func (a *appServer) Start(c *config) error {
	if c.spec.App == nil {
		return nil
	}
	run, err := a.newRun(c)
	if err != nil {
		return err
	}
	first := make(chan error, 1)
	go run.supervise(first)
	if err := <-first; err != nil {
		<-run.done
		run.cfg.Close()
		return err
	}
	a.mu.Lock()
	a.run = run
	a.mu.Unlock()
	return nil
}

func jailDesc(spec *vassalfile.Spec) string {
	switch {
	case spec.PivotNew != "":
		return "pivot_root " + spec.PivotNew
	case spec.Chroot != "":
		return "chroot " + spec.Chroot
	}
	return ""
}

// newRun prepares the app server of c: binary and plugins checked in the
// vassal's root, config written, descriptors gathered.
func (a *appServer) newRun(c *config) (*appRun, error) {
	p := a.v.newProc(c, nil)
	jailed := jailDesc(c.spec)
	bin, err := findAppBinary(p.env, jailed)
	if err != nil {
		return nil, err
	}
	if err := checkAppPlugins(c.spec.App.Lines, jailed, c.spec.Where); err != nil {
		return nil, err
	}
	lines, files, safe, err := appFiles(c.spec.App.Lines, a.socks.socks)
	if err != nil {
		return nil, err
	}
	var nonce [12]byte
	if _, err := unix.Getrandom(nonce[:], 0); err != nil {
		return nil, &os.SyscallError{Syscall: "getrandom", Err: err}
	}
	cfg, err := newAppConfig(a.v.name)
	if err != nil {
		return nil, err
	}
	if err := cfg.write(uwsgi.Render(lines)); err != nil {
		cfg.Close()
		return nil, fmt.Errorf("app server config: %w", err)
	}
	run := &appRun{
		cfg: cfg, files: append([]*os.File{cfg.f}, files...), bin: bin,
		token:  fmt.Sprintf("emperor-app-accepting-%x", nonce),
		mercy:  a.v.mercyFor(c.spec),
		policy: a.v.policy,
		p:      p,
		ready:  make(chan struct{}, 1),
		req:    make(chan appReq),
		done:   make(chan struct{}),
	}
	run.argv = appArgv(bin, safe, run.token, run.mercy, appNeedsApp(c.spec.App.Lines))
	run.model = appModelOf(c.spec.App.Lines)
	run.fs = a.v.procfs
	run.log = slog.New(&readyHandler{Handler: p.log.Handler(), token: run.token, ready: run.signalReady}).With("app", appBinary)
	return run, nil
}

func (r *appRun) signalReady() {
	select {
	case r.ready <- struct{}{}:
	default:
	}
}

// spawn starts a new app server process.
func (r *appRun) spawn(reloads int) (int, <-chan unix.WaitStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	select { // a readiness left over from an earlier process
	case <-r.ready:
	default:
	}
	pid, exit, err := r.p.startApp(r.bin, r.argv, r.files, reloads, r.log)
	if err != nil {
		return 0, nil, fmt.Errorf("app server: %w", err)
	}
	r.pid = pid
	r.log.Info("app server started", "pid", pid, "argv", strings.Join(r.argv, " "))
	return pid, exit, nil
}

func (r *appRun) setPid(pid int) {
	r.mu.Lock()
	r.pid = pid
	r.mu.Unlock()
}

func describeAppExit(ws unix.WaitStatus) string {
	s := reexec.DescribeStatus(ws)
	if ws.Exited() && ws.ExitStatus() == uwsgiFailedAppCode {
		s += " (no app could be loaded)"
	}
	return s
}

// supervise owns the app server from its first start to its stop. first
// gets the outcome of the first start (nil once it accepts); after a
// failed first start supervise returns. Later, a process that dies on its
// own is started again by the restart policy; one that exits to reload
// (uWSGI without master exits 17 after SIGHUP) is started again at once.
// A reload request is answered when the process accepts again (a master
// re-execs in place on SIGHUP), or with the error that stopped it.
func (r *appRun) supervise(first chan<- error) {
	defer close(r.done)
	var (
		tr       restart.Tracker
		pid      int
		exit     <-chan unix.WaitStatus
		starting bool             // waiting for the accepting phase
		deadline <-chan time.Time // of the accepting phase
		backoff  <-chan time.Time
		waiting  []chan error // reload requests answered at the accepting phase
		rehup    bool         // a reload came while a start was reading the config
		reloads  int          // UWSGI_RELOADS of the next start
		timedOut bool
	)
	answer := func(err error) {
		if first != nil {
			first <- err
			first = nil
		}
		for _, w := range waiting {
			w <- err
		}
		waiting = nil
	}
	start := func() error {
		tr.Started(time.Now())
		np, nexit, err := r.spawn(reloads)
		if err != nil {
			return err
		}
		reloads++
		pid, exit, starting, timedOut = np, nexit, true, false
		deadline = time.After(appReadyTimeout)
		return nil
	}
	failed := func(err error) {
		r.log.Error("app server did not start", "err", err)
		answer(err)
	}
	waitBackoff := func() {
		now := time.Now()
		delay := tr.Failed(r.policy, now)
		if delay > 0 {
			r.log.Info("restarting app server", "in", delay, "failures", fmt.Sprintf("%.2f", tr.Failures(r.policy, now)))
		}
		backoff = time.After(delay)
	}
	if err := start(); err != nil {
		answer(err)
		return
	}
	for {
		select {
		case <-r.ready:
			// Accepting again: a reload asked for is done.
			r.mu.Lock()
			r.expect = false
			r.mu.Unlock()
			if !starting {
				continue
			}
			starting, deadline = false, nil
			if err := r.cfg.rewind(); err != nil {
				r.log.Warn("app server config: rewind", "err", err)
			}
			tr.Ready(time.Now())
			if rehup {
				// The config was rewritten while this start read it.
				rehup = false
				r.hup(pid)
				starting, deadline = true, time.After(appReadyTimeout)
				continue
			}
			answer(nil)

		case <-deadline:
			timedOut = true
			r.log.Error("app server not accepting connections in time, killing it", "pid", pid, "waited", appReadyTimeout)
			killProcessGroup(pid, syscall.SIGKILL)
			deadline = nil

		case ws := <-exit:
			r.setPid(0)
			oldPid := pid
			pid, exit = 0, nil
			r.mu.Lock()
			expected := r.expect
			r.expect = false
			r.mu.Unlock()
			wasStarting := starting
			starting, deadline = false, nil
			reloadExit := !timedOut && ws.Exited() && (ws.ExitStatus() == uwsgiReloadCode || (expected && ws.ExitStatus() == uwsgiEndCode))
			if reloadExit {
				// The other workers of a uWSGI without master (processes
				// > 1) finish their requests in flight and exit too. The
				// new one starts only once they are gone, so that no old
				// code answers after the reload: one that missed the
				// SIGHUP would serve the old app on the shared socket for
				// the vassal's life. Connections wait in the backlog.
				killProcessGroup(oldPid, syscall.SIGHUP)
				r.drainGroup(oldPid)
			} else {
				killProcessGroup(oldPid, syscall.SIGKILL) // what it left in its group
			}
			var err error
			switch {
			case timedOut:
				err = &AppStartError{Pid: oldPid, Err: fmt.Errorf("not accepting connections after %v", appReadyTimeout)}
			case reloadExit:
				// Reloading without a master: start it again at once.
				r.log.Info("app server exited to reload", "pid", oldPid, "status", reexec.DescribeStatus(ws))
				if err = start(); err == nil {
					continue
				}
			case wasStarting:
				err = &AppStartError{Pid: oldPid, Status: describeAppExit(ws)}
			default:
				r.log.Warn("app server exited", "pid", oldPid, "status", describeAppExit(ws))
				waitBackoff()
				continue
			}
			if first != nil {
				failed(err)
				return
			}
			if len(waiting) > 0 {
				// A reload that did not come up: the lifecycle rolls it
				// back, and that reload starts the old config.
				failed(err)
				continue
			}
			r.log.Error("app server did not start", "err", err)
			waitBackoff()

		case <-backoff:
			backoff = nil
			if err := start(); err != nil {
				r.log.Error("app server did not start", "err", err)
				waitBackoff()
			}

		case q := <-r.req:
			if q.stop {
				if pid != 0 {
					r.terminate(pid, exit)
					r.setPid(0)
				}
				answer(errors.New("app server stopped"))
				q.reply <- nil
				return
			}
			waiting = append(waiting, q.reply)
			switch {
			case pid == 0:
				// Down (backoff, or a reload that failed): start it now
				// with the current config.
				backoff = nil
				if err := start(); err != nil {
					failed(err)
					waitBackoff()
				}
			case starting:
				rehup = true
			default:
				if err := r.cfg.rewind(); err != nil {
					failed(err)
					continue
				}
				r.hup(pid)
				starting, deadline = true, time.After(appReadyTimeout)
			}
		}
	}
}

// hup asks the app server for uWSGI's graceful reload: a master waits for
// the requests in flight, re-execs itself with the rewritten config and
// inherits its sockets; a process without master finishes its request and
// exits 17.
func (r *appRun) hup(pid int) {
	select { // the next readiness is the reloaded one
	case <-r.ready:
	default:
	}
	// Without a master uWSGI exits after SIGHUP: 17 when idle, 30 (end_me)
	// when it finished a request first. Either is the reload.
	r.mu.Lock()
	r.expect = true
	r.mu.Unlock()
	r.log.Info("app server graceful reload (SIGHUP)", "pid", pid)
	r.gracefulHUP(pid)
}

// gracefulHUP sends uWSGI's graceful reload to the app server whose first
// process is pid, holding its workers so that none drops a connection it
// accepted (quiesce.go). A worker with threads finishes what it accepted
// anyway (gracefully_kill only flags it), so it gets the plain SIGHUP, as
// does every worker when the vassal has no procfs.
func (r *appRun) gracefulHUP(pid int) {
	r.mu.Lock()
	model := r.model
	r.mu.Unlock()
	if r.fs == nil || model.threads > 1 {
		_ = syscall.Kill(pid, syscall.SIGHUP)
		return
	}
	q := &quietReload{fs: r.fs, pgid: pid, budget: quietBudget, startup: workerStartup, log: r.log}
	if model.master {
		q.master = pid
	}
	q.hup()
}

// appModel is what a graceful reload needs of uWSGI's process model.
type appModel struct {
	master  bool // master (-M): SIGHUP goes to it, and it forwards it
	threads int  // threads per worker
}

// appModelOf reads master and threads from the app server's lines (the
// last of each wins, as in uWSGI).
func appModelOf(lines []vassalfile.AppLine) appModel {
	m := appModel{threads: 1}
	for _, l := range lines {
		v := strings.TrimSpace(l.Value)
		switch l.Key {
		case "master", "M":
			m.master = uwsgiTrue(v)
		case "threads":
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				m.threads = n
			}
		}
	}
	return m
}

// drainGroup waits, up to reload-mercy, for the process group of an app
// server without master that exited to reload to empty, then SIGKILLs
// what is left of it (a worker that missed the SIGHUP) and waits for that.
// The group's members are orphans: PID 1 (a subreaper) reaps them, and
// kill(-pgid, 0) answers ESRCH once the last is gone. Its pgid cannot name
// another group while one member is left.
func (r *appRun) drainGroup(pgid int) {
	r.mu.Lock()
	mercy := r.mercy
	r.mu.Unlock()
	empty := func() bool { return errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH) }
	deadline := time.Now().Add(mercy)
	for !empty() {
		if time.Now().After(deadline) {
			r.log.Warn("a worker of the app server ignored the reload's SIGHUP, killed", "pgid", pgid, "mercy", mercy)
			killProcessGroup(pgid, syscall.SIGKILL)
			for end := time.Now().Add(killWait); !empty() && time.Now().Before(end); {
				time.Sleep(drainPoll)
			}
			return
		}
		time.Sleep(drainPoll)
	}
}

// drainPoll is how often drainGroup looks whether the old group is empty.
const drainPoll = 5 * time.Millisecond

// terminate stops the app server within reload-mercy: SIGINT (uWSGI 2.0's
// shutdown: kill_them_all with a master, end_me without), SIGKILL to its
// process group after mercy, then SIGKILL to what is left in the group.
func (r *appRun) terminate(pid int, exit <-chan unix.WaitStatus) {
	r.mu.Lock()
	mercy := r.mercy
	r.mu.Unlock()
	var ws unix.WaitStatus
	gone := reaped(exit, &ws)
	_ = syscall.Kill(pid, syscall.SIGINT)
	t := time.NewTimer(mercy)
	defer t.Stop()
	select {
	case <-gone:
		r.log.Info("app server stopped", "pid", pid, "status", reexec.DescribeStatus(ws))
	case <-t.C:
		killProcessGroup(pid, syscall.SIGKILL)
		k := time.NewTimer(killWait)
		defer k.Stop()
		select {
		case <-gone:
			r.log.Warn("app server ignored SIGINT, killed", "pid", pid, "mercy", mercy)
		case <-k.C:
			r.log.Error("app server still there after SIGKILL (uninterruptible sleep?)", "pid", pid, "waited", killWait)
		}
	}
	killProcessGroup(pid, syscall.SIGKILL)
}

func (r *appRun) request(stop bool) error {
	q := appReq{stop: stop, reply: make(chan error, 1)}
	select {
	case r.req <- q:
		return <-q.reply
	case <-r.done:
		return errors.New("app server is not supervised any more")
	}
}

// Apply moves the app server to new: its config is rewritten and it
// reloads gracefully (SIGHUP); Apply returns once it accepts again. A
// vassal that gains or loses its app starts or stops it. A new config that
// does not come up is an error: the lifecycle rolls the reload back, which
// brings the old config up again.
func (a *appServer) Apply(old, new *config) error {
	a.mu.Lock()
	run := a.run
	a.mu.Unlock()
	switch {
	case new.spec.App == nil && run == nil:
		return nil
	case new.spec.App == nil:
		a.Stop()
		return nil
	case run == nil:
		return a.Start(new)
	}
	if err := checkAppPlugins(new.spec.App.Lines, jailDesc(new.spec), new.spec.Where); err != nil {
		return err
	}
	lines, _, _, err := appFiles(new.spec.App.Lines, a.socks.socks)
	if err != nil {
		return err
	}
	if err := run.cfg.write(uwsgi.Render(lines)); err != nil {
		return fmt.Errorf("app server config: %w", err)
	}
	mercy := a.v.mercyFor(new.spec)
	run.mu.Lock()
	run.argv = appArgv(run.bin, safeOf(run.argv), run.token, mercy, appNeedsApp(new.spec.App.Lines))
	run.mercy = mercy
	run.model = appModelOf(new.spec.App.Lines)
	run.mu.Unlock()
	return run.request(false)
}

// safeOf returns the extra --safe-fd descriptors of argv (the routers'
// sockets), which do not change with the config.
func safeOf(argv []string) []int {
	var out []int
	for i := 0; i+1 < len(argv); i++ {
		if argv[i] == "--safe-fd" {
			if n, err := strconv.Atoi(argv[i+1]); err == nil && n != appConfigFD {
				out = append(out, n)
			}
		}
	}
	return out
}

// Stop shuts the app server down within reload-mercy.
func (a *appServer) Stop() {
	a.mu.Lock()
	run := a.run
	a.run = nil
	a.mu.Unlock()
	if run == nil {
		return
	}
	_ = run.request(true)
	run.cfg.Close()
}

// Running says whether an app server process is up.
func (a *appServer) Running() bool {
	a.mu.Lock()
	run := a.run
	a.mu.Unlock()
	if run == nil {
		return false
	}
	run.mu.Lock()
	defer run.mu.Unlock()
	return run.pid != 0
}

// Reload sends uWSGI 2.0's reload signal to the app server: SIGHUP for a
// graceful reload, SIGTERM for a brutal one, with the config it runs. It
// does not wait; a uWSGI without master exits, and the supervisor starts
// it again at once.
func (a *appServer) Reload(graceful bool) error {
	sig := syscall.SIGTERM
	if graceful {
		sig = syscall.SIGHUP
	}
	a.mu.Lock()
	run := a.run
	a.mu.Unlock()
	if run == nil {
		return errors.New("app server: not running")
	}
	if err := run.cfg.rewind(); err != nil {
		return err
	}
	run.mu.Lock()
	run.expect = true
	pid := run.pid
	run.mu.Unlock()
	if graceful && pid != 0 {
		run.log.Info("app server graceful reload (SIGHUP)", "pid", pid)
		run.gracefulHUP(pid)
		return nil
	}
	return a.Signal(sig)
}

// Signal sends sig to the app server's master (or its only process).
func (a *appServer) Signal(sig syscall.Signal) error {
	a.mu.Lock()
	run := a.run
	a.mu.Unlock()
	if run == nil {
		return errors.New("app server: not running")
	}
	run.mu.Lock()
	pid := run.pid
	run.mu.Unlock()
	if pid == 0 {
		return errors.New("app server: not running (restarting)")
	}
	if err := syscall.Kill(pid, sig); err != nil {
		return fmt.Errorf("app server: %s to pid %d: %w", sig, pid, err)
	}
	return nil
}

func netipFrom16(b [16]byte) string { return netip.AddrFrom16(b).String() }
