package vassalfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Limits that keep a hostile or broken file from hanging or exhausting the
// parser (a for-times loop of a billion, a for-glob over /, a placeholder
// doubled to 512 KiB and used in a loop of 10000). Together they bound the
// memory that checking one file takes to a few MiB; a real vassal file is a
// few KiB and sets tens of options.
const (
	// MaxFileSize bounds the file as read.
	MaxFileSize = 1 << 20
	// MaxItems bounds the lines a file applies: every option and
	// placeholder it sets, each pass of a for loop over its body counting
	// again.
	MaxItems = 10000
	// MaxLoopItems bounds the items of one for, for-glob or for-times.
	MaxLoopItems = 10000
	// MaxExpansion bounds the bytes of every value a file expands, summed
	// over the whole file: options, placeholders, conditions and loop items.
	MaxExpansion = 2 << 20
	// maxValueBytes bounds one value after expansion.
	maxValueBytes = 1 << 20
)

// errTooBig is an expansion past MaxExpansion; the parse stops there.
var errTooBig = errors.New("expansion of this file is over the limit")

// Entry is one option as set by the file, after expansion.
type Entry struct {
	Key   string // canonical option name
	Value string // as written, after expansion
	// Val is Value parsed once, by the option's parser: an int, bool,
	// time.Duration, Namespaces, hooks.Hook, GlusterMount, StaticMap,
	// PivotRoot, Daemon, int64 size, or the string itself.
	Val  any
	Line int
}

// File is a parsed file: its options in file order.
type File struct {
	Path     string
	Name     string // file name without extension (%n)
	Entries  []Entry
	Warnings []Diag
	// rejected are the options (canonical names) set on a line whose value
	// was an error, so that Decode does not report them missing as well.
	rejected map[string]bool
}

func (f *File) reject(key string) {
	if f.rejected == nil {
		f.rejected = map[string]bool{}
	}
	f.rejected[key] = true
}

// Rejected says whether the file set option key (canonical name) on a line
// that was an error, and Entries lack it for that reason.
func (f *File) Rejected(key string) bool { return f.rejected[key] }

// All returns every entry of key (canonical name), in order.
func (f *File) All(key string) []Entry {
	var out []Entry
	for _, e := range f.Entries {
		if e.Key == key {
			out = append(out, e)
		}
	}
	return out
}

// Last returns the last value of key: scalar options take the last value.
func (f *File) Last(key string) (Entry, bool) {
	for i := len(f.Entries) - 1; i >= 0; i-- {
		if f.Entries[i].Key == key {
			return f.Entries[i], true
		}
	}
	return Entry{}, false
}

// ParseOptions are the facts the parser cannot read from the file itself.
type ParseOptions struct {
	Scope    Scope // ScopeVassal when zero
	Reload   bool  // value of if-reload
	Getenv   func(string) (string, bool)
	Stat     func(string) (fs.FileInfo, error)
	Glob     func(string) ([]string, error)
	Hostname string
	Now      func() time.Time
}

