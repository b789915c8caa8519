package hooks

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/emperor-dev/emperor/mount"
	"github.com/emperor-dev/emperor/userdb"
	"golang.org/x/sys/unix"
)

// action is one hook action of uWSGI 2.0.21 (core/hooks.c,
// uwsgi_register_base_hooks).
type action struct {
	aliases []string
	parse   func(h *Hook) error
	run     func(ctx context.Context, h *Hook, r *runner) error
	// ignoreFailure: uWSGI does not look at the result (safeexec).
	ignoreFailure bool
	// notHere is why PID 1 cannot run the action (it needs uWSGI's own
	// process: its alarms, its RPC subsystem, a C signal handler). Such an
	// action is still valid in the app server's phases (ParseApp).
	notHere string
}

var actions = map[string]*action{
	"chdir":  {aliases: []string{"cd"}, parse: needArgs, run: runChdir},
	"mkdir":  {parse: needArgs, run: runMkdir},
	"putenv": {parse: parsePutenv, run: runPutenv},
	"chmod":  {parse: parseChmod, run: runChmod},
	"chown":  {parse: parseChown, run: runChown},
	"chown2": {parse: parseChown2, run: runChown2},
	"sticky": {parse: needArgs, run: runSticky},

	"exec":     {parse: needArgs, run: runExec},
	"safeexec": {parse: needArgs, run: runExec, ignoreFailure: true},

	"create":       {aliases: []string{"creat"}, parse: needArgs, run: runCreate},
	"write":        {parse: needFileAndData, run: runWrite},
	"writen":       {parse: needFileAndData, run: runWrite},
	"append":       {parse: needFileAndData, run: runWrite},
	"appendn":      {parse: parseAppendn, run: runWrite},
	"writefifo":    {parse: needFileAndData, run: runWriteFifo},
	"spinningfifo": {parse: needFileAndData, run: runSpinningFifo},
	"unlink":       {parse: needArgs, run: runUnlink},

	"mount":  {parse: parseMountHook, run: runMount},
	"umount": {parse: parseUmountHook, run: runUmount},

	"hostname": {aliases: []string{"sethostname"}, parse: needArgs, run: runHostname},

	"wait_for_fs":     {parse: needArgs, run: runWaitFor},
	"wait_for_file":   {parse: needArgs, run: runWaitFor},
	"wait_for_dir":    {parse: needArgs, run: runWaitFor},
	"wait_for_socket": {parse: parseSocketAddr, run: runWaitSocket},

	"exit":  {parse: parseExit, run: runExit},
	"print": {aliases: []string{"log"}, parse: noCheck, run: runPrint},

	"alarm": {notHere: "it raises one of uWSGI's alarms (alarm = ...), which live in the app server; PID 1 has none: " +
		"notify with exec:COMMAND, or move the line to an app server phase (hook-post-app, hook-accepting1...)"},
	"rpc": {notHere: "it calls a function of uWSGI's RPC subsystem, which lives in the app server; " +
		"move the line to an app server phase (hook-post-app...), or call the service with exec:COMMAND"},
	"retryrpc": {notHere: "it calls a function of uWSGI's RPC subsystem, which lives in the app server; " +
		"move the line to an app server phase (hook-post-app...), or call the service with exec:COMMAND"},
	"unix_signal": {notHere: "it installs a C function of uWSGI's process as a signal handler; PID 1 is a Go " +
		"program with no C symbols to call and handles its own signals"},
}

var actionAlias = map[string]string{}

func init() {
	for name, a := range actions {
		actionAlias[name] = name
		for _, al := range a.aliases {
			actionAlias[al] = name
		}
	}
}

func noCheck(*Hook) error { return nil }

func needArgs(h *Hook) error {
	if h.Args == "" {
		return fmt.Errorf("needs an argument")
	}
	return nil
}

// needFileAndData reads "FILE DATA": the first space splits them, as in
// uWSGI, and the data keeps any further spaces.
func needFileAndData(h *Hook) error {
	f, d, ok := strings.Cut(h.Args, " ")
	if !ok || f == "" {
		return fmt.Errorf("wants FILE DATA, got %q", h.Args)
	}
	h.file, h.data, h.hasArg = f, d, true
	return nil
}

// parseAppendn: uWSGI's appendn with a FILE alone appends a newline.
func parseAppendn(h *Hook) error {
	if h.Args == "" {
		return fmt.Errorf("wants FILE [DATA]")
	}
	f, d, ok := strings.Cut(h.Args, " ")
	h.file, h.data, h.hasArg = f, d, ok
	return nil
}

