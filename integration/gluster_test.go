package integration

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emperor-dev/emperor/fileserver/fstest"
)

// fillTree writes the conformance tree, a 16 MiB file and a file nobody
// may read.
func fillTree(t *testing.T, tree *fstest.Tree) func(string) {
	return func(dir string) {
		tr, err := fstest.Write(dir)
		if err != nil {
			t.Fatal(err)
		}
		big := make([]byte, 16<<20)
		for i := range big {
			big[i] = byte(i*7 + i>>12)
		}
		os.WriteFile(filepath.Join(dir, "f16m.bin"), big, 0o644)
		tr["f16m.bin"] = big
		os.WriteFile(filepath.Join(dir, "secret.txt"), []byte("root only\n"), 0o600)
		*tree = tr
	}
}

// lowPort finds a free port below 1024: http-socket is bound before the
// privilege drop, so an unprivileged vassal can serve it.
func lowPort(t *testing.T) int {
	for p := 1000; p > 900; p-- {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err == nil {
			l.Close()
			return p
		}
	}
	t.Fatal("no free port below 1024")
	return 0
}

// Every point of RFC 9110 serving, byte for byte, from a GlusterFS volume
// (cache on and off) and from a local folder, as an unprivileged vassal.
func TestServeConformance(t *testing.T) {
	g := glusterd(t)
	var tree fstest.Tree
	vol := g.volume(t, fillTree(t, &tree))
	local := publicDir(t)
	var ltree fstest.Tree
	fillTree(t, &ltree)(local)
	e := startEmperor(t)
	mount := fmt.Sprintf("glusterfs-mount = mountpoint=/,volume=%s,server=127.0.0.1:0", vol)
	pc, pn, pl := freePort(t), freePort(t), lowPort(t)
	// 64 clients of 16 MiB each on a loaded 2-core machine can keep a
	// libgfapi call past the default glusterfs-timeout (10 s, then 503):
	// a timeout here only stops a hang.
	slow := "glusterfs-timeout = 10m"
	e.install("gcache", glusterVassal(pc, mount, slow))
	e.install("gnocache", glusterVassal(pn, mount, slow, "static-cache-ttl = 0", "static-autoindex = true"))
	e.install("local", glusterVassal(pl, "static-map = /="+local))
	for _, n := range []string{"gcache", "gnocache", "local"} {
		e.waitMounts(n, 60*time.Second)
	}
	cases := []struct {
		name string
		port int
		tree fstest.Tree
		auto bool
	}{{"glusterfs, cache on", pc, tree, false}, {"glusterfs, cache off", pn, tree, true}, {"static-map on a port below 1024", pl, ltree, false}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fstest.Run(t, fmt.Sprintf("http://127.0.0.1:%d", c.port), c.tree, fstest.Options{Autoindex: c.auto, Forbidden: "/secret.txt"})
		})
	}
	t.Run("access log carries the vassal name", func(t *testing.T) {
		// The log reaches us through a pipe, so it may trail the responses.
		waitFor(t, time.Minute, "an access log line", func() bool {
			return strings.Contains(e.log.String(), `msg=request vassal=gcache method=GET path=/f1k.bin status=200`)
		})
	})
	for _, c := range cases[:2] {
		t.Run("64 clients x 16 MiB, "+c.name, func(t *testing.T) {
			v, _ := e.vassal(map[int]string{pc: "gcache", pn: "gnocache"}[c.port])
			want := sha256.Sum256(c.tree["f16m.bin"])
			var wg sync.WaitGroup
			var mu sync.Mutex
			var bad []string
			peak := 0
			stop := make(chan struct{})
			go func() {
				for {
					select {
					case <-stop:
						return
					case <-time.After(20 * time.Millisecond):
						if r := vmRSS(v.PID); r > peak {
							peak = r
						}
					}
				}
			}()
			for i := 0; i < 64; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					code, b, err := bodyOf(fmt.Sprintf("http://127.0.0.1:%d/f16m.bin", c.port))
					if err != nil || code != 200 || sha256.Sum256(b) != want {
						mu.Lock()
						bad = append(bad, fmt.Sprintf("code=%d len=%d err=%v", code, len(b), err))
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			close(stop)
			if len(bad) > 0 {
				t.Fatalf("%d of 64 bad: %v", len(bad), bad[0])
			}
			t.Logf("peak RSS of the vassal: %d KiB", peak)
			// 64 x one 256 KiB chunk, plus at most one cached copy of the
			// file: memory does not grow with clients or file size.
			if peak > 160<<10 {
				t.Fatalf("peak RSS %d KiB", peak)
			}
		})
	}
}

