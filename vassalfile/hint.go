package vassalfile

import (
	"fmt"
	"strings"

	"github.com/emperor-dev/emperor/uwsgi"
)

// unknownOption is the error for key, an option nobody knows, with a hint
// of what to write when there is one. It is cached per parse: a line in a
// loop's body is read once per item, and a suggestion compares the key with
// every option name.
func (p *parser) unknownOption(k string) string {
	if m, ok := p.hints[k]; ok {
		return m
	}
	if p.errs.full() {
		// Only counted: spare the comparison.
		return "unknown option"
	}
	m := fmt.Sprintf("unknown option %s", QuoteValue(k))
	if s := suggest(k); s != "" {
		m = fmt.Sprintf("unknown option %s (did you mean %s?)", QuoteValue(k), QuoteValue(s))
	}
	if p.hints == nil {
		p.hints = map[string]string{}
	}
	p.hints[k] = m
	return m
}

// hookFamilies are the first words of uWSGI's hook options
// (FAMILY-PHASE).
var hookFamilies = []string{"hook", "exec", "call", "mount", "umount"}

// Phase classes: where a hook phase runs. A spelling suggestion never
// crosses from one class to another: hook-pre-app (uWSGI runs it in the
// app server, as the app's user, before the app loads) must not become
// hook-pre-jail (a command run as root before the jail).
const (
	phaseSupervisor = "supervisor" // ours: PID 1 before and after the privilege drop
	phaseApp        = "app"        // run by uWSGI's app server
	phaseEmperor    = "emperor"    // run by uWSGI's Emperor, not by a vassal
)

// hookPhases are uWSGI 2.0's hook phases (core/uwsgi.c) and their class.
var hookPhases = map[string]string{
	"asap": phaseSupervisor, "pre-jail": phaseSupervisor, "post-jail": phaseSupervisor,
	"in-jail": phaseSupervisor, "as-root": phaseSupervisor, "as-user": phaseSupervisor,
	"as-user-atexit": phaseSupervisor,

	"pre-app": phaseApp, "post-app": phaseApp, "post-fork": phaseApp, "accepting": phaseApp,
	"accepting1": phaseApp, "accepting-once": phaseApp, "accepting1-once": phaseApp,
	"master-start": phaseApp, "touch": phaseApp, "as-mule": phaseApp, "as-gateway": phaseApp,

	"emperor-start": phaseEmperor, "emperor-stop": phaseEmperor, "emperor-reload": phaseEmperor,
	"emperor-lost": phaseEmperor, "as-vassal": phaseEmperor, "as-vassal1": phaseEmperor,
	"as-vassal3": phaseEmperor, "as-emperor": phaseEmperor, "as-emperor1": phaseEmperor,
	"as-emperor2": phaseEmperor, "as-emperor4": phaseEmperor, "as-on-demand-vassal": phaseEmperor,
	"as-on-config-vassal": phaseEmperor, "as-emperor-before-vassal": phaseEmperor,
	"as-vassal-before-drop": phaseEmperor, "as-emperor-setns": phaseEmperor,
}

// phaseClass is the class of the hook phase a name (typed, or a known
// option) is written for: its first word within one edit of a hook family,
// the rest the nearest uWSGI phase. "" for a name that is no hook option,
// or whose phase is as near to phases of two classes.
func phaseClass(name string) string {
	fam, phase, ok := strings.Cut(name, "-")
	if !ok {
		return ""
	}
	isFamily := false
	for _, f := range hookFamilies {
		if typoDistance(fam, f) <= 1 {
			isFamily = true
		}
	}
	if !isFamily {
		return ""
	}
	if c, ok := hookPhases[phase]; ok {
		return c
	}
	class, best := "", wordLimit(phase)+1
	for ph, c := range hookPhases {
		switch d := typoDistance(phase, ph); {
		case d < best:
			class, best = c, d
		case d == best && c != class:
			class = "" // as near to two classes: say nothing
		}
	}
	return class
}

// suggest finds the known option name that a typo most likely meant, or
// "". Only a plausible typo is suggested, never a neighbour with another
// meaning:
//   - each word (split at - and _) is at most a third of its length (at
//     least one edit) away from the word it stands for, or the two differ
//     only in their separators (hook-prejail);
//   - a trailing number is part of the name: attach-daemon2, static-map2,
//     logto2 and cron2 are options of their own, not typos of attach-daemon,
//     static-map, logto or cron;
//   - a hook option never changes the class of its phase (phaseClass).
func suggest(k string) string {
	if len(k) > 64 {
		return ""
	}
	best, bestD := "", 1<<30
	class := phaseClass(k)
	consider := func(name string) {
		if d, ok := typoOf(k, class, name); ok && (d < bestD || (d == bestD && name < best)) {
			best, bestD = name, d
		}
	}
	for name := range canonical {
		consider(name)
	}
	for _, name := range uwsgi.Names() {
		consider(name)
	}
	return best
}

// typoOf says whether k (whose hook phase class is class) is a plausible
// typo of name, and how far apart they are.
func typoOf(k, class, name string) (int, bool) {
	if k == name || trimDigits(k) == trimDigits(name) {
		return 0, false
	}
	if abs(len(k)-len(name)) > max(2, len(k)/3) {
		return 0, false
	}
	if phaseClass(name) != class {
		return 0, false
	}
	if unseparated(k) == unseparated(name) {
		return 1, true
	}
	kw, nw := words(k), words(name)
	if len(kw) != len(nw) {
		// A letter added or lost inside a word, or a separator replaced
		// by another character: one edit of the whole.
		if d := typoDistance(k, name); d <= 1 {
			return d, true
		}
		return 0, false
	}
	total := 0
	for i := range kw {
		d := typoDistance(kw[i], nw[i])
		if d > wordLimit(kw[i]) {
			return 0, false
		}
		total += d
	}
	if total > max(2, len(k)/3) {
		return 0, false
	}
	return total, true
}

// wordLimit is how many edits a typo of word may hold.
func wordLimit(word string) int { return max(1, len(word)/3) }

func words(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == '-' || r == '_' })
}

func unseparated(s string) string {
	return strings.NewReplacer("-", "", "_", "").Replace(s)
}

func trimDigits(s string) string { return strings.TrimRight(s, "0123456789") }

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// typoDistance is the edit distance of a and b where swapping two adjacent
// letters (deamon) is one edit, as is an insertion, a deletion or a
// substitution (optimal string alignment).
func typoDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 1 << 20
	}
	var d [65][65]int
	for i := 0; i <= len(a); i++ {
		d[i][0] = i
	}
	for j := 0; j <= len(b); j++ {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
