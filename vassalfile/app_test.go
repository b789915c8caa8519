package vassalfile

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/emperor-dev/emperor/uwsgi"
)

// seed003Zip is the tutorial's first vassal (seed 003), verbatim.
const seed003Zip = `[uwsgi]
uid = user001
gid = user001

; mount FUSE filesystem under /app (but only if it is not a reload)
if-not-reload =
  exec-as-user = fuse-zip -r /var/www/app001.zip /app
endif =

http-socket = :9090
psgi = /app/myapp.pl

mountpoint-check = /app
`

// seed003Cow is the tutorial's copy-on-write vassal (seed 003), verbatim.
const seed003Cow = `[uwsgi]
; choose the approach that suits you best (plugins loading)
; this will be used for the first run ...
plugins-dir = /ns/precise/opt/uwsgi/plugins
; and this after a reload (where our rootfs is already /ns/precise)
plugins-dir = /opt/uwsgi/plugins
plugin = psgi

; drop privileges
uid = user001
gid = user001

; chdir to / to avoid problems after pivot_root
hook-pre-jail = callret:chdir /
; run unionfs-fuse using chroot (it is required to avoid deadlocks) and cow (we mount it under /ufs)
hook-pre-jail = exec:unionfs-fuse -ocow,chroot=/ns,default_permissions,allow_other /precise=RO:/cow/%(uid)=RW /ufs

; change the rootfs to the unionfs one
; the .old_root directory is where the old rootfs is still available
pivot_root = /ufs /ufs/.old_root

; now we are in the new rootfs and in 'as-root' phase
; remount the /proc filesystem
hook-as-root = mount:proc none /proc
; bind mount the original /dev in the new rootfs (simplifies things a lot)
hook-as-root = mount:none /.old_root/dev /dev bind
; recursively un-mount the old rootfs
hook-as-root = umount:/.old_root rec,detach

; common bind
http-socket = :9090

; load the app (fix it according to your requirements)
psgi = /var/www/myapp.pl

; constantly check for the rootfs (seems odd but is is very useful)
mountpoint-check = /
`

func decodeSrc(t *testing.T, src string, o ParseOptions) (*File, *Spec) {
	t.Helper()
	f := mustParse(t, src, o)
	s, err := Decode(f)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return f, s
}

func TestSeed003ZipRunsPSGIWithItsPlugin(t *testing.T) {
	f, s := decodeSrc(t, seed003Zip, ParseOptions{})
	if len(f.Warnings) != 0 {
		t.Fatalf("warnings: %v", f.Warnings)
	}
	if s.App == nil {
		t.Fatal("psgi asks for an app; Spec.App is nil")
	}
	want := []AppLine{{Key: "plugin", Value: "psgi"}, {Key: "http-socket", Value: ":9090", Line: 10}, {Key: "psgi", Value: "/app/myapp.pl", Line: 11}}
	if !reflect.DeepEqual(s.App.Lines, want) {
		t.Fatalf("app lines %+v, want %+v", s.App.Lines, want)
	}
	if !reflect.DeepEqual(s.App.Sockets, want[1:2]) {
		t.Fatalf("sockets %+v", s.App.Sockets)
	}
	// Ours: the user, the hook, the mount check. Not ours: http-socket
	// (our file server does not bind it).
	if s.UID != "user001" || len(s.Hooks) != 1 || !reflect.DeepEqual(s.MountChecks, []string{"/app"}) || s.HTTPSockets != nil {
		t.Fatalf("spec %+v", s)
	}
	// On a reload the hook is skipped; the app is the same.
	_, rs := decodeSrc(t, seed003Zip, ParseOptions{Reload: true})
	if len(rs.Hooks) != 0 || !reflect.DeepEqual(rs.App, s.App) {
		t.Fatalf("reload: hooks %v app %+v", rs.Hooks, rs.App)
	}
}

func TestSeed003CowKeepsItsPluginLines(t *testing.T) {
	_, s := decodeSrc(t, seed003Cow, ParseOptions{})
	want := []AppLine{
		{Key: "plugins-dir", Value: "/ns/precise/opt/uwsgi/plugins", Line: 4},
		{Key: "plugins-dir", Value: "/opt/uwsgi/plugins", Line: 6},
		{Key: "plugin", Value: "psgi", Line: 7},
		{Key: "http-socket", Value: ":9090", Line: 31},
		{Key: "psgi", Value: "/var/www/myapp.pl", Line: 34},
	}
	if s.App == nil || !reflect.DeepEqual(s.App.Lines, want) {
		t.Fatalf("app %+v", s.App)
	}
	if s.PivotNew != "/ufs" || len(s.Hooks) != 5 || s.HTTPSockets != nil {
		t.Fatalf("spec %+v", s)
	}
}