func (o *ParseOptions) fill() {
	if o.Scope == 0 {
		o.Scope = ScopeVassal
	}
	if o.Getenv == nil {
		o.Getenv = os.LookupEnv
	}
	if o.Stat == nil {
		o.Stat = os.Stat
	}
	if o.Glob == nil {
		o.Glob = func(p string) ([]string, error) { return globLimit(p, MaxLoopItems) }
	}
	if o.Hostname == "" {
		o.Hostname, _ = os.Hostname()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// ParseFile reads and parses path.
func ParseFile(path string, o ParseOptions) (*File, error) {
	src, err := ReadFile(path)
	if err != nil {
		return nil, Errors{{File: path, Message: err.Error()}}
	}
	return Parse(path, src, o)
}

// ReadFile reads a vassal or emperor file, at most MaxFileSize bytes, and
// only if it is a regular file (see ReadFileStat).
func ReadFile(path string) ([]byte, error) {
	b, _, err := ReadFileStat(path)
	return b, err
}

// NameOf is a file's vassal name, %n: its base name without the extension.
func NameOf(path string) string {
	base := filepath.Base(path)
	return strings.TrimSuffix(base, filepath.Ext(base))
}

type rawLine struct {
	key, value string
	line       int
}

// lex returns the key = value lines of the [uwsgi] section.
func lex(errs *diagList, src []byte) []rawLine {
	var out []rawLine
	section := ""
	sawSection := false
	for i, l := range strings.Split(string(src), "\n") {
		n := i + 1
		t := strings.TrimSpace(strings.TrimSuffix(l, "\r"))
		if t == "" || t[0] == ';' || t[0] == '#' {
			continue
		}
		if t[0] == '[' {
			if !strings.HasSuffix(t, "]") {
				errs.add(n, fmt.Sprintf("section header %s has no closing ]", QuoteValue(t)))
				section = ""
				continue
			}
			section = strings.TrimSpace(t[1 : len(t)-1])
			if section == "uwsgi" {
				sawSection = true
			}
			continue
		}
		if section != "uwsgi" {
			continue
		}
		k, v, ok := strings.Cut(t, "=")
		k = strings.TrimSpace(k)
		if !ok {
			errs.add(n, fmt.Sprintf("%s is not key = value", QuoteValue(t)))
			continue
		}
		if k == "" {
			errs.add(n, "empty option name before '='")
			continue
		}
		out = append(out, rawLine{key: k, value: strings.TrimSpace(v), line: n})
	}
	if !sawSection {
		errs.add(0, "no [uwsgi] section (only [uwsgi] is read)")
	}
	return out
}

type parser struct {
	o     ParseOptions
	path  string
	name  string
	magic map[byte]string
	ph    map[string]string // placeholders: options set so far and set-placeholder names
	file  *File
	errs  diagList
	warns diagList
	// expanded counts the bytes of values expanded so far, items the lines
	// applied (see MaxExpansion, MaxItems); stopped is set once a limit is
	// crossed, and nothing more is read.
	expanded int
	items    int
	stopped  bool
	// hints caches the unknown-option message of each key (a spelling
	// suggestion compares the key with every option name), for a line
	// read once per item of a loop.
	hints map[string]string
}

// Parse parses src as the file at path. It returns every error it finds as
// Errors; warnings are in File.Warnings.
func Parse(path string, src []byte, o ParseOptions) (*File, error) {
	o.fill()
	if len(src) > MaxFileSize {
		return nil, Errors{{File: path, Message: fmt.Sprintf("file is %d bytes, over the %d byte limit", len(src), MaxFileSize)}}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	p := &parser{o: o, path: path, name: NameOf(abs), ph: map[string]string{},
		errs: diagList{path: path}, warns: diagList{path: path, warning: true}}
	p.file = &File{Path: path, Name: p.name}
	dir := filepath.Dir(abs)
	p.magic = map[byte]string{
		'n': p.name,
		's': filepath.Base(abs),
		'p': abs,
		'd': strings.TrimSuffix(dir, "/") + "/",
		'e': strings.TrimPrefix(filepath.Ext(abs), "."),
		'c': filepath.Base(dir),
		'h': o.Hostname,
		't': strconv.FormatInt(o.Now().Unix(), 10),
		'T': strconv.FormatInt(o.Now().UnixMicro(), 10),
		'k': strconv.Itoa(runtime.NumCPU()),
	}
	lines := lex(&p.errs, src)
	p.run(lines)
	sort.SliceStable(p.errs.list, func(i, j int) bool { return p.errs.list[i].Line < p.errs.list[j].Line })
	p.file.Warnings = p.warns.done()
	if errs := p.errs.done(); len(errs) > 0 {
		return p.file, Errors(errs)
	}
	return p.file, nil
}

func (p *parser) errorf(line int, format string, a ...any) {
	p.errs.add(line, fmt.Sprintf(format, a...))
}

func (p *parser) warnf(line int, format string, a ...any) {
	p.warns.add(line, fmt.Sprintf(format, a...))
}

// Logic block keys.
func isIf(k string) bool {
	switch k {
	case "if-exists", "if-not-exists", "if-file", "if-not-file", "if-dir", "if-not-dir",
		"if-env", "if-not-env", "if-opt", "if-not-opt", "if-reload", "if-not-reload":
		return true
	}
	return false
}

func isFor(k string) bool { return k == "for" || k == "for-glob" || k == "for-times" }

type block struct {
	kind   string // "if" or "for"
	open   rawLine
	active bool // if: the branch being read is taken
	inElse bool
	under  string // value of %(_) in the taken branch
	body   []rawLine
}

// run applies the lines. Logic blocks do not nest (as in uWSGI); a nested
// opener is an error naming both lines, and an unclosed block names its
// opening line.
func (p *parser) run(lines []rawLine) {
	var cur *block
	nestedDepth := 0
	for _, l := range lines {
		if p.stopped {
			return
		}
		k := l.key
		switch {
		case isIf(k) || isFor(k):
			if cur != nil {
				p.errorf(l.line, "%s cannot be nested inside the %s opened at line %d (logic blocks do not nest)", k, cur.open.key, cur.open.line)
				nestedDepth++
				continue
			}
			if isFor(k) {
				cur = &block{kind: "for", open: l}
				continue
			}
			ok, under, err := p.cond(l)
			if err != nil {
				p.fail(l, err)
			}
			cur = &block{kind: "if", open: l, active: ok && err == nil, under: under}
		case k == "else":
			if nestedDepth > 0 {
				continue
			}
			if cur == nil || cur.kind != "if" {
				p.errorf(l.line, "else without an open if-* block")
				continue
			}
			if cur.inElse {
				p.errorf(l.line, "second else in the block opened at line %d", cur.open.line)
				continue
			}
			cur.inElse = true
			cur.active = !cur.active
			if cur.active {
				cur.under = ""
			}
		case k == "endif" || strings.HasPrefix(k, "endif:"):
			if nestedDepth > 0 {
				nestedDepth--
				continue
			}
			if cur == nil || cur.kind != "if" {
				p.errorf(l.line, "endif without an open if-* block")
				continue
			}
			cur = nil
		case k == "endfor" || strings.HasPrefix(k, "endfor:"):
			if nestedDepth > 0 {
				nestedDepth--
				continue
			}
			if cur == nil || cur.kind != "for" {
				p.errorf(l.line, "endfor without an open for block")
				continue
			}
			p.loop(cur)
			cur = nil
		default:
			if nestedDepth > 0 {
				continue
			}
			switch {
			case cur == nil:
				p.apply(l, "", false)
			case cur.kind == "for":
				cur.body = append(cur.body, l)
			case cur.active:
				p.apply(l, cur.under, true)
			}
		}
	}
	if cur != nil {
		end := "endif"
		if cur.kind == "for" {
			end = "endfor"
		}
		p.errorf(cur.open.line, "%s opened here is never closed (missing %s)", cur.open.key, end)
	}
}

func (p *parser) loop(b *block) {
	v, err := p.expand(b.open.value, "", false)
	if err != nil {
		p.fail(b.open, err)
		return
	}
	var items []string
	switch b.open.key {
	case "for":
		if n := countFields(v); n > MaxLoopItems {
			p.errorf(b.open.line, "for has %d items, over the limit of %d", n, MaxLoopItems)
			return
		}
		items = strings.Fields(v)
	case "for-glob":
		m, err := p.o.Glob(v)
		if err != nil {
			p.errorf(b.open.line, "for-glob: %v", err)
			return
		}
		if len(m) > MaxLoopItems {
			p.errorf(b.open.line, "for-glob matches more than %d paths", MaxLoopItems)
			return
		}
		for _, it := range m {
			if err := p.spend(len(it)); err != nil {
				p.fail(b.open, err)
				return
			}
		}
		items = m
	case "for-times":
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			p.errorf(b.open.line, "for-times wants a count, got %s", QuoteValue(v))
			return
		}
		if n > MaxLoopItems {
			p.errorf(b.open.line, "for-times %d is over the limit of %d", n, MaxLoopItems)
			return
		}
		for i := 1; i <= n; i++ {
			items = append(items, strconv.Itoa(i))
		}
	}
	if len(items) > MaxLoopItems {
		p.errorf(b.open.line, "%s has %d items, over the limit of %d", b.open.key, len(items), MaxLoopItems)
		return
	}
	errs, warns := p.errs.mark(), p.warns.mark()
	defer p.errs.inLoop(errs, b.open.key, b.open.line, len(items))
	defer p.warns.inLoop(warns, b.open.key, b.open.line, len(items))
	for _, it := range items {
		for _, l := range b.body {
			if p.stopped {
				return
			}
			p.apply(l, it, true)
		}
	}
}

// countFields counts the words of v as strings.Fields would split it,
// without allocating them.
func countFields(v string) int {
	n, in := 0, false
	for _, r := range v {
		sp := unicode.IsSpace(r)
		if !sp && !in {
			n++
		}
		in = !sp
	}
	return n
}

// spend counts n bytes of expansion against MaxExpansion.
func (p *parser) spend(n int) error {
	if p.expanded+n > MaxExpansion {
		return errTooBig
	}
	p.expanded += n
	return nil
}

// fail reports an error of line l. An expansion past the file's limit
// stops the parse at the line that crossed it.
func (p *parser) fail(l rawLine, err error) {
	if errors.Is(err, errTooBig) {
		p.errorf(l.line, "expansion of this file exceeds %d MiB (the sum of its values after %%(...), $(...) and loops); giving up", MaxExpansion>>20)
		p.stopped = true
		return
	}
	p.errorf(l.line, "%s: %v", l.key, err)
}

// cond evaluates an if-* line after expansion (uWSGI evaluates before
// expansion, which breaks conditions on %(option) and $(ENV); see uWSGI
// issue #1513). It returns the truth and the value of %(_) in the block.
func (p *parser) cond(l rawLine) (bool, string, error) {
	k := l.key
	if k == "if-reload" {
		return p.o.Reload, "", nil
	}
	if k == "if-not-reload" {
		return !p.o.Reload, "", nil
	}
	v, err := p.expand(l.value, "", false)
	if err != nil {
		return false, "", err
	}
	neg := strings.HasPrefix(k, "if-not-")
	base := strings.TrimPrefix(strings.TrimPrefix(k, "if-not-"), "if-")
	if v == "" {
		return false, "", fmt.Errorf("needs a value")
	}
	var ok bool
	switch base {
	case "exists":
		_, err := p.o.Stat(v)
		ok = err == nil
	case "file":
		st, err := p.o.Stat(v)
		ok = err == nil && st.Mode().IsRegular()
	case "dir":
		st, err := p.o.Stat(v)
		ok = err == nil && st.IsDir()
	case "env":
		name, want, hasWant := strings.Cut(v, "=")
		val, set := p.o.Getenv(name)
		ok = set && val != ""
		if hasWant {
			ok = set && val == want
		}
		if ok && !neg {
			return true, val, nil
		}
	case "opt":
		name, want, hasWant := strings.Cut(v, "=")
		val, set := p.ph[name]
		ok = set
		if hasWant {
			ok = set && val == want
		}
		if ok && !neg {
			return true, val, nil
		}
	}
	if neg {
		return !ok, v, nil
	}
	return ok, v, nil
}

func (p *parser) apply(l rawLine, under string, hasUnder bool) {
	p.items++
	if p.items > MaxItems {
		p.errorf(l.line, "this file sets more than %d options (each pass of a loop counts); giving up", MaxItems)
		p.stopped = true
		return
	}
	v, err := p.expand(l.value, under, hasUnder)
	if err != nil {
		p.fail(l, err)
		return
	}
	k := l.key
	if lang, ok := loaderOptions[k]; ok {
		p.errorf(l.line, "%s is a uWSGI %s loader option; this emperor embeds no language plugin: run the app as a daemon instead, e.g. attach-daemon = <command that serves it>", k, lang)
		return
	}
	opt, ok := Lookup(k)
	if !ok {
		p.errorf(l.line, "%s", p.unknownOption(k))
		return
	}
	if opt.Scope&p.o.Scope == 0 {
		where := "a vassal file"
		if opt.Scope == ScopeEmperor {
			where = "the emperor's config (--config)"
		}
		p.errorf(l.line, "%s belongs in %s, not here", k, where)
		return
	}
	if err := checkBytes(v); err != nil {
		p.file.reject(opt.Name)
		p.errorf(l.line, "%s: %v", k, err)
		return
	}
	if opt.Name == "set-placeholder" {
		name, val, ok := strings.Cut(v, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			p.errorf(l.line, "%s wants NAME=VALUE, got %s", k, QuoteValue(v))
			return
		}
		p.ph[name] = strings.TrimSpace(val)
		return
	}
	if opt.Kind == KindIgnored {
		p.ph[k] = v
		p.ph[opt.Name] = v
		p.warnf(l.line, "%s has no effect under this emperor and is ignored", k)
		return
	}
	val, err := opt.parse(v)
	if err != nil {
		p.file.reject(opt.Name)
		p.errorf(l.line, "%s: %v", k, err)
		return
	}
	p.ph[k] = v
	p.ph[opt.Name] = v
	p.file.Entries = append(p.file.Entries, Entry{Key: opt.Name, Value: v, Val: val, Line: l.line})
}

// expand replaces magic variables (%n ...), %(option) references and
// $(ENV) / $(ENV:-default) lookups. Anything unknown or unresolved is an
// error: uWSGI silently leaves or drops it, which hides typos until runtime.
// It measures the result before it builds it, so a value over a limit costs
// no memory, and the one it builds is allocated once at its final size.
func (p *parser) expand(s string, under string, hasUnder bool) (string, error) {
	if !strings.ContainsAny(s, "%$") {
		return s, p.spend(len(s))
	}
	n := 0
	err := p.walk(s, under, hasUnder, func(part string) error {
		n += len(part)
		if n > maxValueBytes {
			return fmt.Errorf("value expands to more than %d bytes", maxValueBytes)
		}
		if p.expanded+n > MaxExpansion {
			return errTooBig
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.Grow(n)
	p.walk(s, under, hasUnder, func(part string) error { b.WriteString(part); return nil })
	p.expanded += n
	return b.String(), nil
}

// walk passes the parts of the expansion of s to emit, in order: runs of
// literal text and the values that replace each reference.
func (p *parser) walk(s string, under string, hasUnder bool, emit func(string) error) error {
	lit := 0 // start of the literal run not yet emitted
	flush := func(i int) error {
		if i > lit {
			return emit(s[lit:i])
		}
		return nil
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		var val string
		var skip int // bytes of the reference after s[i]
		switch {
		case c == '%':
			if i+1 >= len(s) {
				return fmt.Errorf("lone %% at the end of the value (write %%%% for a percent sign)")
			}
			n := s[i+1]
			switch {
			case n == '%':
				val, skip = "%", 1
			case n == '(':
				end := strings.IndexByte(s[i+2:], ')')
				if end < 0 {
					return fmt.Errorf("%%( is not closed")
				}
				name := s[i+2 : i+2+end]
				var ok bool
				if name == "_" {
					val, ok = under, hasUnder
					if !ok {
						return fmt.Errorf("%%(_) is only set inside a for or if-* block")
					}
				} else {
					val, ok = p.ph[name]
				}
				if !ok {
					return fmt.Errorf("unresolved reference %%(%s): no option or placeholder %s is set before this line", name, QuoteValue(name))
				}
				skip = 2 + end
			default:
				var ok bool
				val, ok = p.magic[n]
				if !ok {
					return fmt.Errorf("unknown magic variable %%%c (known: %%n %%s %%p %%d %%e %%c %%h %%t %%T %%k %%%%)", n)
				}
				skip = 1
			}
		case c == '$' && i+1 < len(s) && s[i+1] == '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				return fmt.Errorf("$( is not closed")
			}
			inner := s[i+2 : i+2+end]
			name, def, hasDef := strings.Cut(inner, ":-")
			if name == "" {
				return fmt.Errorf("$() names no environment variable")
			}
			v, set := p.o.Getenv(name)
			if !set || (hasDef && v == "") {
				if !hasDef {
					return fmt.Errorf("environment variable %s is not set (write $(%s:-default) for a default)", name, name)
				}
				v = def
			}
			val, skip = v, 2+end
		default:
			continue
		}
		if err := flush(i); err != nil {
			return err
		}
		if err := emit(val); err != nil {
			return err
		}
		i += skip
		lit = i + 1
	}
	return flush(len(s))
}
