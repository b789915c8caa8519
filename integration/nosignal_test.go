package integration

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emperor-dev/emperor/nosignal"
	"golang.org/x/sys/unix"
)

// hungStatfsEnv makes the test binary the process of
// TestSIGTERMWhileMainThreadHangsInFUSE: it statfs()es the path in the
// variable on its main thread. hungStatfsPlainEnv=1 makes that a plain
// statfs instead of one under nosignal.Do, to see the kernel behaviour the
// package works around (the test then fails: the SIGTERM is lost).
const (
	hungStatfsEnv      = "EMPEROR_TEST_HUNG_STATFS"
	hungStatfsPlainEnv = "EMPEROR_TEST_HUNG_STATFS_PLAIN"
)

func init() {
	if os.Getenv(hungStatfsEnv) != "" {
		// The main goroutine, on the main thread, stays there: the
		// statfs runs on the thread the kernel prefers for a signal sent
		// to the process.
		runtime.LockOSThread()
	}
}

// hungStatfs is the helper process: "ready", then the statfs on the main
// thread; "TERM" when the Go handler gets SIGTERM. It runs until killed.
func hungStatfs() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	go func() {
		<-sigs
		fmt.Println("TERM")
	}()
	fmt.Println("ready")
	var st unix.Statfs_t
	path := os.Getenv(hungStatfsEnv)
	if os.Getenv(hungStatfsPlainEnv) == "1" {
		_ = unix.Statfs(path, &st)
	} else {
		nosignal.Do(func() { _ = unix.Statfs(path, &st) })
	}
	fmt.Println("returned")
	select {}
}

// threadIn says whether thread tid of pid is in system call nr now.
func threadIn(pid, tid int, nr uintptr) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/syscall", pid, tid))
	f := strings.Fields(string(b))
	return err == nil && len(f) > 0 && f[0] == strconv.Itoa(int(nr))
}

// A SIGTERM sent to a process whose main thread sleeps in a hung FUSE mount
// reaches the Go handler when that sleep runs under nosignal.Do. Without
// it, the kernel hands the signal to the main thread, whose FUSE request
// then waits in a killable sleep for a daemon that never answers: the
// signal is lost for as long as the mount hangs (what made a vassal miss
// its stop while mountpoint-check's statfs hung on its main thread).
func TestSIGTERMWhileMainThreadHangsInFUSE(t *testing.T) {
	fuseForUsers(t)
	dir := t.TempDir()
	zip, mnt := filepath.Join(dir, "app.zip"), filepath.Join(dir, "app")
	writeZip(t, zip, zipFiles)
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	// fuse-zip in the foreground: its PID is the daemon's, to stop it.
	fz := exec.Command("fuse-zip", "-f", "-r", zip, mnt)
	fz.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := fz.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(fz.Process.Pid, syscall.SIGCONT)
		exec.Command("fusermount3", "-u", mnt).Run()
		fz.Process.Kill()
		fz.Wait()
	})
	waitFor(t, time.Minute, "the fuse-zip mount", func() bool { return len(mountSeenAnywhere(mnt)) > 0 })
	if err := syscall.Kill(fz.Process.Pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "fuse-zip stopped", func() bool {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", fz.Process.Pid))
		i := strings.LastIndexByte(string(b), ')')
		return i > 0 && len(b) > i+2 && b[i+2] == 'T'
	})

	h := exec.Command(os.Args[0])
	h.Env = append(os.Environ(), hungStatfsEnv+"="+mnt)
	h.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := h.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	h.Stderr = os.Stderr
	if err := h.Start(); err != nil {
		t.Fatal(err)
	}
	pid := h.Process.Pid
	exited := make(chan struct{})
	t.Cleanup(func() {
		h.Process.Kill()
		<-exited
	})
	lines := make(chan string, 4)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		h.Wait()
		close(exited)
	}()
	if l := <-lines; l != "ready" {
		t.Fatalf("helper said %q, want ready", l)
	}
	// The fault for certain: the main thread (its TID is the PID) is in
	// statfs on the stopped daemon's mount before the signal is sent.
	waitFor(t, time.Minute, "the helper's main thread in statfs", func() bool { return threadIn(pid, pid, unix.SYS_STATFS) })
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case l := <-lines:
		if l != "TERM" {
			t.Fatalf("helper said %q, want TERM", l)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("SIGTERM never reached the Go handler while the main thread hung in FUSE")
	}
	// The daemon is still stopped: another thread took the signal while
	// the main one still sleeps in the mount.
	if !threadIn(pid, pid, unix.SYS_STATFS) {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/syscall", pid, pid))
		t.Fatalf("the main thread left statfs (%q) while the FUSE daemon is stopped", b)
	}
}
