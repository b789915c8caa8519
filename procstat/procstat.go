// Package procstat reads /proc/PID/stat. Its second field is the process's
// comm in parentheses, and a comm is whatever the process chose (the
// executable's file name, prctl(PR_SET_NAME), a write to /proc/PID/comm):
// it may hold spaces, parentheses and newlines. Only the last ")" of the
// line ends it, so every field after the comm is read after that one.
package procstat

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// Stat is the part of /proc/PID/stat the emperor uses.
type Stat struct {
	PID   int
	Comm  string
	State byte // R, S, D, Z, T, t, X, I ...
	PPID  int
	PGRP  int // its process group
	// StartTicks is when it started, in clock ticks (USER_HZ) since boot;
	// 0 when the line was cut before it.
	StartTicks uint64
}

// UserHZ is the unit of StartTicks: the kernel reports times in
// /proc/PID/stat in USER_HZ, which is 100 on every Linux architecture.
const UserHZ = 100

// Zombie says whether the process has exited and waits to be reaped.
func (s Stat) Zombie() bool { return s.State == 'Z' }

// Error is a stat line that could not be read or parsed.
type Error struct {
	Path string
	Err  error
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %v", e.Path, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// Parse reads one /proc/PID/stat line: "PID (COMM) STATE PPID ...".
func Parse(b []byte) (Stat, error) {
	open := bytes.IndexByte(b, '(')
	end := bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return Stat{}, fmt.Errorf("no (comm) in %q", cut(b))
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b[:open])))
	if err != nil {
		return Stat{}, fmt.Errorf("pid field in %q: %w", cut(b), err)
	}
	rest := bytes.Fields(b[end+1:])
	if len(rest) < 3 || len(rest[0]) != 1 {
		return Stat{}, fmt.Errorf("no state, ppid and pgrp after the comm in %q", cut(b))
	}
	ppid, err := strconv.Atoi(string(rest[1]))
	if err != nil {
		return Stat{}, fmt.Errorf("ppid field in %q: %w", cut(b), err)
	}
	pgrp, err := strconv.Atoi(string(rest[2]))
	if err != nil {
		return Stat{}, fmt.Errorf("pgrp field in %q: %w", cut(b), err)
	}
	st := Stat{PID: pid, Comm: string(b[open+1 : end]), State: rest[0][0], PPID: ppid, PGRP: pgrp}
	if len(rest) > 19 { // field 22, starttime
		if st.StartTicks, err = strconv.ParseUint(string(rest[19]), 10, 64); err != nil {
			return Stat{}, fmt.Errorf("starttime field in %q: %w", cut(b), err)
		}
	}
	return st, nil
}

// cut keeps error messages short.
func cut(b []byte) []byte {
	if len(b) > 100 {
		return b[:100]
	}
	return b
}

// Read reads /proc/PID/stat. A process that is gone gives an error that
// wraps fs.ErrNotExist (or ESRCH, when it went away mid-read).
func Read(pid int) (Stat, error) {
	path := "/proc/" + strconv.Itoa(pid) + "/stat"
	b, err := os.ReadFile(path)
	if err != nil {
		return Stat{}, &Error{Path: path, Err: err}
	}
	s, err := Parse(b)
	if err != nil {
		return Stat{}, &Error{Path: path, Err: err}
	}
	return s, nil
}

// Children lists the processes whose parent is ppid, by reading every
// /proc/PID/stat. Processes that exit during the scan are skipped.
func Children(ppid int) ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, &Error{Path: "/proc", Err: err}
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		s, err := Read(pid)
		if err != nil {
			continue
		}
		if s.PPID == ppid {
			out = append(out, pid)
		}
	}
	return out, nil
}