func TestNoAppKeepsSharedOptionsOurs(t *testing.T) {
	f, s := decodeSrc(t, "[uwsgi]\nhttp-socket = 127.0.0.1:8080\nstatic-map = /=/srv\nthreads = 8\nmaster = true\nprocesses = 4\n", ParseOptions{})
	if s.App != nil {
		t.Fatalf("app %+v", s.App)
	}
	if !reflect.DeepEqual(s.HTTPSockets, []string{"127.0.0.1:8080"}) || s.Threads != 8 || len(s.StaticMaps) != 1 {
		t.Fatalf("spec %+v", s)
	}
	if len(f.Warnings) != 2 || f.Warnings[0].Line != 5 || f.Warnings[1].Line != 6 ||
		!strings.Contains(f.Warnings[1].Message, "processes has no effect: this vassal runs no app server") {
		t.Fatalf("warnings %v", f.Warnings)
	}
}

func TestSharedValueIsUWSGIsWithAnApp(t *testing.T) {
	// A unix socket and a modifier1 of 5 are uWSGI's to read when it runs
	// the app; without an app they are our file server's, and wrong.
	src := "[uwsgi]\nhttp-socket = /run/app.sock\nhttp-socket-modifier1 = 5\nthreads = 2\n"
	_, err := parse(t, src, ParseOptions{})
	d := diags(t, err)
	if len(d) != 2 || d[0].Line != 2 || d[1].Line != 3 || !strings.Contains(d[0].Message, "http-socket:") {
		t.Fatalf("without app: %v", err)
	}
	_, s := decodeSrc(t, src+"module = app:application\n", ParseOptions{})
	want := []AppLine{{Key: "plugin", Value: "python3"}, {Key: "http-socket", Value: "/run/app.sock", Line: 2},
		{Key: "http-socket-modifier1", Value: "5", Line: 3}, {Key: "threads", Value: "2", Line: 4},
		{Key: "module", Value: "app:application", Line: 5}}
	if !reflect.DeepEqual(s.App.Lines, want) || s.Threads != DefaultOf[int]("threads") {
		t.Fatalf("app %+v threads %d", s.App.Lines, s.Threads)
	}
}

func TestAliasKeepsItsNameForUWSGI(t *testing.T) {
	// http11-socket is our alias of http-socket, but a different socket in
	// uWSGI (keep-alive): uWSGI gets the name as written.
	_, s := decodeSrc(t, "[uwsgi]\nhttp11-socket = :8080\nwsgi-file = /srv/app.py\n", ParseOptions{})
	if s.App.Lines[1].Key != "http11-socket" || len(s.App.Sockets) != 1 || s.App.Sockets[0].Key != "http11-socket" {
		t.Fatalf("app %+v", s.App)
	}
}

func TestWhatAsksForAnApp(t *testing.T) {
	for src, app := range map[string]bool{
		"socket = 127.0.0.1:3031":               true,
		"uwsgi-socket = /run/a.sock":            true,
		"http = :8080":                          true,
		"https = :8443,a.crt,a.key":             true,
		"fastcgi-socket = :9000":                true,
		"php-docroot = /var/www":                true,
		"php-index = index.php":                 true,
		"mount = /app=app.py":                   true,
		"module = app":                          true,
		"http-socket = :8080":                   false,
		"plugin = python3":                      false,
		"pythonpath = /srv":                     false,
		"chmod-socket = 660":                    false,
		"attach-daemon = sleep 100":             false,
		"static-map = /=/srv\nhttp-socket = :1": false,
	} {
		f := mustParse(t, "[uwsgi]\n"+src+"\n", ParseOptions{})
		if got := AsksForApp(f.Entries); got != app {
			t.Errorf("%q asks for an app: %v, want %v", src, got, app)
		}
	}
}

