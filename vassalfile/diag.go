// Package vassalfile reads vassal files and the emperor's own config file in
// uWSGI's ini dialect: the [uwsgi] section, magic variables, %(option)
// references, $(ENV) lookups, logic blocks and a typed, validated option set.
package vassalfile

import (
	"fmt"
	"strings"
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
	if d.Line > 0 {
		return fmt.Sprintf("%s:%d: %s%s", d.File, d.Line, kind, d.Message)
	}
	return fmt.Sprintf("%s: %s%s", d.File, kind, d.Message)
}

// Errors is the list of every error found in one file. Parsing goes on after
// the first error so that `emperor check` reports all of them at once.
type Errors []Diag

func (e Errors) Error() string {
	parts := make([]string, len(e))
	for i, d := range e {
		parts[i] = d.String()
	}
	return strings.Join(parts, "\n")
}
