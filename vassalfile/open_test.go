package vassalfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A FIFO, a directory or a device is refused at once with an error naming
// the file; nothing blocks (a FIFO without a writer would block a plain
// open forever). A symlink to a regular file is followed.
func TestReadFileRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.ini")
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.ini")
	if err := os.Symlink(fifo, link); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{fifo, link, dir, "/dev/null"} {
		done := make(chan error, 1)
		go func() { _, err := ReadFile(p); done <- err }()
		select {
		case err := <-done:
			var nr *NotRegularError
			if !errors.As(err, &nr) || nr.Path != p {
				t.Errorf("%s: err = %v, want a NotRegularError naming it", p, err)
			}
		case <-time.After(time.Minute):
			t.Fatalf("%s: ReadFile blocked", p)
		}
	}
	real := filepath.Join(dir, "real")
	if err := os.WriteFile(real, []byte("[uwsgi]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.ini")
	if err := os.Symlink(real, good); err != nil {
		t.Fatal(err)
	}
	b, fi, err := ReadFileStat(good)
	if err != nil || string(b) != "[uwsgi]\n" || !fi.Mode().IsRegular() {
		t.Fatalf("through a symlink: %q %v %v", b, fi, err)
	}
}
