package hooks

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emperor-dev/emperor/mount"
	"golang.org/x/sys/unix"
)

// fakeEnv records exec and putenv calls; exec of "false" fails.
type fakeEnv struct {
	mu      sync.Mutex
	execs   []string
	private []bool
	env     []string
}

func (f *fakeEnv) Exec(ctx context.Context, cmd string, private bool) error {
	f.mu.Lock()
	f.execs = append(f.execs, cmd)
	f.private = append(f.private, private)
	f.mu.Unlock()
	if cmd == "false" || strings.HasPrefix(cmd, "false ") {
		return errors.New("exit status 1")
	}
	return nil
}

func (f *fakeEnv) Setenv(k, v string) { f.env = append(f.env, k+"="+v) }

// runLines parses each line for phase and runs them as one phase; it
// returns the phase's error and the log.
func runLines(t *testing.T, phase Phase, env Env, lines ...string) (string, error) {
	t.Helper()
	var hs []Hook
	for i, l := range lines {
		h, err := Parse(phase, l, i+1)
		if err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		hs = append(hs, h)
	}
	var buf bytes.Buffer
	err := RunPhase(hs, env, time.Minute, slog.New(slog.NewTextHandler(&buf, nil)))
	return buf.String(), err
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestFileActions(t *testing.T) {
	d := t.TempDir()
	old := filepath.Join(d, "old")
	os.WriteFile(old, []byte("previous content"), 0o600)
	_, err := runLines(t, AsUser, &fakeEnv{},
		"mkdir:"+d+"/sub",
		"mkdir:"+d+"/sub", // an existing directory is fine
		"creat:"+old,      // truncates, as uWSGI's creat
		"create:"+d+"/sub/new",
		"write:"+d+"/w hello  world",
		"writen:"+d+"/wn hello",
		"append:"+d+"/w !",
		"appendn:"+d+"/an line1",
		"appendn:"+d+"/an line2",
		"appendn:"+d+"/an",
		"write:"+d+"/gone x",
		"unlink:"+d+"/gone",
		"chmod:"+d+"/w 640",
		"mkdir:"+d+"/shared",
		"sticky:"+d+"/shared",
		"chown2:"+d+"/wn "+strconv.Itoa(os.Getuid())+" "+strconv.Itoa(os.Getgid()),
	)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		old: "", d + "/sub/new": "", d + "/w": "hello  world!", d + "/wn": "hello\n", d + "/an": "line1\nline2\n\n",
	} {
		if got := read(t, path); got != want {
			t.Errorf("%s: %q, want %q", path, got, want)
		}
	}
	if _, err := os.Stat(d + "/gone"); !os.IsNotExist(err) {
		t.Errorf("unlink: %v", err)
	}
	st, _ := os.Stat(d + "/w")
	if st.Mode().Perm() != 0o640 {
		t.Errorf("chmod: %v", st.Mode())
	}
	st, _ = os.Stat(d + "/shared")
	if st.Mode()&os.ModeSticky == 0 || st.Mode().Perm() != 0o755 {
		t.Errorf("sticky: %v", st.Mode())
	}
}

// chmod reads the whole octal mode: 1777 keeps its sticky bit (uWSGI's
// uwsgi_mode_t drops the first of four digits).
func TestChmodFourDigits(t *testing.T) {
	d := t.TempDir() + "/x"
	os.Mkdir(d, 0o700)
	if _, err := runLines(t, AsUser, nil, "chmod:"+d+" 1777"); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	unix.Stat(d, &st)
	if st.Mode&0o7777 != 0o1777 {
		t.Fatalf("mode %o", st.Mode&0o7777)
	}
}

// A failure names the hook, its phase and line, and wraps the typed
// error of the operation with its path.
func TestErrorsAreTyped(t *testing.T) {
	missing := t.TempDir() + "/no/such/dir"
	_, err := runLines(t, AsRoot, nil, "print:first", "write:"+missing+"/f data")
	var he *HookError
	var pe *os.PathError
	if !errors.As(err, &he) || he.Hook.Line != 2 || !errors.As(err, &pe) || pe.Op != "open" || pe.Path != missing+"/f" {
		t.Fatalf("got %#v", err)
	}
	if !strings.Contains(err.Error(), "(as-root, line 2)") {
		t.Fatalf("got %q", err)
	}
	for _, l := range []string{"sticky:" + missing, "chmod:" + missing + " 644", "chdir:" + missing} {
		_, err := runLines(t, AsRoot, nil, l)
		if !errors.As(err, &pe) || pe.Path != missing {
			t.Errorf("%s: got %#v", l, err)
		}
	}
}