// parseMode reads an octal mode. uWSGI (uwsgi_mode_t) wants at least three
// digits and drops the first of four, so that 1777 loses its sticky bit;
// every octal mode up to 07777 is read whole here.
func parseMode(s string) (uint32, error) {
	m, err := strconv.ParseUint(s, 8, 32)
	if err != nil || m > 0o7777 {
		return 0, fmt.Errorf("mode %q is not an octal mode (0 to 7777)", s)
	}
	return uint32(m), nil
}

func parseChmod(h *Hook) error {
	f := strings.Fields(h.Args)
	if len(f) != 2 {
		return fmt.Errorf("wants PATH MODE (octal), got %q", h.Args)
	}
	m, err := parseMode(f[1])
	if err != nil {
		return err
	}
	h.file, h.mode = f[0], m
	return nil
}

func parseChown(h *Hook) error {
	f := strings.Fields(h.Args)
	if len(f) != 3 {
		return fmt.Errorf("wants PATH USER GROUP, got %q", h.Args)
	}
	// A number is checked here; a name is looked up when the hook runs
	// (in the jail's database, after a chroot).
	for i, kind := range []string{"user", "group"} {
		if _, _, err := userdb.ParseID(f[i+1]); err != nil {
			return fmt.Errorf("%s %q: %w", kind, f[i+1], err)
		}
	}
	return nil
}

// parseChown2: uWSGI's chown2 takes numbers only (is_a_number).
func parseChown2(h *Hook) error {
	f := strings.Fields(h.Args)
	if len(f) != 3 {
		return fmt.Errorf("wants PATH UID GID (numbers), got %q", h.Args)
	}
	for i, kind := range []string{"uid", "gid"} {
		id, isNum, err := userdb.ParseID(f[i+1])
		if err != nil {
			return fmt.Errorf("%s %q: %w", kind, f[i+1], err)
		}
		if !isNum {
			return fmt.Errorf("%s %q is not a number (chown2 takes numbers; chown takes names)", kind, f[i+1])
		}
		h.ids[i] = id
	}
	h.file = f[0]
	return nil
}

func parsePutenv(h *Hook) error {
	k, _, ok := strings.Cut(h.Args, "=")
	if !ok || k == "" {
		return fmt.Errorf("wants KEY=VALUE, got %q", h.Args)
	}
	return nil
}

// parseSocketAddr reads wait_for_socket's address as uWSGI's
// uwsgi_connect does: HOST:PORT is TCP, anything else a unix socket
// (@name: abstract).
func parseSocketAddr(h *Hook) error {
	if h.Args == "" {
		return fmt.Errorf("wants a unix socket path or HOST:PORT")
	}
	if _, port, ok := strings.Cut(h.Args, ":"); ok {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %q of %q is not a number from 1 to 65535", port, h.Args)
		}
	}
	return nil
}

// parseExit reads exit's status: empty is 0. (uWSGI reads a one-character
// argument as 0 too, so that exit:1 exits 0; here exit:1 exits 1.)
func parseExit(h *Hook) error {
	if h.Args == "" {
		return nil
	}
	n, err := strconv.Atoi(h.Args)
	if err != nil || n < 0 || n > 255 {
		return fmt.Errorf("exit status %q is not a number from 0 to 255", h.Args)
	}
	h.exit = n
	return nil
}

func runChdir(_ context.Context, h *Hook, _ *runner) error { return os.Chdir(h.Args) }

// runMkdir: mode 0755; an existing directory is fine (uWSGI: 0777 under
// the umask, and EEXIST fails).
func runMkdir(_ context.Context, h *Hook, _ *runner) error {
	err := os.Mkdir(h.Args, 0o755)
	if errors.Is(err, fs.ErrExist) {
		if st, serr := os.Stat(h.Args); serr == nil && st.IsDir() {
			return nil
		}
	}
	return err
}

func runPutenv(_ context.Context, h *Hook, r *runner) error {
	k, v, _ := strings.Cut(h.Args, "=")
	if r.env != nil {
		r.env.Setenv(k, v)
	}
	return os.Setenv(k, v)
}

func runChmod(_ context.Context, h *Hook, _ *runner) error {
	return chmod(h.file, h.mode)
}

// chmod is chmod(2) with the mode as the kernel reads it (os.Chmod takes
// Go's FileMode, whose setuid/setgid/sticky bits are not the octal ones).
func chmod(path string, mode uint32) error {
	if err := unix.Chmod(path, mode); err != nil {
		return &fs.PathError{Op: "chmod", Path: path, Err: err}
	}
	return nil
}