// Two volumes on / and /foo, and a server list whose first entry is a dead
// port.
func TestGlusterTwoMountsAndDeadFirstServer(t *testing.T) {
	g := glusterd(t)
	a := g.volume(t, func(d string) { os.WriteFile(filepath.Join(d, "hello.txt"), []byte("from a\n"), 0o644) })
	b := g.volume(t, func(d string) { os.WriteFile(filepath.Join(d, "hello.txt"), []byte("from b\n"), 0o644) })
	dead := freePort(t)
	e := startEmperor(t)
	port := freePort(t)
	e.install("two", glusterVassal(port, fmt.Sprintf(
		"glusterfs-mount = mountpoint=/,volume=%s,server=127.0.0.1:%d;127.0.0.1:0\nglusterfs-mount = mountpoint=/foo,volume=%s,servers=127.0.0.1:%d;127.0.0.1:0\nglusterfs-mount = mountpoint=/bar,volume=nosuchvolume,server=127.0.0.1:0",
		a, dead, b, dead), "glusterfs-timeout = 3"))
	waitFor(t, 60*time.Second, "/ and /foo connected, /bar connecting", func() bool {
		v, _ := e.vassal("two")
		states := map[string]string{}
		for _, m := range v.Mounts {
			states[m.Prefix] = m.State
		}
		return states["/"] == "connected" && states["/foo"] == "connected" && states["/bar"] == "connecting"
	})
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/bar/x.txt", port))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("a volume that never connects: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	for p, want := range map[string]string{"/hello.txt": "from a\n", "/foo/hello.txt": "from b\n"} {
		if code, body, err := bodyOf(fmt.Sprintf("http://127.0.0.1:%d%s", port, p)); err != nil || code != 200 || string(body) != want {
			t.Fatalf("%s: %d %q %v", p, code, body, err)
		}
	}
	out, _ := emperorCLI("status", e)
	if !strings.Contains(out, "/=glusterfs:"+a+" connected") || !strings.Contains(out, "/foo=glusterfs:"+b+" connected") || !strings.Contains(out, "/bar=glusterfs:nosuchvolume connecting") {
		t.Fatalf("status:\n%s", out)
	}
	// libgfapi's own errors (the dead server, the missing volume) are
	// records of the vassal's log, never raw lines on stderr.
	waitFor(t, 60*time.Second, "a libgfapi error logged with vassal=two", func() bool {
		return regexp.MustCompile(`(?m)^.*vassal=two.*source=libgfapi.*$`).MatchString(e.log.String())
	})
	if raw := regexp.MustCompile(`(?m)^\[\d{4}-\d\d-\d\d [^\n]*$`).FindString(e.log.String()); raw != "" {
		t.Fatalf("a raw libgfapi line on stderr: %s", raw)
	}
}

func emperorCLI(cmd string, e *emperorProc) (string, error) {
	out, err := runCmd(emperorBin, cmd, "--control", e.control)
	return out, err
}

