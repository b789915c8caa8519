package vassalfile

import (
	"testing"
	"time"
)

var benchSrc = []byte(`[uwsgi]
plugins-dir = /ns/precise/opt/uwsgi/plugins
uid = user001
gid = user001
hook-pre-jail = callret:chdir /
hook-pre-jail = exec:unionfs-fuse -ocow,chroot=/ns,default_permissions,allow_other /precise=RO:/cow/%(uid)=RW /ufs
pivot_root = /ufs /ufs/.old_root
hook-as-root = mount:proc none /proc
hook-as-root = mount:none /.old_root/dev /dev bind
hook-as-root = umount:/.old_root rec,detach
if-not-reload =
exec-as-user = fuse-zip -r /var/www/%n.zip /app
endif =
for = a b c d
env = X_%(_)=$(HOME:-/root)
endfor =
attach-daemon = exec busybox httpd -f -p 127.0.0.1:9090 -h /app
mountpoint-check = /
`)

// BenchmarkParse is the cost of reading a tutorial-sized vassal file, paid
// by the emperor on every change and by the vassal on start and reload.
func BenchmarkParse(b *testing.B) {
	o := ParseOptions{Hostname: "h", Now: func() time.Time { return time.Unix(0, 0) }}
	b.ReportAllocs()
	for b.Loop() {
		f, err := Parse("/etc/uwsgi/vassals/app001.ini", benchSrc, o)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Decode(f); err != nil {
			b.Fatal(err)
		}
	}
}
