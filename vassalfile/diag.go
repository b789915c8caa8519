// Package vassalfile reads vassal files and the emperor's own config file in
// uWSGI's ini dialect: the [uwsgi] section, magic variables, %(option)
// references, $(ENV) lookups, logic blocks and a typed, validated option set.
package vassalfile

import (
	"errors"
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits on what a file's diagnostics may weigh. The emperor puts a file's
// errors in `emperor status` (one control line) and in its log on every
// parse, so they must stay small whatever the file holds: a value quoted in a
// message is cut to MaxQuoted bytes, a message to MaxMessage bytes, and at
// most MaxErrors errors (and as many warnings) are kept per file, followed by
// "and N more".
const (
	MaxQuoted  = 100
	MaxMessage = 300
	MaxErrors  = 10
)

// Diag is one problem found in a file, always with its position.
type Diag struct {
	File    string
	Line    int
	Message string
	Warning bool
	// Count is how many times the same problem was found on the same line
	// (0 or 1: once): a line in the body of a for block is read once per
	// item, and its problem is reported once, with the count.
	Count int
	// ForKey, ForLine and ForItems name the for block (for, for-glob,
	// for-times) whose items repeated the problem, and how many items it
	// had; ForLine is 0 outside a loop.
	ForKey   string
	ForLine  int
	ForItems int

	// Via says how the file of an included line was read: "read by ini
	// at app.ini:3" (see File.Locate).
	Via string

	// more is set on the "and N more" entry of a capped list: the number
	// of problems it stands for.
	more int
}

func (d Diag) String() string {
	kind := ""
	if d.Warning {
		kind = "warning: "
	}
	msg := clip(d.Message, MaxMessage) + d.repeats()
	if d.Via != "" {
		msg += " (" + clip(d.Via, MaxMessage) + ")"
	}
	if d.Line > 0 {
		return fmt.Sprintf("%s:%d: %s%s", d.File, d.Line, kind, msg)
	}
	return fmt.Sprintf("%s: %s%s", d.File, kind, msg)
}

// repeats says how often the problem was found, if more than once.
func (d Diag) repeats() string {
	switch {
	case d.Count < 2:
		return ""
	case d.ForLine == 0:
		return fmt.Sprintf(" (x%d)", d.Count)
	case d.Count == d.ForItems:
		return fmt.Sprintf(" (x%d, once per item of the %s at line %d)", d.Count, d.ForKey, d.ForLine)
	}
	return fmt.Sprintf(" (x%d, for %d of the %d items of the %s at line %d)", d.Count, d.Count, d.ForItems, d.ForKey, d.ForLine)
}

// More is the number of problems an "and N more" entry stands for (0 for
// any other entry).
func (d Diag) More() int { return d.more }

// Errors is the list of problems found in one file: its errors, and the
// warnings found with them (Diag.Warning), sorted by line (see Merge).
// Checking goes on after the first error so that `emperor check` reports
// them at once, up to MaxErrors of each kind; a last entry then says how
// many more there were.
type Errors []Diag

// Error lists at most MaxErrors+1 diagnostics, each cut to MaxMessage
// bytes, then how many more there were, so it is a few KiB whatever the
// file held.
func (e Errors) Error() string {
	n := min(len(e), MaxErrors+1)
	parts := make([]string, 0, n+1)
	for _, d := range e[:n] {
		parts = append(parts, d.String())
	}
	if rest := e[n:]; len(rest) > 0 {
		errs, warns := 0, 0
		for _, d := range rest {
			c := max(d.more, 1)
			if d.Warning {
				warns += c
			} else {
				errs += c
			}
		}
		var more []string
		if errs > 0 {
			more = append(more, fmt.Sprintf("%d more errors", errs))
		}
		if warns > 0 {
			more = append(more, fmt.Sprintf("%d more warnings", warns))
		}
		parts = append(parts, "and "+strings.Join(more, " and "))
	}
	return strings.Join(parts, "\n")
}

// HasErrors says whether the list holds an error, not only warnings.
func (e Errors) HasErrors() bool {
	for _, d := range e {
		if !d.Warning {
			return true
		}
	}
	return false
}

// Warnings returns the warnings of the list.
func (e Errors) Warnings() []Diag {
	var out []Diag
	for _, d := range e {
		if d.Warning {
			out = append(out, d)
		}
	}
	return out
}

// Merge joins the diagnostics of the checks of one file (the parse for a
// first start, the one for a reload, the decoding, the user lookups: errors
// and warnings alike) into one list sorted by line, errors before warnings
// on a line. A problem that several checks found is listed once; the
// "and N more" entries come last, one per kind, with the largest count any
// check had (the checks read the same lines).
func Merge(lists ...[]Diag) Errors {
	type key struct {
		file    string
		line    int
		msg     string
		warning bool
	}
	var out Errors
	at := map[key]int{}
	more := [2]Diag{}
	for _, l := range lists {
		for _, d := range l {
			if d.more > 0 {
				w := 0
				if d.Warning {
					w = 1
				}
				if d.more > more[w].more {
					more[w] = d
				}
				continue
			}
			k := key{d.File, d.Line, d.Message, d.Warning}
			if i, dup := at[k]; dup {
				if d.Count > out[i].Count {
					out[i] = d
				}
				continue
			}
			at[k] = len(out)
			out = append(out, d)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Line != out[j].Line {
			return out[i].Line < out[j].Line
		}
		return !out[i].Warning && out[j].Warning
	})
	for _, m := range more {
		if m.more > 0 {
			out = append(out, m)
		}
	}
	return out
}

// DiagsOf returns the diagnostics an error carries: the list of an Errors,
// or the error as one diagnostic of file path; nil for nil.
func DiagsOf(path string, err error) []Diag {
	var e Errors
	switch {
	case err == nil:
		return nil
	case errors.As(err, &e):
		return e
	}
	return []Diag{{File: path, Message: err.Error()}}
}

// QuoteValue quotes a value for an error message, cut to MaxQuoted bytes of
// quoted text with an ellipsis and the full length: a value may be up to
// 1 MiB after expansion, and a message quotes it whole only when it is short.
// It never quotes more of the value than it shows.
func QuoteValue(v string) string {
	if len(v) <= MaxQuoted {
		if q := strconv.Quote(v); len(q) <= MaxQuoted+2 {
			return q
		}
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(v); {
		_, w := utf8.DecodeRuneInString(v[i:])
		q := strconv.Quote(v[i : i+w])
		if b.Len()+len(q)-2 > MaxQuoted+1 {
			break
		}
		b.WriteString(q[1 : len(q)-1])
		i += w
	}
	b.WriteByte('"')
	return b.String() + fmt.Sprintf("… (%d bytes)", len(v))
}

// clip cuts a message to max bytes, saying how long it was.
func clip(s string, max int) string {
	if len(s) <= max {
		return s
	}
	return cutRunes(s, max) + fmt.Sprintf("… (%d bytes)", len(s))
}

// cutRunes returns at most n bytes of s, never splitting a UTF-8 sequence.
func cutRunes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// diagList collects the diagnostics of one file, keeping MaxErrors of them
// and counting the rest. A problem found again on the same line (a line of
// a for block's body, read once per item) is counted on its first report,
// not listed again.
type diagList struct {
	path    string
	warning bool
	list    []Diag
	more    int
	// dropped remembers the problems counted in more, so that a repeat of
	// one is not counted again.
	dropped map[uint64]bool
}

func (l *diagList) add(line int, msg string) {
	msg = clip(msg, MaxMessage)
	for i := range l.list {
		if d := &l.list[i]; d.Line == line && d.Message == msg {
			d.Count = max(d.Count, 1) + 1
			return
		}
	}
	if l.full() {
		h := fnv.New64a()
		fmt.Fprintf(h, "%d\x00%s", line, msg)
		if l.dropped == nil {
			l.dropped = map[uint64]bool{}
		}
		if !l.dropped[h.Sum64()] {
			l.dropped[h.Sum64()] = true
			l.more++
		}
		return
	}
	l.list = append(l.list, Diag{File: l.path, Line: line, Message: msg, Warning: l.warning})
}

// full says a further diagnostic would only be counted: callers skip
// expensive work (a spelling suggestion) for it.
func (l *diagList) full() bool { return len(l.list) >= MaxErrors }

// mark is where the diagnostics found from now on start, for inLoop.
func (l *diagList) mark() int { return len(l.list) }

// inLoop notes on the diagnostics found since mark, while the body of the
// for block key at line was read for each of its items, which of them
// every item (or several) repeated.
func (l *diagList) inLoop(mark int, key string, line, items int) {
	for i := mark; i < len(l.list); i++ {
		if d := &l.list[i]; d.Count > 1 {
			d.ForKey, d.ForLine, d.ForItems = key, line, items
		}
	}
}

// done returns the diagnostics, with a last one for those not kept.
func (l *diagList) done() []Diag {
	if l.more == 0 {
		return l.list
	}
	what := "errors"
	if l.warning {
		what = "warnings"
	}
	return append(l.list, Diag{File: l.path, Message: fmt.Sprintf("and %d more %s", l.more, what), Warning: l.warning, more: l.more})
}
