package vassalfile

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// doubling builds a placeholder of 2^n bytes in n+1 lines.
func doubling(n int) string { return doublingOf("x", n) }

// doublingOf builds a placeholder of 2^n copies of the byte c.
func doublingOf(c string, n int) string {
	var b strings.Builder
	b.WriteString("set-placeholder = p0=" + c + "\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "set-placeholder = p%d=%%(p%d)%%(p%d)\n", i, i-1, i-1)
	}
	return b.String()
}

// TestErrorsBounded: twelve errors that each quoted 1 MiB (a 128 KiB value
// of bytes that %q writes as \xff, twice) give an error string of a few KiB,
// every value cut to about 100 bytes with its full length, and the list ends
// with "and N more".
func TestErrorsBounded(t *testing.T) {
	src := "[uwsgi]\n" + doublingOf("\xff", 17) + strings.Repeat("shared-socket = %(p17):1\n", 12)
	_, err := parse(t, src, ParseOptions{})
	e := diags(t, err)
	s := e.Error()
	if len(s) > 4<<10 {
		t.Fatalf("Error() is %d bytes, want a few KiB", len(s))
	}
	if !strings.Contains(s, `"\xff\xff\xff`) || !strings.Contains(s, "… (131074 bytes): address \"\\xff\\xff") || !strings.Contains(s, "… (131072 bytes) is not an IP address") {
		t.Fatalf("quoted value not cut with its length:\n%s", s)
	}
	if !strings.HasSuffix(s, "and 2 more errors") {
		t.Fatalf("no 'and N more' at the end:\n%s", s)
	}
	if len(e) != MaxErrors+1 {
		t.Fatalf("%d diagnostics kept, want %d and a count", len(e), MaxErrors+1)
	}
	for _, d := range e[:MaxErrors] {
		if d.Line < 20 || !strings.Contains(d.Message, "is not an IP address") {
			t.Fatalf("diag %v: want a shared-socket line and its message", d)
		}
	}
}

