package procstat

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestParseHostileComm(t *testing.T) {
	cases := []struct {
		line  string
		comm  string
		state byte
		ppid  int
		pgrp  int
	}{
		{"42 (sleep) S 1 42 42 0 -1", "sleep", 'S', 1, 42},
		{"42 (a b c) R 7 40 42 0 -1", "a b c", 'R', 7, 40},
		{"42 (x) Z 9) S 3 42 42 0 -1", "x) Z 9", 'S', 3, 42},
		{"42 ()) Z 5 42", ")", 'Z', 5, 42},
		{"42 (() S 5 42", "(", 'S', 5, 42},
		{"42 ((x)) D 11 42", "(x)", 'D', 11, 42},
		{"42 (a\nb) S 12 42", "a\nb", 'S', 12, 42},
		{"42 () T 13 7", "", 'T', 13, 7},
		{"42 (1 (2) 3) I 0 0", "1 (2) 3", 'I', 0, 0},
	}
	for _, c := range cases {
		s, err := Parse([]byte(c.line))
		if err != nil {
			t.Errorf("Parse(%q): %v", c.line, err)
			continue
		}
		if s.PID != 42 || s.Comm != c.comm || s.State != c.state || s.PPID != c.ppid || s.PGRP != c.pgrp {
			t.Errorf("Parse(%q) = %+v, want comm %q state %c ppid %d pgrp %d", c.line, s, c.comm, c.state, c.ppid, c.pgrp)
		}
	}
}

func TestParseStartTime(t *testing.T) {
	line := "42 (a b) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 123456 1000 10 18446744073709551615"
	s, err := Parse([]byte(line))
	if err != nil || s.StartTicks != 123456 {
		t.Fatalf("Parse(%q) = %+v, %v: want starttime 123456", line, s, err)
	}
	if _, err := Parse([]byte("42 (a) S 1 42 42 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 x 0")); err == nil {
		t.Fatal("a bad starttime: want an error")
	}
}

func TestParseBad(t *testing.T) {
	for _, line := range []string{"", "42", "42 (x", "42 x) S 1", "x (y) S 1", "42 (y) S", "42 (y) S x", "42 (y) SS 1", "42 (y)", "42 (y) S 1", "42 (y) S 1 x"} {
		if s, err := Parse([]byte(line)); err == nil {
			t.Errorf("Parse(%q) = %+v, want an error", line, s)
		}
	}
}

// TestChildrenHostileName runs a program whose file name (and so its comm)
// is made to break a parser that splits at the first ")" or on spaces.
func TestChildrenHostileName(t *testing.T) {
	const name = "a) Z 1 (b c"
	bin := filepath.Join(t.TempDir(), name)
	copyFile(t, "/bin/sleep", bin)
	cmd := exec.Command(bin, "600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	kids, err := Children(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(kids, pid) {
		t.Fatalf("Children(%d) = %v, without %d", os.Getpid(), kids, pid)
	}
	s, err := Read(pid)
	if err != nil {
		t.Fatal(err)
	}
	if s.PID != pid || s.PPID != os.Getpid() || s.Comm != name || s.Zombie() {
		t.Fatalf("Read(%d) = %+v", pid, s)
	}

	// Killed and not yet reaped, it is a zombie.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		s, err := Read(pid)
		if err != nil {
			t.Fatal(err)
		}
		if s.Zombie() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d killed but never a zombie: %+v", pid, s)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Wait()
	if _, err := Read(pid); err == nil {
		t.Fatalf("Read(%d) of a reaped process did not fail", pid)
	}
}

func copyFile(t *testing.T, from, to string) {
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