func TestPluginsAutoLoadedInOrderOfUse(t *testing.T) {
	_, s := decodeSrc(t, "[uwsgi]\nhttp = :8080\nmodule = app\nhttp-to = /run/x.sock\npsgi = a.pl\n", ParseOptions{})
	var keys []string
	for _, l := range s.App.Lines {
		keys = append(keys, l.Key+"="+l.Value)
	}
	want := "plugin=http plugin=python3 plugin=psgi http=:8080 module=app http-to=/run/x.sock psgi=a.pl"
	if strings.Join(keys, " ") != want {
		t.Fatalf("got %s", strings.Join(keys, " "))
	}
	if s.App.Lines[0].Line != 0 || len(s.App.Sockets) != 1 || s.App.Sockets[0].Key != "http" {
		t.Fatalf("app %+v", s.App)
	}
	// A plugin the file names is not loaded again; one it needs and does
	// not name is (files that name only their language plugin, written
	// for a uWSGI with http built in).
	_, s = decodeSrc(t, "[uwsgi]\nplugins = python3\nmodule = app\nsocket = :3031\n", ParseOptions{})
	if len(s.App.Lines) != 3 || s.App.Lines[0].Key != "plugins" {
		t.Fatalf("app %+v", s.App)
	}
	_, s = decodeSrc(t, "[uwsgi]\nplugins = psgi\nhttp = :8080\nhttp-modifier1 = 5\npsgi = app.psgi\n", ParseOptions{})
	if len(s.App.Lines) != 5 || s.App.Lines[0] != (AppLine{Key: "plugin", Value: "http"}) || s.App.Lines[1].Key != "plugins" {
		t.Fatalf("app %+v", s.App)
	}
}

func TestCatalogOptionsArePlaceholders(t *testing.T) {
	_, s := decodeSrc(t, "[uwsgi]\nprocesses = 4\nmodule = app\nenv = WORKERS=%(processes)\n", ParseOptions{})
	if !reflect.DeepEqual(s.Env, []string{"WORKERS=4"}) {
		t.Fatalf("env %q", s.Env)
	}
}

func TestUWSGITypoGetsAHint(t *testing.T) {
	_, err := parse(t, "[uwsgi]\nmodule = app\nproceses = 4\nwsgi-flie = a.py\n", ParseOptions{})
	d := diags(t, err)
	if len(d) != 2 || !strings.Contains(d[0].Message, `did you mean "processes"`) || !strings.Contains(d[1].Message, `did you mean "wsgi-file"`) {
		t.Fatalf("%v", err)
	}
}

func TestAppOptionsInEmperorConfigAreIgnored(t *testing.T) {
	f := mustParse(t, "[uwsgi]\nemperor = /etc/uwsgi/vassals\nmaster = true\nvacuum = true\nemperor-broodlord = 4\n", ParseOptions{Scope: ScopeEmperor})
	if len(f.Warnings) != 3 || !strings.Contains(f.Warnings[2].Message, "emperor-broodlord has no effect under this emperor") {
		t.Fatalf("warnings %v", f.Warnings)
	}
	if len(f.Entries) != 1 {
		t.Fatalf("entries %v", f.Entries)
	}
}

func TestFileServerOptionsWithAnApp(t *testing.T) {
	f, s := decodeSrc(t, "[uwsgi]\nmodule = app\nhttp-socket = :8080\nstatic-map = /s=/srv/static\nstatic-cache-ttl = 5\n", ParseOptions{})
	if len(f.Warnings) != 1 || f.Warnings[0].Line != 5 || !strings.Contains(f.Warnings[0].Message, "static-cache-ttl has no effect: this vassal runs an app") {
		t.Fatalf("warnings %v", f.Warnings)
	}
	if s.StaticMaps != nil || len(s.App.Lines) != 4 {
		t.Fatalf("spec %+v app %+v", s, s.App)
	}
	// glusterfs-mount is ours, and cannot share http-socket with uWSGI.
	_, err := parse(t, "[uwsgi]\nmodule = app\nhttp-socket = :8080\nglusterfs-mount = mountpoint=/,volume=v,server=127.0.0.1:0\n", ParseOptions{})
	d := diags(t, err)
	want := "runs an app"
	if !glusterBuilt {
		want = "without GlusterFS"
	}
	if len(d) != 1 || d[0].Line != 4 || !strings.Contains(d[0].Message, want) {
		t.Fatalf("%v", err)
	}
}

func TestOwners(t *testing.T) {
	for _, o := range Options() {
		_, known := uwsgi.Lookup(o.Name)
		if o.Owner == OwnerShared && !known {
			t.Errorf("%s is shared but uWSGI %s does not know it", o.Name, uwsgi.Version)
		}
		if o.Owner == OwnerShared && fileServerOnly[o.Name] {
			t.Errorf("%s is shared and file-server-only", o.Name)
		}
	}
	for name, want := range map[string]Owner{
		"uid": OwnerEmperor, "chdir": OwnerEmperor, "mountpoint-check": OwnerEmperor, "glusterfs-mount": OwnerEmperor,
		"http-socket": OwnerShared, "static-map": OwnerShared, "threads": OwnerShared, "disable-logging": OwnerShared,
		"master": OwnerApp, "processes": OwnerApp, "plugin": OwnerApp, "plugins-dir": OwnerApp,
		"cheaper": OwnerApp, "listen": OwnerApp, "offload-threads": OwnerApp, "psgi": OwnerApp,
	} {
		if got := ownerOf(name); got != want {
			t.Errorf("owner of %s: %v, want %v", name, got, want)
		}
	}
}