// In a fatal phase the first failure stops the phase; in as-user-atexit
// (and the emperor phases) every hook runs, as in uWSGI, and the failures
// are returned together.
func TestFatalAndNonFatalPhases(t *testing.T) {
	env := &fakeEnv{}
	_, err := runLines(t, AsUser, env, "exec:false 1", "exec:true")
	if err == nil || len(env.execs) != 1 {
		t.Fatalf("as-user: %v, ran %q", err, env.execs)
	}
	env = &fakeEnv{}
	log, err := runLines(t, AsUserAtexit, env, "exec:false 1", "exec:true", "exec:false 2")
	if len(env.execs) != 3 || err == nil || !strings.Contains(err.Error(), "line 1") || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("atexit: %v, ran %q", err, env.execs)
	}
	if strings.Count(log, "the phase goes on") != 2 {
		t.Fatalf("log: %s", log)
	}
	for _, ph := range []Phase{EmperorStop, EmperorReload, AsUserAtexit} {
		if ph.Fatal() {
			t.Errorf("%s is fatal", ph)
		}
	}
	for _, ph := range Phases[:6] {
		if !ph.Fatal() {
			t.Errorf("%s is not fatal", ph)
		}
	}
}

// safeexec, call and callint ignore the result, as uWSGI does.
func TestIgnoredResults(t *testing.T) {
	env := &fakeEnv{}
	missing := t.TempDir() + "/missing"
	log, err := runLines(t, AsRoot, env, "safeexec:false", "call:chdir "+missing, "call:unlink "+missing, "exec:true")
	if err != nil || len(env.execs) != 2 {
		t.Fatalf("%v, ran %q", err, env.execs)
	}
	if strings.Count(log, "uWSGI ignores this action's result") != 3 {
		t.Fatalf("log: %s", log)
	}
	// callret looks at it.
	if _, err := runLines(t, AsRoot, env, "callret:chdir "+missing); err == nil {
		t.Fatal("callret:chdir of a missing dir succeeded")
	}
}

// The call forms run the libc function's builtin equivalent.
func TestCallMapping(t *testing.T) {
	wd, _ := os.Getwd()
	defer os.Chdir(wd)
	d := t.TempDir()
	os.Mkdir(d+"/empty", 0o755)
	os.WriteFile(d+"/f", nil, 0o644)
	env := &fakeEnv{}
	_, err := runLines(t, PreJail, env,
		"callret:chdir "+d, "callret:rmdir "+d+"/empty", "callret:unlink "+d+"/f",
		"callret:putenv HOOKS_TEST_CALL=1", "callret:system echo hi", "callintret:sleep 0", "call:sync")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.Getwd(); got != d {
		t.Errorf("cwd %s", got)
	}
	for _, p := range []string{d + "/empty", d + "/f"} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s: %v", p, err)
		}
	}
	if os.Getenv("HOOKS_TEST_CALL") != "1" || len(env.execs) != 1 || env.execs[0] != "echo hi" {
		t.Errorf("putenv/system: %q %q", os.Getenv("HOOKS_TEST_CALL"), env.execs)
	}
	os.Unsetenv("HOOKS_TEST_CALL")
	h, _ := Parse(PreJail, "callret:chdir /", 1)
	if h.String() != "callret:chdir /" || h.Action != "chdir" || h.IgnoreFailure {
		t.Errorf("%+v", h)
	}
	// call-PHASE = FUNCTION: no argument.
	if _, err := ParseFamily(AsRoot, FamilyCall, "sync", 1); err != nil {
		t.Error(err)
	}
	if _, err := ParseFamily(AsRoot, FamilyCall, "chdir", 1); err == nil || !strings.Contains(err.Error(), "needs an argument") {
		t.Errorf("call-as-root = chdir: %v", err)
	}
	if _, err := ParseFamily(AsRoot, FamilyCall, "uwsgi_foo", 1); err == nil || !strings.Contains(err.Error(), "C function uwsgi_foo") {
		t.Errorf("call-as-root = uwsgi_foo: %v", err)
	}
}

