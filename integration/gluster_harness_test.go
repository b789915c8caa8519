package integration

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// glusterEnv is a single-node glusterd on loopback for the tests. The tests
// always start their own (and stop it, by its PID, at the end): with a
// working directory and a CLI socket of its own, so it neither loads nor
// leaves volumes in /var/lib/glusterd, and the gluster CLI talks to it only.
// Its management port is glusterd's fixed 24007 (the bricks it spawns and
// libgfapi's server=HOST:0 find it there); when another process holds that
// port, the GlusterFS tests fail and name it.
type glusterEnv struct {
	mu   sync.Mutex
	cmd  *exec.Cmd // our glusterd while it runs
	done chan struct{}
	host string
	root string
	n    int
}

// glusterPort is glusterd's management port.
const glusterPort = 24007

var (
	glOnce sync.Once
	glEnv  *glusterEnv
	glErr  error
	// glusterSock is our glusterd's CLI socket, which gcli uses.
	glusterSock string
)

func glusterd(t *testing.T) *glusterEnv {
	t.Helper()
	requireRoot(t)
	requireBinary(t, "glusterd", "gluster", "glusterfs")
	glOnce.Do(func() { glEnv, glErr = startGlusterEnv() })
	if glErr != nil {
		t.Fatal(glErr)
	}
	return glEnv
}

// gcli runs the gluster CLI against our glusterd.
func gcli(args ...string) (string, error) {
	out, err := exec.Command("gluster", append([]string{"--mode=script", "--glusterd-sock=" + glusterSock}, args...)...).CombinedOutput()
	return string(out), err
}

func startGlusterEnv() (*glusterEnv, error) {
	root, err := os.MkdirTemp("", "emperor-gluster-")
	if err != nil {
		return nil, err
	}
	os.Chmod(root, 0o755)
	host, _ := os.Hostname()
	e := &glusterEnv{host: host, root: root}
	glusterSock = filepath.Join(root, "glusterd.socket")
	if err := e.startOurs(); err != nil {
		os.RemoveAll(root)
		return nil, err
	}
	return e, nil
}

// portHolder names the process listening on TCP port (from /proc/net/tcp
// and the sockets among /proc/*/fd), or says it is unknown.
func portHolder(port int) string {
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, _ := os.ReadFile(f)
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			// local_address is HEXIP:HEXPORT; st 0A is LISTEN.
			if len(fs) > 9 && fs[3] == "0A" && strings.HasSuffix(fs[1], fmt.Sprintf(":%04X", port)) {
				inodes["socket:["+fs[9]+"]"] = true
			}
		}
	}
	for _, p := range allProcs() {
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.pid))
		for _, fd := range fds {
			if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", p.pid, fd.Name())); inodes[l] {
				return fmt.Sprintf("pid %d (%s)", p.pid, p.comm)
			}
		}
	}
	return "an unknown process"
}

