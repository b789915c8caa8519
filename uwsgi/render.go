package uwsgi

import (
	"bytes"
	"strings"
)

// Line is one option line handed to uWSGI.
type Line struct {
	Key, Value string
	Line       int // in the vassal file; 0: added by the emperor
}

// Render writes lines as the [uwsgi] section of an ini file that uWSGI
// reads back line for line. The values are final (the emperor expanded
// them). uWSGI expands magic variables again as it reads the file
// (core/utils.c magic_sub), so every % is doubled to stay a %; its later
// passes over $(ENV), %(option) and @(file) have no escape in uWSGI 2.0, so
// a value that still holds such a reference after our expansion (one
// written with %%(...)) is expanded by uWSGI. A value cannot hold a
// newline (the parser reads one line per value); one that does is cut there.
func Render(lines []Line) []byte {
	var b bytes.Buffer
	b.WriteString("[uwsgi]\n")
	for _, l := range lines {
		b.WriteString(l.Key)
		b.WriteString(" = ")
		b.WriteString(escape(l.Value))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func escape(v string) string {
	if i := strings.IndexAny(v, "\r\n"); i >= 0 {
		v = v[:i]
	}
	return strings.ReplaceAll(v, "%", "%%")
}