// "!" is uWSGI's private hook: its arguments never reach the log or the
// error, and exec is told not to log the command line.
func TestPrivateHook(t *testing.T) {
	d := t.TempDir()
	env := &fakeEnv{}
	log, err := runLines(t, AsRoot, env, "!write:"+d+"/secret s3cr3t", "!exec:false --password=s3cr3t")
	if read(t, d+"/secret") != "s3cr3t" {
		t.Fatal("private write did not run")
	}
	if err == nil || strings.Contains(err.Error(), "s3cr3t") || !strings.Contains(err.Error(), "!exec (private") {
		t.Fatalf("error: %v", err)
	}
	if strings.Contains(log, "s3cr3t") || strings.Count(log, "running private hook") != 2 {
		t.Fatalf("log: %s", log)
	}
	if len(env.private) != 1 || !env.private[0] {
		t.Fatalf("exec not told private: %v", env.private)
	}
	h, err := Parse(AsRoot, " ! callret:chdir /", 3)
	if err != nil || !h.Private || h.Action != "chdir" {
		t.Fatalf("%+v %v", h, err)
	}
}

func TestPutenvAndPrint(t *testing.T) {
	env := &fakeEnv{}
	log, err := runLines(t, AsUser, env, "putenv:HOOKS_TEST_A=b=c", "log:hello from a hook")
	defer os.Unsetenv("HOOKS_TEST_A")
	if err != nil || os.Getenv("HOOKS_TEST_A") != "b=c" || len(env.env) != 1 || env.env[0] != "HOOKS_TEST_A=b=c" {
		t.Fatalf("%v %q", err, env.env)
	}
	if !strings.Contains(log, "hello from a hook") {
		t.Fatal(log)
	}
}

func TestExitHook(t *testing.T) {
	env := &fakeEnv{}
	_, err := runLines(t, AsUserAtexit, env, "exit:3", "exec:true")
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != 3 || len(env.execs) != 0 {
		t.Fatalf("%v %q", err, env.execs)
	}
	h, _ := Parse(AsRoot, "exit:", 1)
	if h.exit != 0 {
		t.Fatal(h.exit)
	}
}

func TestWaitFor(t *testing.T) {
	d := t.TempDir()
	// Present already.
	os.Mkdir(d+"/dir", 0o755)
	os.WriteFile(d+"/file", nil, 0o644)
	if _, err := runLines(t, AsRoot, nil, "wait_for_dir:"+d+"/dir", "wait_for_file:"+d+"/file", "wait_for_fs:"+d+"/dir"); err != nil {
		t.Fatal(err)
	}
	// Appears while waiting: created once the hook said it waits.
	logs := &lineLog{lines: make(chan string, 16)}
	h, _ := Parse(AsRoot, "wait_for_file:"+d+"/later", 1)
	done := make(chan error, 1)
	go func() { done <- RunPhase([]Hook{h}, nil, time.Minute, slog.New(slog.NewTextHandler(logs, nil))) }()
	for l := range logs.lines {
		if strings.Contains(l, "waiting for "+d+"/later") {
			break
		}
	}
	os.WriteFile(d+"/tmp", []byte("x"), 0o644)
	os.Rename(d+"/tmp", d+"/later")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// A directory is not a file: the hook times out, naming the reason.
	h, _ = Parse(AsRoot, "wait_for_file:"+d+"/dir", 1)
	err := RunPhase([]Hook{h}, nil, time.Second, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "is a directory, not a regular file") || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
}

func TestWaitForSocket(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	sock := filepath.Join(t.TempDir(), "s.sock")
	ul, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ul.Close()
	if _, err := runLines(t, AsRoot, nil, "wait_for_socket:"+l.Addr().String(), "wait_for_socket:"+sock); err != nil {
		t.Fatal(err)
	}
	h, _ := Parse(AsRoot, "wait_for_socket:"+sock+".missing", 1)
	err = RunPhase([]Hook{h}, nil, time.Second, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "never accepted a connection") {
		t.Fatalf("got %v", err)
	}
}

