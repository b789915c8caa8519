// Package vassalfile reads vassal files and the emperor's own config file in
// uWSGI's ini dialect: the [uwsgi] section, magic variables, %(option)
// references, $(ENV) lookups, logic blocks and a typed, validated option set.
package vassalfile

import (
	"fmt"
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
}

func (d Diag) String() string {
	kind := ""
	if d.Warning {
		kind = "warning: "
	}
	msg := clip(d.Message, MaxMessage)
	if d.Line > 0 {
		return fmt.Sprintf("%s:%d: %s%s", d.File, d.Line, kind, msg)
	}
	return fmt.Sprintf("%s: %s%s", d.File, kind, msg)
}

// Errors is the list of errors found in one file. Parsing goes on after
// the first error so that `emperor check` reports them at once, up to
// MaxErrors; a last entry then says how many more there were.
type Errors []Diag

// Error lists at most MaxErrors diagnostics, each cut to MaxMessage bytes,
// so it is a few KiB whatever the file held.
func (e Errors) Error() string {
	n := min(len(e), MaxErrors+1)
	parts := make([]string, 0, n+1)
	for _, d := range e[:n] {
		parts = append(parts, d.String())
	}
	if len(e) > n {
		parts = append(parts, fmt.Sprintf("and %d more", len(e)-n))
	}
	return strings.Join(parts, "\n")
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
// and counting the rest.
type diagList struct {
	path    string
	warning bool
	list    []Diag
	more    int
}

func (l *diagList) add(line int, msg string) {
	if l.full() {
		l.more++
		return
	}
	l.list = append(l.list, Diag{File: l.path, Line: line, Message: clip(msg, MaxMessage), Warning: l.warning})
}

// full says a further diagnostic would only be counted: callers skip
// expensive work (a spelling suggestion) for it.
func (l *diagList) full() bool { return len(l.list) >= MaxErrors }

// done returns the diagnostics, with a last one for those not kept.
func (l *diagList) done() []Diag {
	if l.more == 0 {
		return l.list
	}
	what := "errors"
	if l.warning {
		what = "warnings"
	}
	return append(l.list, Diag{File: l.path, Message: fmt.Sprintf("and %d more %s", l.more, what), Warning: l.warning})
}