// TestProcessModelWithoutAppSaysWhatToDo: uWSGI's process-model options
// are handed to uWSGI in a vassal that runs an app; without one each is
// accepted with a warning that says what to do.
func TestProcessModelWithoutAppSaysWhatToDo(t *testing.T) {
	opts := "master = true\nprocesses = 4\nworkers = 2\ncheaper = 1\ncheaper-algo = spare\nlisten = 1024\noffload-threads = 2\nharakiri = 30\nmax-requests = 1000\nbuffer-size = 32768\n"
	f, s := decodeSrc(t, "[uwsgi]\nattach-daemon = sleep 1000\n"+opts, ParseOptions{})
	if s.App != nil {
		t.Fatalf("app %+v", s.App)
	}
	if len(f.Warnings) != 10 {
		t.Fatalf("%d warnings: %v", len(f.Warnings), f.Warnings)
	}
	for i, w := range f.Warnings {
		key, _, _ := strings.Cut(strings.Split(opts, "\n")[i], " =")
		if w.Line != i+3 || w.Message != key+" has no effect: this vassal runs no app server; it configures uWSGI's app server, which runs only for a file with a loader (module, wsgi-file, psgi...), a uwsgi socket or the http router: remove the line, or add your app's loader" {
			t.Errorf("warning %d: %v", i, w)
		}
		if strings.Contains(w.String(), "…") {
			t.Errorf("warning %d is clipped: %v", i, w)
		}
	}
	f, s = decodeSrc(t, "[uwsgi]\nmodule = app:application\n"+opts, ParseOptions{})
	if len(f.Warnings) != 0 || s.App == nil {
		t.Fatalf("with an app: warnings %v, app %+v", f.Warnings, s.App)
	}
	var keys []string
	for _, l := range s.App.Lines {
		if l.Line > 2 {
			keys = append(keys, l.Key+"="+l.Value)
		}
	}
	if got := strings.Join(keys, " "); got != "master=true processes=4 workers=2 cheaper=1 cheaper-algo=spare listen=1024 offload-threads=2 harakiri=30 max-requests=1000 buffer-size=32768" {
		t.Fatalf("uWSGI gets %s", got)
	}
}

// TestStatsIsSharedAndCronOurs: stats and its framing options are ours
// without an app and uWSGI's with one; cron lines are ours in both.
func TestStatsIsSharedAndCronOurs(t *testing.T) {
	body := "stats = 127.0.0.1:9191\nstats-http = true\nstats-min = true\ncron = -1 -1 -1 -1 -1 true\ncron-harakiri = 60\n"
	_, s := decodeSrc(t, "[uwsgi]\n"+body, ParseOptions{})
	if s.App != nil || s.Stats != "127.0.0.1:9191" || !s.StatsHTTP || !s.StatsMinified || len(s.Crons) != 1 {
		t.Fatalf("without an app: %+v", s)
	}
	_, s = decodeSrc(t, "[uwsgi]\npsgi = /app/app.pl\n"+body, ParseOptions{})
	if s.App == nil || s.Stats != "" || s.StatsHTTP || len(s.Crons) != 1 || s.CronHarakiri != time.Minute {
		t.Fatalf("with an app: %+v", s)
	}
	var keys []string
	for _, l := range s.App.Lines {
		keys = append(keys, l.Key+"="+l.Value)
	}
	if got := strings.Join(keys, " "); got != "plugin=psgi psgi=/app/app.pl stats=127.0.0.1:9191 stats-http=true stats-min=true" {
		t.Fatalf("uWSGI gets %s", got)
	}
	_, err := parse(t, "[uwsgi]\nstats = 127.0.0.1:99999\n", ParseOptions{})
	if err == nil || !strings.Contains(err.Error(), `app001.ini:2: stats: "127.0.0.1:99999": bad port "99999"`) {
		t.Fatalf("bad stats address: %v", err)
	}
}

func TestNeedAppWithoutAppIsAnError(t *testing.T) {
	_, err := parse(t, "[uwsgi]\nneed-app = true\nmaster = true\nattach-daemon = sleep 1\n", ParseOptions{})
	d := diags(t, err)
	if len(d) != 1 || d[0].Line != 2 || !strings.Contains(d[0].Message, "need-app: this vassal loads no app") {
		t.Fatalf("%v", err)
	}
	mustParse(t, "[uwsgi]\nneed-app = false\nattach-daemon = sleep 1\n", ParseOptions{})
	mustParse(t, "[uwsgi]\nneed-app = true\nwsgi-file = app.py\n", ParseOptions{})
}
