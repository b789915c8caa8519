package vassalfile

import (
	"fmt"
	"strings"
	"testing"
)

// doubling builds a placeholder of 2^n bytes in n+1 lines.
func doubling(n int) string {
	var b strings.Builder
	b.WriteString("set-placeholder = p0=x\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "set-placeholder = p%d=%%(p%d)%%(p%d)\n", i, i-1, i-1)
	}
	return b.String()
}

// TestErrorsBounded: twelve errors that each quote a 512 KiB value give an
// error string of a few KiB, every value cut to about 100 bytes with its
// full length, and the list ends with "and N more".
func TestErrorsBounded(t *testing.T) {
	src := "[uwsgi]\n" + doubling(19) + strings.Repeat("threads = %(p19)\n", 12)
	_, err := parse(t, src, ParseOptions{})
	e := diags(t, err)
	s := e.Error()
	if len(s) > 4<<10 {
		t.Fatalf("Error() is %d bytes, want a few KiB", len(s))
	}
	if !strings.Contains(s, `"xxxxxxxx`) || !strings.Contains(s, "… (524288 bytes)") {
		t.Fatalf("quoted value not cut with its length:\n%s", s)
	}
	if !strings.HasSuffix(s, "and 2 more errors") {
		t.Fatalf("no 'and N more' at the end:\n%s", s)
	}
	if len(e) != MaxErrors+1 {
		t.Fatalf("%d diagnostics kept, want %d and a count", len(e), MaxErrors+1)
	}
	for _, d := range e[:MaxErrors] {
		if d.Line < 21 || !strings.Contains(d.Message, "is not an integer") {
			t.Fatalf("diag %v: want the threads line and its message", d)
		}
	}
}

// TestErrorsBoundedLoop: one bad line in a loop of 10000 gives ten errors
// and a count, not 10000 errors.
func TestErrorsBoundedLoop(t *testing.T) {
	src := "[uwsgi]\nfor-times = 10000\nnosuchoption = %(_)\nprocesses = 4\nendfor =\n"
	f, err := parse(t, src, ParseOptions{})
	e := diags(t, err)
	if len(e) != MaxErrors+1 || e[MaxErrors].Message != fmt.Sprintf("and %d more errors", 10000-MaxErrors) {
		t.Fatalf("got %d diags, last %v", len(e), e[len(e)-1])
	}
	if len(f.Warnings) != MaxErrors+1 || !strings.Contains(f.Warnings[MaxErrors].Message, "more warnings") {
		t.Fatalf("warnings not capped: %d", len(f.Warnings))
	}
}

// TestErrorsErrorCapsForeignLists: an Errors built elsewhere with more
// entries than MaxErrors is listed up to the cap too.
func TestErrorsErrorCapsForeignLists(t *testing.T) {
	var e Errors
	for i := 0; i < 100; i++ {
		e = append(e, Diag{File: "/f.ini", Line: i + 1, Message: strings.Repeat("m", 1<<20)})
	}
	s := e.Error()
	if len(s) > 4<<10 || !strings.HasSuffix(s, "and 89 more") {
		t.Fatalf("%d bytes, ends %q", len(s), s[len(s)-20:])
	}
}

func TestQuoteValue(t *testing.T) {
	if got := QuoteValue("abc"); got != `"abc"` {
		t.Fatal(got)
	}
	long := strings.Repeat("é", 100) // 200 bytes: the cut must not split a rune
	got := QuoteValue(long)
	if got != `"`+strings.Repeat("é", 50)+`"… (200 bytes)` {
		t.Fatal(got)
	}
}