func TestFifo(t *testing.T) {
	d := t.TempDir()
	fifo := d + "/fifo"
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// No reader: writefifo drops the message and succeeds, as uWSGI's.
	if log, err := runLines(t, AsRoot, nil, "writefifo:"+fifo+" dropped"); err != nil || !strings.Contains(log, "no reader") {
		t.Fatalf("%v %s", err, log)
	}
	// spinningfifo waits for a reader (up to hook-timeout), then writes.
	got := make(chan string, 1)
	go func() {
		f, err := os.OpenFile(fifo, os.O_RDONLY, 0)
		if err != nil {
			got <- err.Error()
			return
		}
		defer f.Close()
		b := make([]byte, 64)
		n, _ := f.Read(b)
		got <- string(b[:n])
	}()
	if _, err := runLines(t, AsRoot, nil, "spinningfifo:"+fifo+" hello fifo"); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s != "hello fifo" {
		t.Fatalf("read %q", s)
	}
}

// A hook past hook-timeout fails.
func TestTimeout(t *testing.T) {
	h, _ := Parse(AsRoot, "callintret:sleep 100", 1)
	start := time.Now()
	err := RunPhase([]Hook{h}, nil, 100*time.Millisecond, slog.New(slog.DiscardHandler))
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Minute {
		t.Fatalf("got %v", err)
	}
}

func TestMountDataKeepsSpaces(t *testing.T) {
	h, err := Parse(AsRoot, "mount:tmpfs none /mnt nosuid,nodev size=1m,mode=0755 extra words", 1)
	if err != nil || h.mount.data != "size=1m,mode=0755 extra words" || h.mount.flags != syscall.MS_NOSUID|syscall.MS_NODEV {
		t.Fatalf("%+v %v", h.mount, err)
	}
}

// lineLog passes each log record to a channel.
type lineLog struct{ lines chan string }

func (l *lineLog) Write(b []byte) (int, error) {
	select {
	case l.lines <- string(b):
	default:
	}
	return len(b), nil
}

// The wait-for-* options run as hooks with their own timeout.
func TestWaitOptions(t *testing.T) {
	d := t.TempDir()
	var hs []Hook
	for _, w := range [][2]string{{"wait-for-mountpoint", "/proc"}, {"wait-for-interface", "lo"}, {"wait-for-dir", d}} {
		h, err := ParseWait(w[0], w[1], time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
	if err := RunPhase(hs, nil, time.Millisecond, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err) // each hook's own timeout (a minute), not the phase's
	}
	for _, w := range [][2]string{{"wait-for-mountpoint", d}, {"wait-for-interface", "nosuchif0"}} {
		h, _ := ParseWait(w[0], w[1], time.Second)
		h.Line = 9
		err := RunPhase([]Hook{h}, nil, time.Minute, slog.New(slog.DiscardHandler))
		if !errors.Is(err, context.DeadlineExceeded) || !strings.HasPrefix(err.Error(), w[0]+" = "+w[1]+" (line 9): ") {
			t.Errorf("%s: got %v", w[0], err)
		}
	}
	if _, err := ParseWait("wait-for-socket", "host:port", time.Second); err == nil {
		t.Error("a bad port accepted")
	}
}

// chown looks names up when it runs; the test chowns to its own user and
// group, by name, which needs no privilege.
func TestChownByName(t *testing.T) {
	u, err := user.LookupId(strconv.Itoa(os.Getuid()))
	if err != nil {
		t.Skipf("no name for uid %d: %v", os.Getuid(), err)
	}
	g, err := user.LookupGroupId(strconv.Itoa(os.Getgid()))
	if err != nil {
		t.Skipf("no name for gid %d: %v", os.Getgid(), err)
	}
	f := t.TempDir() + "/f"
	os.WriteFile(f, nil, 0o644)
	if _, err := runLines(t, AsUser, nil, "chown:"+f+" "+u.Username+" "+g.Name); err != nil {
		t.Fatal(err)
	}
	if _, err := runLines(t, AsUser, nil, "chown:"+f+" no-such-user-hk "+g.Name); err == nil || !strings.Contains(err.Error(), "no-such-user-hk") {
		t.Fatalf("got %v", err)
	}
}

// A failed umount is a *mount.Error with the target and decoded flags.
func TestUmountHookError(t *testing.T) {
	d := t.TempDir() // not a mount point: EINVAL as root, EPERM otherwise
	_, err := runLines(t, AsRoot, nil, "umount:"+d+" detach")
	var me *mount.Error
	if !errors.As(err, &me) || me.Op != "umount" || me.Target != d || me.Flags != "MNT_DETACH" {
		t.Fatalf("got %v", err)
	}
}