func runChown(_ context.Context, h *Hook, _ *runner) error {
	f := strings.Fields(h.Args)
	uid, err := userdb.LookupUID(f[1])
	if err != nil {
		return err
	}
	gid, err := userdb.LookupGroup(f[2])
	if err != nil {
		return err
	}
	return os.Chown(f[0], uid, gid)
}

func runChown2(_ context.Context, h *Hook, _ *runner) error {
	return os.Chown(h.file, h.ids[0], h.ids[1])
}

// runSticky adds the sticky bit (S_ISVTX) to what the path has: a shared
// directory where only a file's owner may remove it.
func runSticky(_ context.Context, h *Hook, _ *runner) error {
	var st unix.Stat_t
	if err := unix.Stat(h.Args, &st); err != nil {
		return &fs.PathError{Op: "stat", Path: h.Args, Err: err}
	}
	return chmod(h.Args, st.Mode&0o7777|unix.S_ISVTX)
}

func runExec(ctx context.Context, h *Hook, r *runner) error {
	if r.env == nil {
		return fmt.Errorf("exec: no process runner")
	}
	return r.env.Exec(ctx, h.Args, h.Private)
}

// runCreate is uWSGI's creat: O_CREAT|O_TRUNC, mode 0666 under the umask.
func runCreate(_ context.Context, h *Hook, _ *runner) error {
	f, err := os.OpenFile(h.Args, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o666)
	if err != nil {
		return err
	}
	return f.Close()
}

// runWrite is write, writen (truncate), append and appendn; the n forms
// add a newline. Mode 0666 under the umask, as in uWSGI.
func runWrite(_ context.Context, h *Hook, _ *runner) error {
	data := h.data
	if strings.HasSuffix(h.Action, "n") {
		data += "\n"
	}
	flag := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	if strings.HasPrefix(h.Action, "append") {
		flag = os.O_WRONLY | os.O_CREATE | os.O_APPEND
	}
	return writeFile(h.file, flag, data)
}

func writeFile(path string, flag int, data string) error {
	f, err := os.OpenFile(path, flag, 0o666)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// runWriteFifo writes to a FIFO without blocking: no reader (ENXIO) or no
// device (ENODEV) is not a failure, as in uWSGI (the message is dropped).
func runWriteFifo(_ context.Context, h *Hook, r *runner) error {
	err := writeFile(h.file, os.O_WRONLY|unix.O_NONBLOCK, h.data)
	if errors.Is(err, unix.ENXIO) || errors.Is(err, unix.ENODEV) {
		r.log.Info("writefifo: no reader, nothing written", "phase", string(h.Phase), "file", h.file)
		return nil
	}
	return err
}

// runSpinningFifo waits (up to hook-timeout) for the FIFO to exist and have
// a reader, then writes to it. uWSGI waits for ever.
func runSpinningFifo(ctx context.Context, h *Hook, r *runner) error {
	for {
		err := writeFile(h.file, os.O_WRONLY|unix.O_NONBLOCK, h.data)
		if !errors.Is(err, unix.ENXIO) && !errors.Is(err, unix.ENODEV) && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("spinningfifo %s: no reader: %w", h.file, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func runUnlink(_ context.Context, h *Hook, _ *runner) error { return os.Remove(h.Args) }

func runMount(_ context.Context, h *Hook, _ *runner) error {
	m := h.mount
	return mount.Mount(m.source, m.target, m.fstype, m.flags, m.data)
}

func runUmount(_ context.Context, h *Hook, _ *runner) error {
	if h.umount.rec {
		return mount.UnmountTree(h.umount.target, h.umount.flags)
	}
	return mount.Unmount(h.umount.target, h.umount.flags)
}

// runHostname changes the UTS namespace's name: isolated from the host
// only with the uts namespace (unshare = uts, or emperor-use-clone).
func runHostname(_ context.Context, h *Hook, _ *runner) error {
	if err := unix.Sethostname([]byte(h.Args)); err != nil {
		return fmt.Errorf("sethostname %q: %w", h.Args, err)
	}
	return nil
}

func runPrint(_ context.Context, h *Hook, r *runner) error {
	r.log.Info(h.Args, "phase", string(h.Phase))
	return nil
}

// ExitError is an exit: hook: PID 1 stops the vassal and exits with Code.
type ExitError struct{ Code int }

func (e *ExitError) Error() string { return fmt.Sprintf("exit hook: exit status %d", e.Code) }

func runExit(_ context.Context, h *Hook, _ *runner) error { return &ExitError{Code: h.exit} }
