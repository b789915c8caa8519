package fileserver

import (
	"cmp"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// exactRange returns r with its Range field rewritten into the form that
// http.ServeContent answers by RFC 9110 §14, for a representation of size
// bytes: ServeContent keeps doing the preconditions and If-Range first
// (§13.2.2), in their order, and sends the parts. r itself is not changed;
// a request without Range is returned as it is (no copy on the fast path).
//
// net/http's own parser gets these wrong: a suffix-length of 0 and a
// suffix range of an empty representation become ranges of length 0
// (Content-Range "bytes 100-99/100", "bytes 0--1/0"), an unparsable byte
// range set gets 416 without Content-Range, an unknown unit is answered 416
// instead of ignored, the unit is case-sensitive, and a last-pos over 63
// bits is refused.
func exactRange(r *http.Request, size int64) *http.Request {
	vals, ok := r.Header["Range"]
	if !ok {
		return r
	}
	v := ""
	if len(vals) > 0 {
		v = vals[0]
	}
	out := ""
	if r.Method == http.MethodGet {
		// §14.2: GET is the only method for which range handling is
		// defined; a server MUST ignore Range for others (net/http
		// answers a HEAD with Range 206).
		out = canonicalRange(v, size)
	}
	if len(vals) == 1 && out == v {
		return r
	}
	r2 := new(http.Request)
	*r2 = *r
	r2.Header = r.Header.Clone()
	if out == "" {
		r2.Header.Del("Range")
	} else {
		r2.Header["Range"] = []string{out}
	}
	return r2
}

// canonicalRange maps a Range value to "" (serve the whole representation),
// to "bytes=SIZE-" (which ServeContent answers 416 with Content-Range
// "bytes */SIZE"), or to the satisfiable ranges as "bytes=first-last,...",
// in the order asked.
func canonicalRange(v string, size int64) string {
	unit, set, ok := strings.Cut(v, "=")
	if !ok || !strings.EqualFold(unit, "bytes") {
		// §14.2: "An origin server MUST ignore a Range header field that
		// contains a range unit it does not understand." A value with no
		// "=" is no ranges-specifier at all, and is ignored too (§14.2:
		// MAY ignore an invalid one). Unit names are case-insensitive
		// (§14.1).
		return ""
	}
	if size == 0 {
		// §14.2: a server MAY ignore Range when the selected representation
		// has no content. It must here: §14.1.2 calls a suffix range of an
		// empty representation satisfiable, yet no Content-Range
		// (§14.4) can describe the nothing it selects.
		return ""
	}
	unsat := "bytes=" + strconv.FormatInt(size, 10) + "-"
	var spans []byteSpan
	specs := 0
	for spec := range strings.SplitSeq(set, ",") {
		spec = strings.Trim(spec, " \t") // OWS around list elements (§5.6.1)
		if spec == "" {
			continue // empty list elements are ignored (§5.6.1.2)
		}
		specs++
		first, last, ok := strings.Cut(spec, "-")
		if !ok || !digits(last) && last != "" || !digits(first) && first != "" || first == "" && last == "" {
			return unsat // an invalid ranges-specifier: 416 (§14.2 allows rejecting it)
		}
		var a, z int64
		switch {
		case first == "":
			// suffix-range: the last N bytes, the whole representation when
			// it is shorter; a suffix-length of 0 selects nothing and is
			// unsatisfiable (§14.1.2, §14.1.3).
			n := satInt(last)
			if n == 0 {
				continue
			}
			a, z = max(size-n, 0), size-1
		default:
			if last != "" && cmpDecimal(last, first) < 0 {
				return unsat // §14.1.1: invalid if last-pos < first-pos
			}
			a = satInt(first)
			if a >= size {
				continue // unsatisfiable: starts at or past the end
			}
			// §14.1.2: a last-pos absent or at or past the end (whatever
			// its number of digits) means the end.
			z = size - 1
			if last != "" {
				z = min(satInt(last), size-1)
			}
		}
		spans = append(spans, byteSpan{a, z})
	}
	if specs == 0 || len(spans) == 0 {
		// No range-spec at all (1#range-spec), or none satisfiable: 416.
		return unsat
	}
	// §14.2 and §15.3.7.2: overlapping ranges may be coalesced, and a
	// server may ignore a set of many small ranges, "indications of either
	// a broken client or a deliberate denial-of-service attack". So the
	// reply never holds a byte twice, nor more than MaxRanges parts.
	spans = coalesce(spans)
	if len(spans) > MaxRanges {
		return ""
	}
	var b strings.Builder
	b.WriteString("bytes=")
	for i, s := range spans {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(s.a, 10))
		b.WriteByte('-')
		b.WriteString(strconv.FormatInt(s.z, 10))
	}
	return b.String()
}

// MaxRanges is the most parts a multipart/byteranges reply has; a set of
// more (after coalescing) is ignored and the whole file sent, as nginx's
// max_ranges and Apache's MaxRanges do.
const MaxRanges = 100

// byteSpan is a satisfiable range, first and last byte.
type byteSpan struct{ a, z int64 }

// coalesce returns spans as they are when no two overlap or touch, and
// else all of them merged, in ascending order (§15.3.7.2 allows both).
func coalesce(spans []byteSpan) []byteSpan {
	if len(spans) < 2 {
		return spans
	}
	sorted := slices.Clone(spans)
	slices.SortFunc(sorted, func(x, y byteSpan) int { return cmp.Compare(x.a, y.a) })
	merged := sorted[:1]
	for _, s := range sorted[1:] {
		last := &merged[len(merged)-1]
		if s.a <= last.z+1 {
			last.z = max(last.z, s.z)
			continue
		}
		merged = append(merged, s)
	}
	if len(merged) == len(spans) {
		return spans // disjoint: the order asked is kept
	}
	return merged
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// satInt is the value of a string of digits, saturated at the largest
// int64: any position past that is past the end of every representation.
func satInt(s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 1<<63 - 1
	}
	return n
}

// cmpDecimal compares two strings of digits by value, whatever their
// length.
func cmpDecimal(x, y string) int {
	x, y = strings.TrimLeft(x, "0"), strings.TrimLeft(y, "0")
	if len(x) != len(y) {
		return len(x) - len(y)
	}
	return strings.Compare(x, y)
}
