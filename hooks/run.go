package hooks

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/emperor-dev/emperor/mount"
	"github.com/emperor-dev/emperor/userdb"
	"golang.org/x/sys/unix"
)

// Env is what running a hook needs from the vassal.
type Env interface {
	// Exec runs cmd as /bin/sh -c would and waits for it. A non-zero exit and
	// a death by signal are both failures (uWSGI counts a signal death as
	// success).
	Exec(ctx context.Context, cmd string) error
	// Setenv changes the environment of later hooks and daemons.
	Setenv(key, value string)
}

// HookError names the failed hook, its phase and line.
type HookError struct {
	Hook Hook
	Err  error
}

func (e *HookError) Error() string {
	return fmt.Sprintf("hook %s (%s, line %d): %v", e.Hook.String(), e.Hook.Phase, e.Hook.Line, e.Err)
}
func (e *HookError) Unwrap() error { return e.Err }

// RunPhase runs the hooks of one phase in order and stops at the first
// failure. Each hook gets timeout (hook-timeout).
func RunPhase(hs []Hook, env Env, timeout time.Duration, log *slog.Logger) error {
	for _, h := range hs {
		log.Info("running hook", "phase", string(h.Phase), "hook", h.String(), "line", h.Line)
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		err := run(ctx, h, env, log)
		cancel()
		if err != nil {
			return &HookError{Hook: h, Err: err}
		}
	}
	return nil
}

func run(ctx context.Context, h Hook, env Env, log *slog.Logger) error {
	a := h.Args
	switch h.Action {
	case "exec":
		return env.Exec(ctx, a)
	case "mount":
		m := h.mount
		return mount.Mount(m.source, m.target, m.fstype, m.flags, m.data)
	case "umount":
		if h.umount.rec {
			return mount.UnmountTree(h.umount.target, h.umount.flags)
		}
		return mount.Unmount(h.umount.target, h.umount.flags)
	case "mkdir":
		if err := os.Mkdir(a, 0o755); err != nil && !os.IsExist(err) {
			return err
		}
		return nil
	case "chdir":
		return os.Chdir(a)
	case "write", "writen", "append", "appendn":
		file, data, _ := strings.Cut(a, " ")
		if strings.HasSuffix(h.Action, "n") {
			data += "\n"
		}
		flag := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
		if strings.HasPrefix(h.Action, "append") {
			flag = os.O_WRONLY | os.O_CREATE | os.O_APPEND
		}
		f, err := os.OpenFile(file, flag, 0o644)
		if err != nil {
			return err
		}
		if _, err := f.WriteString(data); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	case "create":
		f, err := os.OpenFile(a, os.O_WRONLY|os.O_CREATE, 0o644)
		if err != nil {
			return err
		}
		return f.Close()
	case "unlink":
		return os.Remove(a)
	case "chmod":
		f := strings.Fields(a)
		mode, _ := strconv.ParseUint(f[1], 8, 32)
		return os.Chmod(f[0], os.FileMode(mode))
	case "chown":
		f := strings.Fields(a)
		uid, err := userdb.LookupUID(f[1])
		if err != nil {
			return err
		}
		gid, err := userdb.LookupGroup(f[2])
		if err != nil {
			return err
		}
		return os.Chown(f[0], uid, gid)
	case "putenv":
		k, v, _ := strings.Cut(a, "=")
		env.Setenv(k, v)
		return os.Setenv(k, v)
	case "hostname":
		// Changes the UTS namespace's name: only isolated with clone uts.
		return unix.Sethostname([]byte(a))
	case "print":
		log.Info(a, "phase", string(h.Phase))
		return nil
	case "wait_for_fs", "wait_for_file", "wait_for_dir":
		return waitFor(ctx, h.Action, a)
	}
	return fmt.Errorf("unknown action %q", h.Action)
}

func waitFor(ctx context.Context, kind, path string) error {
	for {
		st, err := os.Stat(path)
		if err == nil {
			switch {
			case kind == "wait_for_fs":
				return nil
			case kind == "wait_for_file" && st.Mode().IsRegular():
				return nil
			case kind == "wait_for_dir" && st.IsDir():
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not appear: %w", path, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
