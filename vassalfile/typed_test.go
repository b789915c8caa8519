package vassalfile

import (
	"strings"
	"testing"
	"time"

	"github.com/emperor-dev/emperor/hooks"
	"github.com/emperor-dev/emperor/reexec"
)

// TestDefaultsInTheRegistry: the defaults a Spec gets are the registry's
// documented ones, parsed once; nothing else holds them.
func TestDefaultsInTheRegistry(t *testing.T) {
	s, err := Decode(mustParse(t, "[uwsgi]\n", ParseOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	if s.Threads != 64 || s.HookTimeout != 60*time.Second || s.CheckInterval != time.Second ||
		s.CheckTimeout != 3*time.Second || s.GlusterTimeout != 10*time.Second || s.CacheTTL != time.Second ||
		s.CacheMaxFile != 16<<20 || s.CacheSize != 256<<20 || strings.Join(s.StaticIndex, ",") != "index.html" ||
		s.ReloadMercy != 0 || s.StaticAutoindex || s.DisableLogging {
		t.Fatalf("defaults: %+v", s)
	}
	if DefaultOf[time.Duration]("reload-mercy") != 30*time.Second || DefaultOf[time.Duration]("emperor-freq") != 3*time.Second ||
		DefaultOf[time.Duration]("emperor-throttle") != time.Second || DefaultOf[int]("emperor-restart-burst") != 5 ||
		DefaultOf[reexec.Namespaces]("emperor-use-clone") != reexec.DefaultNamespaces {
		t.Fatal("emperor defaults differ from the documented ones")
	}
	// Every option whose default is a value has it parsed, as its type.
	for _, o := range Options() {
		if o.Kind == KindIgnored || o.Default == "-" || strings.HasPrefix(o.Default, "(") {
			continue
		}
		if o.def == nil {
			t.Errorf("%s: default %q not parsed", o.Name, o.Default)
		}
	}
}

// TestValuesParsedOnce: each value is parsed by the parser into its typed
// form, which Decode only reads.
func TestValuesParsedOnce(t *testing.T) {
	f := mustParse(t, `[uwsgi]
threads = 8
static-autoindex = yes
hook-timeout = 2.5
static-cache-size = 1M
unshare = uts
exec-asap = echo hi
smart-attach-daemon = /run/x.pid xd --fork
attach-daemon = sleep 1
static-map = /s=/srv
http-socket = 127.0.0.1:8080
pivot_root = /new /new/old
`, ParseOptions{})
	want := map[string]any{
		"threads": 8, "static-autoindex": true, "hook-timeout": 2500 * time.Millisecond,
		"static-cache-size": int64(1 << 20), "unshare": reexec.NSUTS,
		"smart-attach-daemon": Daemon{Command: "xd --fork", Pidfile: "/run/x.pid", Smart: true},
		"attach-daemon":       "sleep 1", "static-map": StaticMap{Prefix: "/s", Dir: "/srv"},
		"pivot_root": PivotRoot{"/new", "/new/old"},
	}
	for _, e := range f.Entries {
		if w, ok := want[e.Key]; ok && e.Val != w {
			t.Errorf("%s: Val %#v, want %#v", e.Key, e.Val, w)
		}
	}
	if h, ok := f.Entries[5].Val.(hooks.Hook); !ok || h.Action != "exec" {
		t.Errorf("exec-asap: Val %#v", f.Entries[5].Val)
	}
	s, err := Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if s.Threads != 8 || !s.StaticAutoindex || s.HookTimeout != 2500*time.Millisecond || s.CacheSize != 1<<20 ||
		len(s.Hooks) != 1 || s.Hooks[0].Line != 7 || len(s.Daemons) != 2 || !s.Daemons[0].Smart || s.Daemons[0].Line != 8 ||
		s.Daemons[1].Command != "sleep 1" || s.PivotNew != "/new" || s.PivotOld != "/new/old" {
		t.Fatalf("spec %+v", s)
	}
	// A File that Parse did not produce is refused, not decoded with zeros.
	_, err = Decode(&File{Path: "/x.ini", Entries: []Entry{{Key: "threads", Value: "8", Line: 3}}})
	if err == nil || !strings.Contains(err.Error(), "/x.ini:3: threads: value \"8\" was not parsed") {
		t.Fatalf("hand-made File: %v", err)
	}
}
