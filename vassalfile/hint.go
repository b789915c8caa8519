package vassalfile

import "fmt"

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

// suggest finds the closest known option name for a typo.
func suggest(k string) string {
	best, bestD := "", 1<<30
	for name := range canonical {
		d := editDistance(k, name)
		if d < bestD || (d == bestD && name < best) {
			best, bestD = name, d
		}
	}
	limit := len(k) / 3
	if limit < 2 {
		limit = 2
	}
	if bestD <= limit {
		return best
	}
	return ""
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 1 << 20
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
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
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
