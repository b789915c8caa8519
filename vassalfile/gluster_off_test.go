//go:build nogluster || !cgo

package vassalfile

import (
	"strings"
	"testing"
)

// Built without libgfapi, glusterfs-mount is a clear error at check time.
func TestGlusterMountWithoutGluster(t *testing.T) {
	_, err := parse(t, "[uwsgi]\nhttp-socket = :1\nglusterfs-mount = mountpoint=/,volume=v,server=h:0\n", ParseOptions{})
	if err == nil || !strings.Contains(err.Error(), "built without GlusterFS support (-tags nogluster)") || !strings.Contains(err.Error(), "app001.ini:3:") {
		t.Fatalf("%v", err)
	}
}
