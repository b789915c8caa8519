// Package spell decides whether a name a user wrote (an option, a hook
// action) is a typo of a known name, so that an error can say "did you
// mean X?" only when X is what was meant: a hint that names a neighbour
// with another meaning (hook-pre-jail for hook-pre-app, unlink for link,
// http-socket for chmod-socket) is worse than no hint.
package spell

import "strings"

// Typo says whether typed is a plausible typo of known, and how far apart
// they are (the smaller, the likelier). The rules:
//   - the names are split into words at - and _; each word may be off by
//     at most a third of its length (at least one edit), where an edit is
//     an insertion, a deletion, a substitution or the swap of two adjacent
//     letters (deamon); or the names differ only in their separators
//     (attachdaemon, hook_pre_jail);
//   - a word of fewer than four letters is only a typo by a swap (dc for
//     cd) or a letter left out (usr for user): cp, ls and cat are other
//     commands, not misspelt cd;
//   - a trailing number is part of a name: attach-daemon2, static-map2 and
//     cron2 are names of their own, not typos of attach-daemon, static-map
//     or cron;
//   - a name is not a typo of its opposite: link/unlink, mount/umount,
//     load/unload.
func Typo(typed, known string) (int, bool) {
	if typed == known || len(typed) > 64 || len(known) > 64 {
		return 0, false
	}
	if trimDigits(typed) == trimDigits(known) || opposite(typed, known) {
		return 0, false
	}
	if n := len(typed) - len(known); n > max(2, len(typed)/3) || -n > max(2, len(typed)/3) {
		return 0, false // more letters apart than any typo allowed below
	}
	if unseparated(typed) == unseparated(known) {
		return 1, true
	}
	tw, kw := words(typed), words(known)
	if len(tw) != len(kw) {
		// A separator typed as a letter, or lost inside a word: one edit
		// of the whole, in a name long enough to tell.
		if d := Distance(typed, known); d <= 1 && len(typed) >= 4 {
			return d, true
		}
		return 0, false
	}
	total := 0
	for i := range tw {
		if tw[i] == kw[i] {
			continue
		}
		if opposite(tw[i], kw[i]) {
			return 0, false
		}
		d := Distance(tw[i], kw[i])
		switch {
		case len(tw[i]) < 4 && !swapped(tw[i], kw[i]) && !(d == 1 && len(kw[i]) == len(tw[i])+1):
			return 0, false // a short word is only a swap or a letter short
		case d > max(1, len(tw[i])/3):
			return 0, false
		}
		total += d
	}
	return total, true
}

// Nearest is the known name that typed is most likely a typo of, or "";
// on a tie the first in alphabetical order. ok filters the candidates
// (nil: all).
func Nearest(typed string, known []string, ok func(string) bool) string {
	best, bestD := "", 1<<30
	for _, k := range known {
		d, typo := Typo(typed, k)
		if !typo || (ok != nil && !ok(k)) {
			continue
		}
		if d < bestD || (d == bestD && k < best) {
			best, bestD = k, d
		}
	}
	return best
}

// Distance is the edit distance of a and b where the swap of two adjacent
// letters is one edit, as are an insertion, a deletion and a substitution
// (optimal string alignment). Names over 64 bytes are far from anything.
func Distance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 1 << 20
	}
	// Three rows of the table: i-2, i-1 and i.
	var buf [3][65]int
	prev2, prev, cur := buf[0][:len(b)+1], buf[1][:len(b)+1], buf[2][:len(b)+1]
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

// swapped says a is b with two adjacent letters swapped.
func swapped(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i+1 < len(a); i++ {
		if a[i] != b[i] {
			return a[i] == b[i+1] && a[i+1] == b[i] && a[i+2:] == b[i+2:]
		}
	}
	return false
}

// opposite says one name is the other undone: un- or u- before it.
func opposite(a, b string) bool {
	for _, p := range []string{"un", "u"} {
		if a == p+b || b == p+a {
			return true
		}
	}
	return false
}

func words(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == '-' || r == '_' })
}

func unseparated(s string) string { return strings.NewReplacer("-", "", "_", "").Replace(s) }

func trimDigits(s string) string { return strings.TrimRight(s, "0123456789") }