// startOurs runs glusterd in the foreground with a working directory and a
// CLI socket of its own under the tests' temporary folder. It dies with the
// test binary (Pdeathsig), even when go test's -timeout kills it.
func (e *glusterEnv) startOurs() error {
	l, err := net.Listen("tcp", fmt.Sprintf(":%d", glusterPort))
	if err != nil {
		return fmt.Errorf("glusterd's management port %d is taken by %s, which the tests did not start: "+
			"the GlusterFS tests run a glusterd of their own and need that port (stop the other one, e.g. systemctl stop glusterd): %w",
			glusterPort, portHolder(glusterPort), err)
	}
	l.Close()
	wd := filepath.Join(e.root, "glusterd")
	if err := os.MkdirAll(wd, 0o755); err != nil {
		return err
	}
	logFile := filepath.Join(e.root, "glusterd.log")
	cmd := exec.Command("glusterd", "-N", "--log-file="+logFile,
		"--xlator-option", "management.working-directory="+wd,
		"--xlator-option", "management.glusterd-sockfile="+glusterSock)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start glusterd: %w", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	e.cmd, e.done = cmd, done
	deadline := time.Now().Add(hangTimeout)
	for {
		if _, err := gcli("pool", "list"); err == nil {
			return nil
		}
		select {
		case <-done:
			e.cmd = nil
			log, _ := os.ReadFile(logFile)
			return fmt.Errorf("glusterd exited at start (%v):\n%s", cmd.ProcessState, log)
		default:
		}
		if time.Now().After(deadline) {
			e.stopOurs()
			log, _ := os.ReadFile(logFile)
			return fmt.Errorf("glusterd did not answer in %v:\n%s", hangTimeout, log)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// stopOurs stops our glusterd (by its PID) and waits for it.
func (e *glusterEnv) stopOurs() {
	if e.cmd == nil {
		return
	}
	e.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.done:
	case <-time.After(hangTimeout):
		e.cmd.Process.Kill()
		<-e.done
	}
	e.cmd = nil
}

// teardownGluster runs after every test: volumes were deleted by the tests'
// cleanups; stop our glusterd and remove the bricks.
func teardownGluster() {
	if glEnv == nil {
		return
	}
	glEnv.stopOurs()
	os.RemoveAll(glEnv.root)
}

// volume creates and starts a replica-3 volume from three bricks in
// temporary folders, FUSE-mounts it to write the test files with fill, and
// deletes it all when the test ends.
func (e *glusterEnv) volume(t *testing.T, fill func(dir string)) string {
	t.Helper()
	e.mu.Lock()
	e.n++
	name := fmt.Sprintf("emptest%d-%d", os.Getpid(), e.n)
	e.mu.Unlock()
	dir := filepath.Join(e.root, name)
	var bricks []string
	for i := 1; i <= 3; i++ {
		b := filepath.Join(dir, fmt.Sprintf("brick%d", i))
		if err := os.MkdirAll(b, 0o755); err != nil {
			t.Fatal(err)
		}
		bricks = append(bricks, e.host+":"+b)
	}
	if out, err := gcli(append(append([]string{"volume", "create", name, "replica", "3"}, bricks...), "force")...); err != nil {
		t.Fatalf("volume create: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		gcli("volume", "stop", name, "force")
		gcli("volume", "delete", name)
		os.RemoveAll(dir)
	})
	if out, err := gcli("volume", "start", name); err != nil {
		t.Fatalf("volume start: %v\n%s", err, out)
	}
	mnt := filepath.Join(dir, "fuse")
	os.MkdirAll(mnt, 0o755)
	var st0 syscall.Stat_t
	syscall.Stat(mnt, &st0)
	if out, err := exec.Command("glusterfs", "--volfile-server=127.0.0.1", "--volfile-id="+name, mnt).CombinedOutput(); err != nil {
		t.Fatalf("fuse mount: %v\n%s", err, out)
	}
	waitFor(t, time.Minute, "the FUSE mount of "+name, func() bool {
		var st syscall.Stat_t
		return syscall.Stat(mnt, &st) == nil && st.Dev != st0.Dev
	})
	fill(mnt)
	if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
		t.Fatalf("umount %s: %v %s", mnt, err, out)
	}
	return name
}

// brickPids lists the brick processes of a volume (from --xml: the plain
// output wraps long brick paths).
func (e *glusterEnv) brickPids(t *testing.T, name string) []int {
	t.Helper()
	out, err := gcli("volume", "status", name, "--xml")
	if err != nil {
		t.Fatalf("volume status: %v\n%s", err, out)
	}
	var doc struct {
		Nodes []struct {
			Path   string `xml:"path"`
			Status int    `xml:"status"`
			PID    int    `xml:"pid"`
		} `xml:"volStatus>volumes>volume>node"`
	}
	if err := xml.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("volume status xml: %v", err)
	}
	var pids []int
	for _, n := range doc.Nodes {
		if strings.HasPrefix(n.Path, "/") && n.Status == 1 && n.PID > 0 {
			pids = append(pids, n.PID)
		}
	}
	return pids
}

// glusterVassal writes the vassal file body for a volume.
func glusterVassal(port int, mounts string, extra ...string) string {
	return fmt.Sprintf("[uwsgi]\nuid = nobody\ngid = nogroup\nhttp-socket = 127.0.0.1:%d\nhttp-socket-modifier1 = 27\n%s\nthreads = 30\n%s\n", port, mounts, strings.Join(extra, "\n"))
}

// waitMounts waits until every gluster mount of a vassal is connected.
func (e *emperorProc) waitMounts(name string, timeout time.Duration) {
	e.t.Helper()
	waitFor(e.t, timeout, name+"'s volumes to connect", func() bool {
		v, ok := e.vassal(name)
		if !ok || v.State != "running" || len(v.Mounts) == 0 {
			return false
		}
		for _, m := range v.Mounts {
			if m.State != "connected" && m.State != "serving" {
				return false
			}
		}
		return true
	})
}

func vmRSS(pid int) int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.Fields(v)[0])
			return n
		}
	}
	return 0
}

func bodyOf(url string) (int, []byte, error) {
	resp, err := client.Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, err = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.Bytes(), err
}
