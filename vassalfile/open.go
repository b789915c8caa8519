package vassalfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// NotRegularError is a vassal or emperor file that turned out not to be a
// regular file when it was opened (a FIFO or device swapped in after the
// emperor's stat, a directory).
type NotRegularError struct {
	Path string
	Mode fs.FileMode
}

func (e *NotRegularError) Error() string {
	return fmt.Sprintf("%s is a %s, not a regular file: refusing to read it", e.Path, kindOf(e.Mode))
}

func kindOf(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "FIFO"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m.IsDir():
		return "directory"
	}
	return "file of type " + m.Type().String()
}

// ReadFileStat reads a vassal or emperor file, at most MaxFileSize bytes,
// and returns the fstat of what it read. It never opens anything but a
// regular file, and never blocks in open: the path (a symlink is followed,
// as documented) is opened with O_PATH, which opens no FIFO, device or
// socket and runs no driver code; the descriptor is fstat'ed, and only a
// regular file is opened for reading, through /proc/self/fd, which reopens
// that same inode whatever has been renamed over the path meanwhile. It
// reads through a limit rather than trusting the stat, so a file that grows
// while it is read cannot get past the limit either.
func ReadFileStat(path string) ([]byte, fs.FileInfo, error) {
	f, err := openRegular(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, nil, err
	}
	if len(b) > MaxFileSize {
		return nil, nil, fmt.Errorf("file is over the %d byte limit", MaxFileSize)
	}
	return b, fi, nil
}

// openRegular opens path for reading if it is a regular file; see
// ReadFileStat.
func openRegular(path string) (*os.File, error) {
	pfd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(pfd)
	var st unix.Stat_t
	if err := unix.Fstat(pfd, &st); err != nil {
		return nil, &fs.PathError{Op: "fstat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, &NotRegularError{Path: path, Mode: modeOf(st.Mode)}
	}
	// O_NONBLOCK and O_NOCTTY cost nothing on a regular file and keep the
	// promise (never block, never acquire a terminal) even if the check
	// above were wrong.
	const flags = unix.O_RDONLY | unix.O_NONBLOCK | unix.O_NOCTTY | unix.O_CLOEXEC
	fd, err := unix.Open("/proc/self/fd/"+strconv.Itoa(pfd), flags, 0)
	if errors.Is(err, unix.ENOENT) {
		// No /proc: open the path itself, which may by now name another
		// file; the fstat below refuses it unless it is regular.
		fd, err = unix.Open(path, flags, 0)
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "fstat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, &NotRegularError{Path: path, Mode: modeOf(st.Mode)}
	}
	return os.NewFile(uintptr(fd), path), nil
}

func modeOf(m uint32) fs.FileMode {
	switch m & unix.S_IFMT {
	case unix.S_IFIFO:
		return fs.ModeNamedPipe
	case unix.S_IFCHR:
		return fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		return fs.ModeDevice
	case unix.S_IFSOCK:
		return fs.ModeSocket
	case unix.S_IFDIR:
		return fs.ModeDir
	case unix.S_IFLNK:
		return fs.ModeSymlink
	}
	return fs.ModeIrregular
}
