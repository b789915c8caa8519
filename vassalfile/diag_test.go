package vassalfile

import (
	"strings"
	"testing"
)

func TestDiagRepeats(t *testing.T) {
	for _, c := range []struct {
		d    Diag
		want string
	}{
		{Diag{File: "f", Line: 3, Message: "m"}, "f:3: m"},
		{Diag{File: "f", Line: 3, Message: "m", Count: 1}, "f:3: m"},
		{Diag{File: "f", Line: 3, Message: "m", Count: 2}, "f:3: m (x2)"},
		{Diag{File: "f", Line: 9, Message: "m", Count: 12, ForKey: "for", ForLine: 7, ForItems: 12}, "f:9: m (x12, once per item of the for at line 7)"},
		{Diag{File: "f", Line: 9, Message: "m", Count: 3, ForKey: "for-glob", ForLine: 7, ForItems: 12, Warning: true}, "f:9: warning: m (x3, for 3 of the 12 items of the for-glob at line 7)"},
	} {
		if got := c.d.String(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.d, got, c.want)
		}
	}
}

// TestLoopRepeatsOnlyWhatRepeats: in a loop's body, a problem every item
// repeats is listed once with its count; one that differs by item is
// listed for each.
func TestLoopRepeatsOnlyWhatRepeats(t *testing.T) {
	src := "[uwsgi]\nfor = 1 2 x\nthreads = %(_)\nattach-deamon = %(_)\nendfor =\n"
	_, err := parse(t, src, ParseOptions{})
	e := diags(t, err)
	if len(e) != 2 {
		t.Fatalf("%v", e)
	}
	if e[0].Line != 3 || e[0].Count > 1 || !strings.Contains(e[0].Message, `"x" is not a count`) {
		t.Errorf("threads: %s", e[0])
	}
	if e[1].Line != 4 || !strings.HasSuffix(e[1].String(), "(x3, once per item of the for at line 2)") {
		t.Errorf("attach-deamon: %s", e[1])
	}
}

func TestMerge(t *testing.T) {
	first := []Diag{
		{File: "f", Line: 5, Message: "b"},
		{File: "f", Line: 2, Message: "a"},
		{File: "f", Message: "and 4 more errors", more: 4},
	}
	warns := []Diag{{File: "f", Line: 2, Message: "w", Warning: true}, {File: "f", Line: 1, Message: "w1", Warning: true}}
	reload := []Diag{
		{File: "f", Line: 2, Message: "a"},
		{File: "f", Line: 3, Message: "only on reload"},
		{File: "f", Message: "and 2 more errors", more: 2},
	}
	creds := []Diag{{File: "f", Line: 4, Message: "uid x: no such user"}}
	got := Merge(first, warns, reload, creds)
	var lines []string
	for _, d := range got {
		lines = append(lines, d.String())
	}
	want := []string{"f:1: warning: w1", "f:2: a", "f:2: warning: w", "f:3: only on reload", "f:4: uid x: no such user", "f:5: b", "f: and 4 more errors"}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if !got.HasErrors() || len(got.Warnings()) != 2 || (Errors{warns[0]}).HasErrors() {
		t.Fatal("HasErrors / Warnings")
	}
	if s := got.Error(); !strings.HasSuffix(s, "f: and 4 more errors") {
		t.Fatalf("Error():\n%s", s)
	}
}

// TestErrorsErrorCountsBothKinds: past the cap, Error says how many errors
// and how many warnings it left out, counting the "and N more" entries.
func TestErrorsErrorCountsBothKinds(t *testing.T) {
	var e Errors
	for i := 0; i < MaxErrors; i++ {
		e = append(e, Diag{File: "f", Line: i + 1, Message: "e"})
	}
	e = append(e, Diag{File: "f", Line: 20, Message: "w", Warning: true}, Diag{File: "f", Line: 21, Message: "w", Warning: true})
	e = append(e, Diag{File: "f", Message: "and 3 more errors", more: 3}, Diag{File: "f", Message: "and 5 more warnings", more: 5, Warning: true})
	if s := e.Error(); !strings.HasSuffix(s, "f:20: warning: w\nand 3 more errors and 6 more warnings") {
		t.Fatalf("%s", s)
	}
}
