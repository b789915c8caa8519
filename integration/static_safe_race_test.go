package integration

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Issue 9 §2: a root vassal's static-safe folder that a tenant can write
// to. Its directory d is swapped for a symlink to a root-only folder (an
// atomic RENAME_EXCHANGE, in a loop) while /x, a symlink into d, is fetched
// with the cache off. A check of where the symlink leads followed by an
// open by name served the secret (the old code: some percent of the
// replies); an openat2 RESOLVE_BENEATH from the safe folder can only land
// beneath it, so every reply is the harmless file or 403 (never a 500 from
// a component that changed while it was read).
func TestStaticSafeSwapRace(t *testing.T) {
	root, safe, private := publicDir(t), publicDir(t), publicDir(t)
	secret := fmt.Sprintf("SECRET-%d", time.Now().UnixNano())
	if err := os.WriteFile(filepath.Join(private, "shadow"), []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	d, alt := filepath.Join(safe, "d"), filepath.Join(safe, "alt")
	os.MkdirAll(d, 0o755)
	os.WriteFile(filepath.Join(d, "shadow"), []byte("harmless\n"), 0o644)
	if err := os.Symlink(private, alt); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(d, "shadow"), filepath.Join(root, "x")); err != nil {
		t.Fatal(err)
	}
	e := startEmperor(t)
	port := freePort(t)
	e.install("safe", fmt.Sprintf("[uwsgi]\nhttp-socket = 127.0.0.1:%d\nhttp-socket-modifier1 = 27\nstatic-map = /=%s\nstatic-safe = %s\nstatic-cache-ttl = 0\n", port, root, safe))
	e.waitMounts("safe", time.Minute)
	url := fmt.Sprintf("http://127.0.0.1:%d/x", port)
	if code, b, err := bodyOf(url); err != nil || code != 200 || string(b) != "harmless\n" {
		t.Fatalf("before the swaps: %d %q %v", code, b, err)
	}

	var swaps atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := unix.Renameat2(unix.AT_FDCWD, d, unix.AT_FDCWD, alt, unix.RENAME_EXCHANGE); err != nil {
				t.Errorf("renameat2 RENAME_EXCHANGE: %v", err)
				return
			}
			swaps.Add(1)
		}
	}()
	codes := map[int]int{}
	leaks := 0
	for range 2000 {
		code, b, err := bodyOf(url)
		if err != nil {
			close(stop)
			wg.Wait()
			t.Fatal(err)
		}
		codes[code]++
		if strings.Contains(string(b), secret) {
			leaks++
		}
	}
	close(stop)
	wg.Wait()
	t.Logf("%d swaps; replies by status %v", swaps.Load(), codes)
	// The fault must have happened: both states of d were served.
	if swaps.Load() == 0 || codes[200] == 0 || codes[http.StatusForbidden] == 0 {
		t.Fatalf("the swap was not exercised: %d swaps, replies %v", swaps.Load(), codes)
	}
	if leaks > 0 {
		t.Fatalf("the root-only file was served %d times of 2000", leaks)
	}
	if n := 2000 - codes[200] - codes[http.StatusForbidden]; n > 0 {
		t.Fatalf("%d replies neither the file nor 403: %v", n, codes)
	}
}
