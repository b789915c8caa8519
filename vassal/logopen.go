package vassal

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// LogFileError is a log file (logto, logto2, log-backupname) that could not
// be opened, rotated or reopened.
type LogFileError struct {
	Op   string
	Path string
	Err  error
}

func (e *LogFileError) Error() string { return fmt.Sprintf("%s %s: %v", e.Op, e.Path, e.Err) }
func (e *LogFileError) Unwrap() error { return e.Err }

// maxLogLinks bounds the symlinks one log path may go through (the kernel's
// own limit is 40).
const maxLogLinks = 40

// openLogDir opens the directory that will hold the log file path, as an
// O_PATH descriptor that PID 1 keeps: every later open, rename and reopen of
// the file is relative to it, so the file stays in that directory after the
// jail changed what paths mean, and a directory swapped for a symlink later
// does not redirect us. It returns the directory and the file's name in it.
//
// As root (logto, or any log of a vassal without uid) the path is walked one
// component at a time without following symlinks; a symlink is followed only
// when it and the directory holding it belong to root and that directory is
// not writable by group or others, so that a tenant who can write somewhere
// on the path cannot point root's writes elsewhere. Without root the
// kernel's permission checks protect everyone but the tenant, and the path
// is opened as it is.
func openLogDir(path string) (*os.File, string, error) {
	if !filepath.IsAbs(path) {
		wd, err := os.Getwd()
		if err != nil {
			return nil, "", &LogFileError{Op: "find the working directory for", Path: path, Err: err}
		}
		path = filepath.Join(wd, path)
	}
	dir, base := filepath.Split(filepath.Clean(path))
	var fd int
	var err error
	if unix.Geteuid() == 0 {
		fd, err = walkTrusted(dir)
	} else {
		fd, err = openDirPath(dir)
	}
	if err != nil {
		return nil, "", &LogFileError{Op: "open the directory of", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), dir), base, nil
}

// openDirPath opens dir as an O_PATH descriptor: it grants no access by
// itself (every use checks the caller's permissions then), and it is what
// the *at calls take as their directory.
func openDirPath(dir string) (int, error) {
	return unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
}

// walkTrusted opens the absolute directory dir for root, component by
// component (see openLogDir). Each component is opened with O_NOFOLLOW: a
// symlink put in place between the check and the open then fails the open
// (ENOTDIR) instead of being followed.
func walkTrusted(dir string) (int, error) {
	fd, err := openDirPath("/")
	if err != nil {
		return -1, err
	}
	comps := strings.Split(strings.Trim(dir, "/"), "/")
	links := 0
	cur := "/"
	for len(comps) > 0 {
		c := comps[0]
		comps = comps[1:]
		if c == "" || c == "." {
			continue
		}
		var st unix.Stat_t
		if err := unix.Fstatat(fd, c, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("%s: %w", filepath.Join(cur, c), err)
		}
		if st.Mode&unix.S_IFMT == unix.S_IFLNK {
			target, err := trustedLink(fd, c, &st)
			if err != nil {
				unix.Close(fd)
				return -1, fmt.Errorf("%s: %w", filepath.Join(cur, c), err)
			}
			if links++; links > maxLogLinks {
				unix.Close(fd)
				return -1, fmt.Errorf("%s: %w", dir, unix.ELOOP)
			}
			if filepath.IsAbs(target) {
				unix.Close(fd)
				if fd, err = openDirPath("/"); err != nil {
					return -1, err
				}
				cur = "/"
			}
			comps = append(strings.Split(strings.Trim(target, "/"), "/"), comps...)
			continue
		}
		nfd, err := unix.Openat(fd, c, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		if err != nil {
			return -1, fmt.Errorf("%s: %w", filepath.Join(cur, c), err)
		}
		fd, cur = nfd, filepath.Join(cur, c)
	}
	return fd, nil
}

// trustedLink reads the symlink name in directory fd for root, if root may
// follow it: the link and its directory belong to root, and nobody else may
// write the directory (so nobody else could have put the link there).
func trustedLink(fd int, name string, st *unix.Stat_t) (string, error) {
	var dst unix.Stat_t
	if err := unix.Fstat(fd, &dst); err != nil {
		return "", err
	}
	if st.Uid != 0 || dst.Uid != 0 || dst.Mode&0o022 != 0 {
		return "", fmt.Errorf("a symlink that root does not control (link owner %d, directory owner %d, mode %#o): refusing to follow it as root; point logto at the real path, or use logto2 (opened as the vassal's user)", st.Uid, dst.Uid, dst.Mode&0o7777)
	}
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(fd, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// openLogIn opens (creating it 0640, as uWSGI does) the log file name in
// directory dir for appending. O_NOFOLLOW: a symlink as the last component
// fails (ELOOP) rather than letting whoever can write the directory choose
// the file we write. O_NONBLOCK: a FIFO put there does not block the open
// (and is refused below). As root an existing file with other hard links is
// refused too: a link to a file elsewhere would make root append to it.
func openLogIn(dir *os.File, name string, truncate bool) (*os.File, error) {
	flags := unix.O_WRONLY | unix.O_APPEND | unix.O_CREAT | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_NOCTTY | unix.O_CLOEXEC
	fd, err := unix.Openat(int(dir.Fd()), name, flags, 0o640)
	if err != nil {
		if err == unix.ELOOP {
			return nil, fmt.Errorf("it is a symlink, which the log file may not be: %w", err)
		}
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, fmt.Errorf("not a regular file (mode %#o)", st.Mode)
	}
	if unix.Geteuid() == 0 && st.Nlink > 1 {
		unix.Close(fd)
		return nil, fmt.Errorf("the file has %d hard links: refusing to write to it as root", st.Nlink)
	}
	if truncate {
		if err := unix.Ftruncate(fd, 0); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("truncate (log-truncate): %w", err)
		}
	}
	return os.NewFile(uintptr(fd), filepath.Join(dir.Name(), name)), nil
}

// renameLog moves the log file to its backup name: renameat on the two
// directory descriptors, so both names are where they were at start. It
// replaces the last backup, as rename(2) does atomically.
func renameLog(dir *os.File, name string, bdir *os.File, bname string) error {
	return unix.Renameat(int(dir.Fd()), name, int(bdir.Fd()), bname)
}

// chownLog gives the open log file to the vassal's user (logfile-chown):
// fchown on the descriptor, so no path is looked up again as root.
func chownLog(f *os.File, uid, gid int) error { return unix.Fchown(int(f.Fd()), uid, gid) }

// chmodLog sets logfile-chmod's mode on the open file.
func chmodLog(f *os.File, mode os.FileMode) error { return unix.Fchmod(int(f.Fd()), uint32(mode)) }