// A brick killed: serving goes on from the replicas. glusterd stopped after
// the volume is up: serving goes on (the client talks to the bricks).
func TestGlusterBrickAndGlusterdDown(t *testing.T) {
	g := glusterd(t)
	content := bytes.Repeat([]byte("replicated "), 100000)
	vol := g.volume(t, func(d string) { os.WriteFile(filepath.Join(d, "data.bin"), content, 0o644) })
	e := startEmperor(t)
	port := freePort(t)
	e.install("ha", glusterVassal(port, fmt.Sprintf("glusterfs-mount = mountpoint=/,volume=%s,server=127.0.0.1:0", vol), "static-cache-ttl = 0"))
	e.waitMounts("ha", 60*time.Second)
	url := fmt.Sprintf("http://127.0.0.1:%d/data.bin", port)
	check := func(what string) {
		t.Helper()
		for i := 0; i < 20; i++ {
			code, b, err := bodyOf(url)
			if err != nil || code != 200 || !bytes.Equal(b, content) {
				t.Fatalf("%s: request %d: %d %d bytes %v", what, i, code, len(b), err)
			}
		}
	}
	check("all up")
	bricks := g.brickPids(t, vol)
	if len(bricks) != 3 {
		t.Fatalf("bricks %v", bricks)
	}
	syscall.Kill(bricks[0], syscall.SIGKILL)
	check("one brick killed")
	g.stopOurs()
	defer func() {
		if err := g.startOurs(); err != nil {
			t.Fatal(err)
		}
		gcli("volume", "start", vol, "force")
	}()
	check("glusterd stopped")
}

// All bricks down: 503 within glusterfs-timeout, and back when they return.
func TestGlusterAllBricksDown(t *testing.T) {
	g := glusterd(t)
	vol := g.volume(t, func(d string) { os.WriteFile(filepath.Join(d, "x.txt"), []byte("x\n"), 0o644) })
	e := startEmperor(t)
	port := freePort(t)
	e.install("down", glusterVassal(port, fmt.Sprintf("glusterfs-mount = mountpoint=/,volume=%s,server=127.0.0.1:0", vol), "static-cache-ttl = 0", "glusterfs-timeout = 3"))
	e.waitMounts("down", 60*time.Second)
	url := fmt.Sprintf("http://127.0.0.1:%d/x.txt", port)
	if code, _, _ := bodyOf(url); code != 200 {
		t.Fatalf("up: %d", code)
	}
	bricks := g.brickPids(t, vol)
	// Hosts that stop answering: the bricks are stopped, not closed.
	for _, p := range bricks {
		syscall.Kill(p, syscall.SIGSTOP)
	}
	resumed := false
	resume := func() {
		if !resumed {
			for _, p := range bricks {
				syscall.Kill(p, syscall.SIGCONT)
			}
			resumed = true
		}
	}
	defer resume()
	// The bricks never answer, so a 503 can only come from glusterfs-timeout
	// firing; a request that hangs instead fails on the client's timeout
	// (how fast the 503 comes is a matter for make bench, not a test).
	for i := 0; i < 3; i++ {
		start := time.Now()
		resp, err := client.Get(url)
		if err != nil {
			t.Fatalf("bricks hung: the request did not get its 503: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("bricks hung: %d", resp.StatusCode)
		}
		t.Logf("503 after %v", time.Since(start))
	}
	resume()
	waitFor(t, 60*time.Second, "serving again after the bricks resume", func() bool {
		code, b, err := bodyOf(url)
		return err == nil && code == 200 && string(b) == "x\n"
	})
	// Every brick stopped: 503 at once, then back when they start again on
	// new ports. (Stopped through glusterd: a SIGKILLed brick can stay a
	// zombie on a host whose init does not reap, and glusterd then takes it
	// for alive and will not restart it.)
	if out, err := gcli("volume", "stop", vol, "force"); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	waitFor(t, time.Minute, "503 with every brick down", func() bool {
		code, _, _ := bodyOf(url)
		return code == http.StatusServiceUnavailable
	})
	if out, err := gcli("volume", "start", vol); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	waitFor(t, 60*time.Second, "serving again after the bricks restart", func() bool {
		code, b, err := bodyOf(url)
		return err == nil && code == 200 && string(b) == "x\n"
	})
}