// TestErrorsBoundedLoop: one bad line in a loop of 5000 gives one error
// with its count, not 5000 errors; a line whose error differs with each
// item gives ten errors and a count.
func TestErrorsBoundedLoop(t *testing.T) {
	src := "[uwsgi]\nfor-times = 5000\nnosuchoption = %(_)\nprocesses = 4\nendfor =\n"
	f, err := parse(t, src, ParseOptions{})
	e := diags(t, err)
	if len(e) != 1 || e[0].Line != 3 || e[0].Count != 5000 ||
		!strings.HasSuffix(e[0].String(), `unknown option "nosuchoption" (nor a placeholder: no %(nosuchoption) in the file refers to it) (x5000, once per item of the for-times at line 2)`) {
		t.Fatalf("got %d diags: %v", len(e), e)
	}
	if len(f.Warnings) != 1 || !strings.HasSuffix(f.Warnings[0].String(), "(x5000, once per item of the for-times at line 2)") {
		t.Fatalf("warnings not counted once: %v", f.Warnings)
	}

	src = "[uwsgi]\nfor-times = 5000\nshared-socket = 127.0.0.1:x%(_)\nendfor =\n"
	_, err = parse(t, src, ParseOptions{})
	e = diags(t, err)
	if len(e) != MaxErrors+1 || e[MaxErrors].Message != fmt.Sprintf("and %d more errors", 5000-MaxErrors) {
		t.Fatalf("got %d diags, last %v", len(e), e[len(e)-1])
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
	if len(s) > 4<<10 || !strings.HasSuffix(s, "and 89 more errors") {
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

// TestDurationRanges: nan, inf, negative, zero where zero means nothing,
// and absurd values are errors on their line that give the allowed range.
func TestDurationRanges(t *testing.T) {
	for _, c := range []struct{ line, want string }{
		{"check-interval = 0", "0 is out of range: from 10ms to 1h"},
		{"check-interval = nan", `"nan" is not a finite duration`},
		{"check-interval = NaN", "not a finite duration"},
		{"hook-timeout = inf", `"inf" is not a finite duration`},
		{"hook-timeout = -inf", "not a finite duration"},
		{"hook-timeout = +Inf", "not a finite duration"},
		{"hook-timeout = 1e300", "too large a duration"},
		{"hook-timeout = 1e400", "not a finite duration"},
		{"hook-timeout = 1e12", "too large a duration"},
		{"hook-timeout = 100000", "out of range: from 1ms to 24h"},
		{"hook-timeout = 2562047h", "out of range"},
		{"hook-timeout = 9999999999h", "not a duration"},
		{"mountpoint-check-timeout = 0", "0 is out of range: from 1ms to 1h"},
		{"mountpoint-check-timeout = 0.0000001", "out of range"},
		{"mountpoint-check-timeout = -1", "negative"},
		{"mountpoint-check-timeout = -1s", "negative"},
		{"glusterfs-timeout = 0s", "out of range"},
		{"reload-mercy = 0", "out of range"},
		{"static-cache-ttl = 25h", "out of range: from 0 to 24h"},
	} {
		_, err := parse(t, "[uwsgi]\n"+c.line+"\n", ParseOptions{})
		if err == nil {
			t.Errorf("%s: accepted", c.line)
			continue
		}
		e := diags(t, err)
		if len(e) != 1 || e[0].Line != 2 || !strings.Contains(e[0].Message, c.want) {
			t.Errorf("%s: got %v, want line 2 and %q", c.line, err, c.want)
		}
	}
	for _, ok := range []string{"check-interval = 10ms", "check-interval = 1h", "static-cache-ttl = 0",
		"hook-timeout = 0.5", "emperor-freq = 500ms"} {
		o := ParseOptions{}
		if strings.HasPrefix(ok, "emperor") {
			o.Scope = ScopeEmperor
		}
		if _, err := parse(t, "[uwsgi]\n"+ok+"\n", o); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
}

// TestEveryDurationHasRange: a duration option registered without a range
// would accept 0 and absurd values again.
func TestEveryDurationHasRange(t *testing.T) {
	for _, o := range Options() {
		if (o.Kind == KindMillis || o.Kind == KindSeconds) && (o.Max <= 0 || o.Min > o.Max) {
			t.Errorf("%s: duration without a range (Min %v, Max %v)", o.Name, o.Min, o.Max)
		}
	}
}

// TestControlBytes: NUL and other control bytes in a value are errors, from
// the file or from the environment; a tab is fine.
func TestControlBytes(t *testing.T) {
	for _, src := range []string{
		"[uwsgi]\nenv = A=b\x00c\n",
		"[uwsgi]\nattach-daemon = sleep\x01 1\n",
		"[uwsgi]\nchdir = /tmp\x7f\n",
		"[uwsgi]\nset-placeholder = x=a\x00b\n",
		"[uwsgi]\nenv = A=$(E)\n",
		"[uwsgi]\nenv = A=b\rc\n",
	} {
		_, err := parse(t, src, ParseOptions{Getenv: env(map[string]string{"E": "x\x00y"})})
		if err == nil {
			t.Errorf("%q: accepted", src)
			continue
		}
		if e := diags(t, err); e[0].Line != 2 || !strings.Contains(e[0].Message, "control byte") {
			t.Errorf("%q: %v", src, err)
		}
	}
	mustParse(t, "[uwsgi]\nattach-daemon = printf 'a\tb'\n", ParseOptions{})
}

// bomb is the 24-line file that took the emperor to 2 GiB: a 512 KiB
// placeholder built by doubling, used as an env value 10000 times.
func bomb() string {
	return "[uwsgi]\n" + doubling(19) + "for-times = 10000\nenv = X%(_)=%(p19)\nendfor =\n"
}

// TestExpansionBounded: the bomb stops at the line where the file's
// expansion crosses MaxExpansion, and parsing it allocates a few MiB.
func TestExpansionBounded(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := parse(t, bomb(), ParseOptions{})
	runtime.ReadMemStats(&after)
	e := diags(t, err)
	if len(e) != 1 || e[0].Line != 23 || e[0].Message != "expansion of this file exceeds 2 MiB (the sum of its values after %(...), $(...), @(...) and loops); giving up" {
		t.Fatalf("got %v", err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 3*MaxExpansion {
		t.Fatalf("parsing the bomb allocated %d MiB", alloc>>20)
	}
	// Values over the limit are measured before they are built: a value
	// of 1 MiB used in a condition costs nothing once the budget is spent.
	src := "[uwsgi]\n" + doubling(19) + strings.Repeat("set-placeholder = q=%(p19)\n", 2) + "if-exists = %(p19)%(p19)%(p19)\nendif =\n"
	_, err = parse(t, src, ParseOptions{})
	if e := diags(t, err); e[len(e)-1].Line != 23 || !strings.Contains(e[len(e)-1].Message, "exceeds 2 MiB") {
		t.Fatalf("got %v", err)
	}
}

// TestItemsBounded: a loop that would apply more than MaxItems lines stops
// at the line past the limit.
func TestItemsBounded(t *testing.T) {
	_, err := parse(t, "[uwsgi]\nfor-times = 10000\nenv = A%(_)=1\nenv = B%(_)=1\nenv = C%(_)=1\nendfor =\n", ParseOptions{})
	e := diags(t, err)
	if len(e) != 1 || e[0].Line != 4 || !strings.Contains(e[0].Message, "more than 10000 options") {
		t.Fatalf("got %v", err)
	}
	_, err = parse(t, "[uwsgi]\nfor = "+strings.Repeat("a ", MaxLoopItems+1)+"\nendfor =\n", ParseOptions{})
	if e := diags(t, err); !strings.Contains(e[0].Message, "for has 10001 items, over the limit of 10000") {
		t.Fatalf("got %v", err)
	}
	// A large real file is well inside the limits: 3000 options of 300 bytes.
	f := mustParse(t, "[uwsgi]\nfor-times = 1000\nenv = A%(_)="+strings.Repeat("v", 300)+"\nenv = B%(_)=1\nattach-daemon = sleep %(_)\nendfor =\n", ParseOptions{})
	if len(f.Entries) != 3000 {
		t.Fatalf("%d entries", len(f.Entries))
	}
}

// TestGlobBounded: the default for-glob gives what filepath.Glob gives, and
// stops with an error past its limit.
func TestGlobBounded(t *testing.T) {
	dir := t.TempDir()
	for i := 0; i < 30; i++ {
		sub := filepath.Join(dir, fmt.Sprintf("d%02d", i%3))
		os.MkdirAll(sub, 0o755)
		os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%02d.ini", i)), nil, 0o644)
	}
	for _, pat := range []string{dir + "/*/*.ini", dir + "/d0[12]/f1*", dir + "/d00", dir + "/nope/*", dir + "/*"} {
		want, _ := filepath.Glob(pat)
		got, err := globLimit(pat, 100)
		if err != nil || strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s: got %v %v, want %v", pat, got, err, want)
		}
	}
	if _, err := globLimit(dir+"/*/*.ini", 29); err == nil || !strings.Contains(err.Error(), "more than 29 paths") {
		t.Fatalf("limit: %v", err)
	}
	if _, err := globLimit(dir+"/[", 10); err == nil {
		t.Fatal("bad pattern accepted")
	}
	_, err := parse(t, "[uwsgi]\nfor-glob = "+dir+"/*/*\nenv = A=%(_)\nendfor =\n", ParseOptions{Glob: func(p string) ([]string, error) { return globLimit(p, 20) }})
	if e := diags(t, err); e[0].Line != 2 || !strings.Contains(e[0].Message, "more than 20 paths") {
		t.Fatalf("got %v", err)
	}
}
