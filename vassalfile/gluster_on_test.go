//go:build !nogluster && cgo

package vassalfile

import (
	"strings"
	"testing"
)

func TestGlusterSeedConfigs(t *testing.T) {
	src := `[uwsgi]
http-socket = :9090
http-socket-modifier1 = 27
glusterfs-mount = mountpoint=/,volume=unbit001,server=192.168.173.1:0;192.168.173.2:0;192.168.173.3:0
glusterfs-mount = mountpoint=/foo,volume=unbit002,servers=/run/glusterd.socket
glusterfs-mount = mountpoint=/bar,volume=unbit003,volfile=/etc/unbit003.vol
static-map = /static=/srv/static
threads = 30
static-cache-max-file = 1M
static-cache-size = 64m
`
	f := mustParse(t, src, ParseOptions{})
	s, err := Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if s.Threads != 30 || len(s.GlusterMounts) != 3 || s.CacheMaxFile != 1<<20 || s.CacheSize != 64<<20 || s.StaticIndex[0] != "index.html" {
		t.Fatalf("%+v", s)
	}
	m := s.GlusterMounts[0]
	if m.Mountpoint != "/" || m.Volume != "unbit001" || len(m.Servers) != 3 || m.Servers[1] != (GlusterServer{"tcp", "192.168.173.2", 24007}) {
		t.Fatalf("%+v", m)
	}
	if u := s.GlusterMounts[1].Servers[0]; u.Transport != "unix" || u.Host != "/run/glusterd.socket" {
		t.Fatalf("%+v", u)
	}
	if s.GlusterMounts[2].Volfile != "/etc/unbit003.vol" || s.StaticMaps[0].Prefix != "/static" {
		t.Fatalf("%+v", s)
	}
}

func TestHTTPOptionErrors(t *testing.T) {
	for body, want := range map[string]string{
		"http-socket = :1\nhttp-socket-modifier1 = 5":                     "only 27",
		"http-socket = :1\nglusterfs-mount = volume=v":                    "server= (or servers=, or volfile=) is required",
		"http-socket = :1\nglusterfs-mount = mountpoint=/,server=h:0":     "volume= is required",
		"http-socket = :1\nglusterfs-mount = volume=v,server=h:99999":     "want HOST:PORT",
		"http-socket = :1\nglusterfs-mount = volume=v,server=h:1,bogus=1": "unknown glusterfs-mount key",
		"http-socket = :1\nstatic-map = static=/x":                        "/prefix=/dir",
		"http-socket = :1\nthreads = 0":                                   "count from 1",
		"http-socket = :1\nstatic-cache-size = lots":                      "not a size",
	} {
		_, err := parse(t, "[uwsgi]\n"+body+"\n", ParseOptions{})
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "app001.ini:3:") {
			t.Errorf("%q: got %v, want %q at line 3", body, err, want)
		}
	}
	for body, want := range map[string]string{
		"static-map = /=/a\nstatic-map = /=/b\nhttp-socket = :1": "already mounted at line 2",
		"glusterfs-mount = volume=v,server=h:0":                  "nothing serves this mount",
	} {
		f := mustParse(t, "[uwsgi]\n"+body+"\n", ParseOptions{})
		if _, err := Decode(f); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", body, err, want)
		}
	}
}
