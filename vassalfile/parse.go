package vassalfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/emperor-dev/emperor/uwsgi"
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
	As   string // the key as written when it is an alias of Key
}

// File is a parsed file: its options in file order.
type File struct {
	Path     string
	Name     string // file name without extension (%n)
	Entries  []Entry
	Warnings []Diag
	// Sources are the files read: the vassal file, then each file it
	// included (ini, include, inherit), in the order they were read. A
	// Line of an Entry or Diag in an included file is Sources' index
	// shifted by lineBits plus its line: see Where and Locate.
	Sources []Source
	// Read are the files the vassal file named and that were read (the
	// included ones, @(file) and for-readline), by path, for the vassal's
	// PID 1 (ParseOptions.Files) and to notice their changes.
	Read map[string][]byte
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
	// ReadFile reads the files the vassal file names: included files,
	// @(path) and for-readline; nil: ReadFile (regular files only, at most
	// MaxFileSize bytes) with the credentials of Owner.
	ReadFile func(string) ([]byte, error)
	// Owner is the owner of the vassal file, whose credentials read the
	// files it names (see ReadAs); nil: the reading process's.
	Owner *FileOwner
	// Files, when not nil, are the only files that may be read, by path:
	// the File.Read of the emperor's check, sent to the vassal's PID 1,
	// which reads nothing itself.
	Files map[string][]byte
	// UWSGI is the uWSGI binary of %b and %V; "": uwsgi in PATH, looked up
	// only when a file uses them.
	UWSGI string
}

// fill sets the defaults. With an Owner, the default Stat and Glob run on a
// thread with the owner's credentials, which the function it returns ends.
func (o *ParseOptions) fill() (stop func(), err error) {
	stop = func() {}
	if o.Scope == 0 {
		o.Scope = ScopeVassal
	}
	if o.Getenv == nil {
		o.Getenv = os.LookupEnv
	}
	var t *ownerThread
	if o.Stat == nil || o.Glob == nil {
		if t, err = startOwnerThread(o.Owner); err != nil {
			return stop, fmt.Errorf("cannot take the credentials of uid %d, the owner of the vassal file, to read what it names: %w", o.Owner.UID, err)
		}
		if t != nil {
			stop = t.stop
		}
	}
	if o.Stat == nil {
		o.Stat = os.Stat
		if t != nil {
			o.Stat = func(p string) (fi fs.FileInfo, err error) {
				t.do(func() { fi, err = os.Stat(p) })
				return fi, err
			}
		}
	}
	if o.Glob == nil {
		o.Glob = func(p string) ([]string, error) { return globLimit(p, MaxLoopItems) }
		if t != nil {
			o.Glob = func(p string) (m []string, err error) {
				t.do(func() { m, err = globLimit(p, MaxLoopItems) })
				return m, err
			}
		}
	}
	if o.Hostname == "" {
		o.Hostname, _ = os.Hostname()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ReadFile == nil {
		owner := o.Owner
		o.ReadFile = func(path string) ([]byte, error) { return ReadAs(owner, path) }
	}
	return stop, nil
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
	line       int  // see lineBits
	seq        int  // its place in the files as read, included lines in place of their include line
	bare       bool // a key with no '=': value is "true"
	// included: an ini or include line outside a block, whose file was
	// read in its place (its lines are sub); spec are the lines of the
	// file an include line in a block names, for the pre-scan only.
	included  bool
	sub, spec []rawLine
	// last, on an include line in a block, is the source that ini =
	// :section reads there: the last file read before it.
	last int
}

// lexSection returns the key = value lines of the section of src (uWSGI's
// uwsgi_ini_config), the Line of each being idx<<lineBits plus its number,
// and whether the section was found.
func lexSection(errs *diagList, src []byte, section string, idx int) ([]rawLine, bool) {
	var out []rawLine
	cur := ""
	sawSection := false
	base := idx << lineBits
	for i, l := range strings.Split(string(src), "\n") {
		n := base + i + 1
		t := strings.TrimSpace(strings.TrimSuffix(l, "\r"))
		if t == "" || t[0] == ';' || t[0] == '#' {
			continue
		}
		if t[0] == '[' {
			if !strings.HasSuffix(t, "]") {
				errs.add(n, fmt.Sprintf("section header %s has no closing ]", QuoteValue(t)))
				cur = ""
				continue
			}
			cur = strings.TrimSpace(t[1 : len(t)-1])
			if cur == section {
				sawSection = true
			}
			continue
		}
		if cur != section {
			continue
		}
		k, v, ok := strings.Cut(t, "=")
		k = strings.TrimSpace(k)
		if k == "" {
			errs.add(n, "empty option name before '='")
			continue
		}
		if !ok {
			// A bare key is a flag set to true. (uWSGI passes an empty
			// value, which its flags read as true.)
			out = append(out, rawLine{key: k, value: "true", line: n, bare: true})
			continue
		}
		out = append(out, rawLine{key: k, value: strings.TrimSpace(v), line: n})
	}
	return out, sawSection
}

// lex lexes the section read of source idx.
func (p *parser) lex(src []byte, idx int) ([]rawLine, bool) {
	return lexSection(&p.errs, src, p.srcs[idx].Section, idx)
}

type parser struct {
	o         ParseOptions
	path      string
	dir       string // the file's directory: relative paths of @(), if-exists, for-glob... resolve there
	name      string
	srcs      []*source // the vassal file and the files it included
	src       int       // the source of the line being read (its magic variables)
	contents  map[string][]byte
	readBytes int               // bytes of every file read, each time it is included
	specBytes int               // bytes read ahead for the pre-scan (see speculate)
	lastFile  int               // the source ini = :section reads again; -1: unknown
	templates []rawLine         // inherit lines applied, read once every other line is
	template  bool              // reading a template: uWSGI expands only magic variables
	block     rawLine           // the block whose line is being applied (line 0: none)
	nested    rawLine           // the block in which an included file is read (line 0: none)
	ph        map[string]string // options and placeholders set so far: the first value of each, as uWSGI's %(name)
	scan      scan
	file      *File
	errs      diagList
	warns     diagList
	cur       int             // the seq of the line being applied
	resolving map[string]bool // forward references being resolved (a cycle is an error)
	files     map[string]string
	plugins   map[string]bool // plugins named so far (if-plugin)
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
	app   appDiags // see finishApp
}

// Parse parses src as the file at path. It returns every error it finds as
// Errors; warnings are in File.Warnings.
func Parse(path string, src []byte, o ParseOptions) (*File, error) {
	stop, err := o.fill()
	defer stop()
	if err != nil {
		return nil, Errors{{File: path, Message: err.Error()}}
	}
	if len(src) > MaxFileSize {
		return nil, Errors{{File: path, Message: fmt.Sprintf("file is %d bytes, over the %d byte limit", len(src), MaxFileSize)}}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	p := &parser{o: o, path: path, name: NameOf(abs), ph: map[string]string{},
		dir: filepath.Dir(abs), resolving: map[string]bool{}, files: map[string]string{},
		plugins: map[string]bool{},
		errs:    diagList{path: path}, warns: diagList{path: path, warning: true}}
	p.file = &File{Path: path, Name: p.name, Sources: []Source{{Path: path, Section: "uwsgi"}}}
	p.srcs = []*source{{Source: p.file.Sources[0], full: abs, written: path, reuse: -1}}
	p.contents = map[string][]byte{abs: src}
	p.readBytes = len(src)
	lines, found := p.lex(src, 0)
	if !found {
		p.errs.add(0, "no [uwsgi] section (only [uwsgi] is read)")
	}
	lines = p.load(lines, []int{0})
	seq := 0
	p.scan = prescan(flatten(lines, &seq, nil))
	p.src = 0
	p.run(lines)
	p.runTemplates()
	p.finishApp()
	p.appHints()
	sort.SliceStable(p.errs.list, func(i, j int) bool { return p.errs.list[i].Line < p.errs.list[j].Line })
	p.file.Warnings = p.file.Locate(p.warns.done())
	if errs := p.errs.done(); len(errs) > 0 {
		return p.file, Errors(p.file.Locate(errs))
	}
	return p.file, nil
}

// flatten numbers lines in the order uWSGI reads them, the lines of an
// included file in place of its include line, and lists them for the
// pre-scan, with the lines of a file that an include line in a block names
// (spec) after that line.
func flatten(lines []rawLine, seq *int, out []rawLine) []rawLine {
	for i := range lines {
		l := &lines[i]
		*seq++
		l.seq = *seq
		out = append(out, *l)
		if l.included {
			out = flatten(l.sub, seq, out)
		}
		for _, s := range l.spec {
			s.seq = l.seq
			out = append(out, s)
		}
	}
	return out
}

func (p *parser) errorf(line int, format string, a ...any) {
	p.errs.add(line, fmt.Sprintf(format, a...))
}

func (p *parser) warnf(line int, format string, a ...any) {
	p.warns.add(line, fmt.Sprintf(format, a...))
}

// isOptionName says whether k names an option: one of ours, a logic
// keyword, or one uWSGI knows. Any other key is a placeholder when %(k)
// refers to it somewhere in the file, and an unknown option otherwise.
func isOptionName(k string) bool {
	if _, ok := Lookup(k); ok {
		return true
	}
	if _, ok := uwsgi.Lookup(k); ok {
		return true
	}
	return isLogic(k) || k == "set"
}

// A condition of uWSGI 2.0 (the if-* options of core/uwsgi.c, evaluated by
// uwsgi_logic_opt_* in core/config.c): what it tests, and whether it is
// negated. ifexists, ifenv, ifdir, if-directory and ifplugin are uWSGI's
// own aliases.
type condition struct {
	test string
	neg  bool
}

var conditions = map[string]condition{
	"if-exists": {"exists", false}, "ifexists": {"exists", false}, "if-not-exists": {"exists", true},
	"if-file": {"file", false}, "if-not-file": {"file", true},
	"if-dir": {"dir", false}, "ifdir": {"dir", false}, "if-directory": {"dir", false}, "if-not-dir": {"dir", true},
	"if-env": {"env", false}, "ifenv": {"env", false}, "if-not-env": {"env", true},
	"if-opt": {"opt", false}, "if-not-opt": {"opt", true},
	"if-reload": {"reload", false}, "if-not-reload": {"reload", true},
	"if-hostname": {"hostname", false}, "if-not-hostname": {"hostname", true},
	"if-hostname-match": {"hostname-match", false}, "if-not-hostname-match": {"hostname-match", true},
	"if-plugin": {"plugin", false}, "ifplugin": {"plugin", false}, "if-not-plugin": {"plugin", true},
}

func isIf(k string) bool { _, ok := conditions[k]; return ok }

func isFor(k string) bool {
	return k == "for" || k == "for-glob" || k == "for-times" || k == "for-readline"
}

// isEnd is a key that closes a block. uWSGI resets whatever block is open on
// any of them (add_exported_option_do in core/config.c).
func isEnd(k string) bool {
	switch k {
	case "end", "endif", "end-if", "endfor", "end-for":
		return true
	}
	return false
}

func isLogic(k string) bool { return isIf(k) || isFor(k) || isEnd(k) || k == "else" }

// scan is what the whole file says before a line is applied: the names that
// %(...) and if-opt refer to anywhere in it (an unknown key among them is a
// placeholder, as in uWSGI), and the lines that set each name.
type scan struct {
	refs map[string]bool
	// patterns are the names that are built by expansion, %(%(_)_port):
	// each expansion is a wildcard (at most maxPatterns of them).
	patterns map[string][]string
	sets     map[string][]setLine
}

const maxPatterns = 256

// referenced says whether a %(...) of the file may refer to name k.
func (sc *scan) referenced(k string) bool {
	if sc.refs[k] {
		return true
	}
	for _, parts := range sc.patterns {
		if wildMatch(parts, k) {
			return true
		}
	}
	return false
}

// wildMatch matches k against a pattern cut at its wildcards.
func wildMatch(parts []string, k string) bool {
	if len(parts) == 1 {
		return k == parts[0]
	}
	if !strings.HasPrefix(k, parts[0]) {
		return false
	}
	k = k[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, mid := range parts[1 : len(parts)-1] {
		i := strings.Index(k, mid)
		if i < 0 {
			return false
		}
		k = k[i+len(mid):]
	}
	return strings.HasSuffix(k, last)
}

// refer records that the file refers to name.
func (sc *scan) refer(name string) {
	if !strings.ContainsAny(name, "%$@") {
		sc.refs[name] = true
		return
	}
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case (c == '%' || c == '$' || c == '@') && i+1 < len(name) && name[i+1] == '(':
			end := closing(name, i+1)
			if end < 0 {
				end = len(name) - 1
			}
			b.WriteByte('*')
			i = end
		case c == '%' && i+1 < len(name):
			b.WriteByte('*')
			i++
		default:
			b.WriteByte(c)
		}
	}
	pat := b.String()
	if len(pat) < len("*")+2 {
		// a name that is almost all expansion, %(%(_)): taking it as a
		// pattern would make every key a placeholder and hide typos
		return
	}
	if _, ok := sc.patterns[pat]; !ok && len(sc.patterns) < maxPatterns {
		sc.patterns[pat] = strings.Split(pat, "*")
	}
}

type setLine struct {
	line  rawLine
	value string // the value it sets (after NAME= for set and set-placeholder)
	top   bool   // outside any block: it is set whatever the conditions
}

func prescan(lines []rawLine) scan {
	sc := scan{refs: map[string]bool{}, patterns: map[string][]string{}, sets: map[string][]setLine{}}
	inBlock := false
	for _, l := range lines {
		k := l.key
		switch {
		case isIf(k) || isFor(k):
			inBlock = true
		case isEnd(k):
			inBlock = false
		}
		sc.references(l.value)
		if c, ok := conditions[k]; ok && c.test == "opt" {
			name, _, _ := strings.Cut(l.value, "=")
			if name = strings.TrimSpace(name); name != "" {
				sc.refer(name)
			}
		}
		name, value := k, l.value
		if k == "set" || k == "set-placeholder" || k == "set-ph" {
			n, v, ok := strings.Cut(l.value, "=")
			if !ok {
				continue
			}
			name, value = strings.TrimSpace(n), strings.TrimSpace(v)
		}
		if !isLogic(k) {
			sc.sets[name] = append(sc.sets[name], setLine{line: l, value: value, top: !inBlock})
		}
	}
	return sc
}

// references records the names that the %(...) of v refer to: the name,
// or the names among the tokens of an arithmetic %(a + b).
func (sc *scan) references(v string) {
	if !strings.Contains(v, "%(") {
		return
	}
	// one pass with a stack of the open parentheses: each %(...) is read
	// when its ')' closes it (as closing pairs them)
	var open []int // index of each '(' not yet closed, -1 for one not after a %
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '%':
			if i+1 < len(v) && v[i+1] != '(' {
				i++ // %% and the other magic variables
			}
		case '(':
			if i > 0 && v[i-1] == '%' {
				open = append(open, i)
			} else {
				open = append(open, -1)
			}
		case ')':
			if n := len(open); n > 0 {
				if o := open[n-1]; o >= 0 {
					sc.refersIn(v[o+1 : i])
				}
				open = open[:n-1]
			}
		}
	}
}

// refersIn records the names of the text inside one %(...): the name, or
// the names among the tokens of an arithmetic %(a + b).
func (sc *scan) refersIn(inner string) {
	if len(inner) > maxRefName {
		return // no key is that long (and this keeps nested references linear)
	}
	if !strings.Contains(inner, " ") {
		sc.refer(inner)
		return
	}
	for inner != "" {
		tok, rest, _ := strings.Cut(inner, " ")
		inner = rest
		switch tok {
		case "", "_", "+", "-", "*", "/", "++", "--":
		default:
			if !isNumber(tok) {
				sc.refer(tok)
			}
		}
	}
}

// maxRefName bounds the text of a %(...) the pre-scan reads for names.
const maxRefName = 256

// closing returns the index of the ')' that closes the '(' at open,
// counting nested parentheses as uWSGI's config passes do, or -1.
func closing(s string, open int) int {
	depth := 0
	for j := open + 1; j < len(s); j++ {
		switch s[j] {
		case '(':
			depth++
		case ')':
			if depth == 0 {
				return j
			}
			depth--
		}
	}
	return -1
}

type block struct {
	kind   string // "if" or "for"
	open   rawLine
	active bool // if: the branch being read is taken
	inElse bool
	under  string // value of %(_) in the taken branch
	// hasUnder: the taken branch has a %(_). uWSGI sets it in the taken
	// branch of an if-* with a value, never in else or if-reload.
	hasUnder bool
	body     []rawLine
}

// run applies the lines. Logic blocks do not nest (as in uWSGI); a nested
// opener is an error naming both lines, and an unclosed block names its
// opening line. The option names of lines that are not applied (a branch
// not taken, a loop of no items, lines after an error of nesting) are still
// checked, so a typo there does not wait for the condition to change.
func (p *parser) run(lines []rawLine) {
	var cur *block
	nestedDepth := 0
	for _, l := range lines {
		if p.stopped {
			return
		}
		k := l.key
		p.cur, p.src = l.seq, l.line>>lineBits
		switch {
		case l.included && cur == nil && nestedDepth == 0:
			// read in its place by load
			p.items++
			p.setPH(k, l.value)
			p.run(l.sub)
		case p.nested.line != 0 && isLogic(k):
			if !isEnd(k) {
				p.errorf(l.line, "%s: logic blocks do not nest, and this file is read inside the %s at %s (uWSGI exits: recursive logic in options is not supported)", k, p.nested.key, p.file.Where(p.nested.line))
			}
		case isIf(k) || isFor(k):
			if cur != nil {
				p.errorf(l.line, "%s cannot be nested inside the %s opened at %s (logic blocks do not nest)", k, cur.open.key, p.lineRef(cur.open.line))
				nestedDepth++
				continue
			}
			if isFor(k) {
				cur = &block{kind: "for", open: l}
				continue
			}
			ok, under, hasUnder, err := p.cond(l)
			if err != nil {
				p.fail(l, err)
			}
			cur = &block{kind: "if", open: l, active: ok && err == nil, under: under, hasUnder: hasUnder}
		case k == "else":
			if nestedDepth > 0 {
				continue
			}
			if cur == nil || cur.kind != "if" {
				p.errorf(l.line, "else without an open if-* block")
				continue
			}
			if cur.inElse {
				p.errorf(l.line, "second else in the block opened at %s", p.lineRef(cur.open.line))
				continue
			}
			// else is uWSGI's from 2.1 on: uWSGI 2.0 knows no else and
			// reads it as an unknown option inside the block.
			p.warnf(l.line, "else is not in uWSGI 2.0 (it came later): uWSGI 2.0 ignores it and applies the lines after it when the %s at %s is true; here they apply when it is false, as in later uWSGI", cur.open.key, p.lineRef(cur.open.line))
			cur.inElse = true
			cur.active = !cur.active
			cur.under, cur.hasUnder = "", false
		case isEnd(k):
			if nestedDepth > 0 {
				nestedDepth--
				continue
			}
			if cur == nil {
				p.errorf(l.line, "%s without an open block", k)
				continue
			}
			if kind := strings.TrimPrefix(strings.TrimPrefix(k, "end"), "-"); kind != "" && kind != cur.kind {
				p.warnf(l.line, "%s closes the %s opened at %s (uWSGI closes any block with any end keyword; write end%s)", k, cur.open.key, p.lineRef(cur.open.line), cur.kind)
			}
			if cur.kind == "for" {
				p.loop(cur)
			}
			cur = nil
		default:
			switch {
			case nestedDepth > 0:
				p.checkName(l)
			case cur == nil:
				p.apply(l, "", false)
			case cur.kind == "for":
				cur.body = append(cur.body, l)
			case cur.active:
				p.block = cur.open
				p.apply(l, cur.under, cur.hasUnder)
				p.block = rawLine{}
			default:
				p.checkName(l)
			}
		}
	}
	if cur != nil {
		end := "endif"
		if cur.kind == "for" {
			end = "endfor"
		}
		p.errorf(cur.open.line, "%s opened here is never closed (missing %s)", cur.open.key, end)
		for _, l := range cur.body {
			p.checkName(l)
		}
	}
}

// checkName checks the option name of a line that is not applied, with the
// rules of an applied line: an option (ours or uWSGI's) or a placeholder
// that %(...) refers to. Its value is not read.
func (p *parser) checkName(l rawLine) {
	k := l.key
	if isOptionName(k) || p.scan.referenced(k) {
		if opt, ok := Lookup(k); ok && opt.Scope&p.o.Scope == 0 {
			p.errorf(l.line, "%s belongs in %s, not here", k, scopeName(opt.Scope))
		}
		return
	}
	p.errorf(l.line, "%s", p.unknownKey(k))
}

// unknownKey is the error for a key that is neither an option nor a
// placeholder. Without a spelling suggestion it says why it is not taken
// for a placeholder either.
func (p *parser) unknownKey(k string) string {
	m := p.unknownOption(k)
	if m == "unknown option" || strings.Contains(m, "did you mean") || len(k) > 64 {
		return m
	}
	return m + " (nor a placeholder: no %(" + k + ") in the file refers to it)"
}

func scopeName(s Scope) string {
	if s == ScopeEmperor {
		return "the emperor's config (--config)"
	}
	return "a vassal file"
}

func (p *parser) loop(b *block) {
	p.cur, p.src = b.open.seq, b.open.line>>lineBits
	if p.template {
		if err := onlyMagic(b.open.value, "uWSGI reads a file of inherit after it has expanded the others, and leaves them as text"); err != nil {
			p.fail(b.open, err)
			p.checkNames(b.body)
			return
		}
	}
	v, err := p.expand(b.open.value, "", false)
	if err != nil {
		p.fail(b.open, err)
		p.checkNames(b.body)
		return
	}
	items, err := p.loopItems(b.open.key, v)
	if errors.Is(err, errTooBig) {
		p.fail(b.open, err)
		return
	}
	if err != nil {
		p.errorf(b.open.line, "%s %v", b.open.key, err)
		p.checkNames(b.body)
		return
	}
	if len(items) > MaxLoopItems {
		p.errorf(b.open.line, "%s has %d items, over the limit of %d", b.open.key, len(items), MaxLoopItems)
		return
	}
	if len(items) == 0 {
		p.checkNames(b.body)
	}
	errs, warns := p.errs.mark(), p.warns.mark()
	defer p.errs.inLoop(errs, b.open.key, b.open.line, len(items))
	defer p.warns.inLoop(warns, b.open.key, b.open.line, len(items))
	defer p.appLoopMark()(b.open.key, b.open.line, len(items))
	for _, it := range items {
		for _, l := range b.body {
			if p.stopped {
				return
			}
			p.cur, p.src = l.seq, l.line>>lineBits
			p.block = b.open
			p.apply(l, it, true)
			p.block = rawLine{}
		}
	}
}

func (p *parser) checkNames(ls []rawLine) {
	for _, l := range ls {
		p.checkName(l)
	}
}

// items are the values of %(_) of a for loop, as uWSGI 2.0 makes them
// (uwsgi_logic_opt_for* in core/config.c).
func (p *parser) loopItems(key, v string) ([]string, error) {
	switch key {
	case "for":
		// the words of the value, split at spaces (strtok on " ")
		if n := countWords(v); n > MaxLoopItems {
			return nil, fmt.Errorf("has %d items, over the limit of %d", n, MaxLoopItems)
		}
		var items []string
		for _, w := range strings.Split(v, " ") {
			if w != "" {
				items = append(items, w)
			}
		}
		return items, nil
	case "for-glob":
		// glob(3) with GLOB_MARK | GLOB_NOCHECK: directories end in /,
		// and a pattern that matches nothing is its own only item.
		pat := p.rel(v)
		m, err := p.o.Glob(pat)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", QuoteValue(v), err)
		}
		if len(m) > MaxLoopItems {
			return nil, fmt.Errorf("matches more than %d paths", MaxLoopItems)
		}
		if len(m) == 0 {
			m = []string{pat}
		}
		items := make([]string, 0, len(m))
		for _, it := range m {
			if st, err := p.o.Stat(it); err == nil && st.IsDir() && !strings.HasSuffix(it, "/") {
				it += "/"
			}
			if !filepath.IsAbs(v) {
				it = strings.TrimPrefix(it, strings.TrimSuffix(p.dir, "/")+"/")
			}
			if err := p.spend(len(it)); err != nil {
				return nil, err
			}
			items = append(items, it)
		}
		return items, nil
	case "for-times":
		// uWSGI reads the count with atoi: anything else is 0 loops there,
		// an error here.
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("wants a count, got %s", QuoteValue(v))
		}
		if n > MaxLoopItems {
			return nil, fmt.Errorf("%d is over the limit of %d", n, MaxLoopItems)
		}
		items := make([]string, 0, n)
		for i := 1; i <= n; i++ {
			items = append(items, strconv.Itoa(i))
		}
		return items, nil
	case "for-readline":
		// the lines of the file as fgets reads them into 1024 bytes (a
		// longer line is several items), without their trailing \r and \n.
		b, err := p.readData(p.rel(v))
		if err != nil {
			return nil, fmt.Errorf("cannot read %s: %w", QuoteValue(v), err)
		}
		var items []string
		for s := string(b); s != ""; {
			n := strings.IndexByte(s, '\n') + 1
			if n == 0 || n > 1023 {
				n = min(len(s), 1023)
			}
			it := strings.TrimRight(s[:n], "\r\n")
			s = s[n:]
			if len(items) >= MaxLoopItems {
				return nil, fmt.Errorf("has more than %d lines", MaxLoopItems)
			}
			items = append(items, it)
		}
		return items, nil
	}
	return nil, fmt.Errorf("not a loop")
}

// rel resolves a relative path against the file's directory: uWSGI's
// Emperor starts a vassal in the vassals directory, where uWSGI resolves
// relative paths of @(), if-exists and the loops.
func (p *parser) rel(path string) string {
	if path == "" || filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(p.dir, path)
}

// countWords counts the items of a for loop, the runs of v between
// spaces, without allocating them.
func countWords(v string) int {
	n, in := 0, false
	for i := 0; i < len(v); i++ {
		sp := v[i] == ' '
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
		p.errorf(l.line, "expansion of this file exceeds %d MiB (the sum of its values after %%(...), $(...), @(...) and loops); giving up", MaxExpansion>>20)
		p.stopped = true
		return
	}
	p.errorf(l.line, "%s: %v", l.key, err)
}

// cond evaluates an if-* line after expansion (uWSGI evaluates before
// expansion, which breaks conditions on %(option) and $(ENV); see uWSGI
// issue #1513). It returns the truth and the value of %(_) in the taken
// branch, as uWSGI sets it: the actual value for if-env and if-opt, the
// condition's value for the others, none for if-reload, and for if-not-env
// and if-not-opt the value only when the name is set to another one.
func (p *parser) cond(l rawLine) (ok bool, under string, hasUnder bool, err error) {
	c := conditions[l.key]
	if c.test == "reload" {
		return p.o.Reload != c.neg, "", false, nil
	}
	if p.template {
		if err := onlyMagic(l.value, "uWSGI reads a file of inherit after it has expanded the others, and leaves them as text"); err != nil {
			return false, "", false, err
		}
	}
	v, err := p.expand(l.value, "", false)
	if err != nil {
		return false, "", false, err
	}
	if v == "" {
		return false, "", false, fmt.Errorf("needs a value")
	}
	under, hasUnder = v, true
	switch c.test {
	case "exists":
		_, err := p.o.Stat(p.rel(v))
		ok = err == nil
	case "file":
		st, err := p.o.Stat(p.rel(v))
		ok = err == nil && st.Mode().IsRegular()
	case "dir":
		st, err := p.o.Stat(p.rel(v))
		ok = err == nil && st.IsDir()
	case "hostname":
		ok = p.o.Hostname == v
	case "hostname-match":
		if len(v) > 4096 {
			return false, "", false, fmt.Errorf("a regular expression of %d bytes is over the 4096 byte limit", len(v))
		}
		re, err := regexp.Compile(v)
		if err != nil {
			return false, "", false, fmt.Errorf("%s is not a regular expression: %w", QuoteValue(v), err)
		}
		ok = re.MatchString(p.o.Hostname)
	case "plugin":
		ok = p.plugins[v]
	case "env", "opt":
		name, want, hasWant := strings.Cut(v, "=")
		var val string
		var set bool
		if c.test == "env" {
			val, set = p.o.Getenv(name)
		} else {
			val, set = p.ph[name]
		}
		ok = set && (!hasWant || val == want)
		under, hasUnder = val, set
	}
	return ok != c.neg, under, hasUnder, nil
}

// pluginName is the name a plugin gives itself (struct uwsgi_plugin's
// name, which if-plugin compares), from the name or path a plugin line
// loads it by: /usr/lib/uwsgi/plugins/psgi_plugin.so is psgi, and every
// build of the python plugin (python3, python311) calls itself python, of
// the ruby one rack, of php php and of lua lua.
func pluginName(v string) string {
	v = filepath.Base(strings.TrimSpace(v))
	v = strings.TrimSuffix(strings.TrimSuffix(v, ".so"), "_plugin")
	for _, family := range []struct{ prefix, name string }{
		{"python", "python"}, {"rack", "rack"}, {"ruby", "rack"}, {"php", "php"}, {"lua", "lua"},
	} {
		if strings.HasPrefix(v, family.prefix) {
			return family.name
		}
	}
	return v
}

// notePlugins records the plugins a plugin line names, for if-plugin.
func (p *parser) notePlugins(k, v string) {
	switch k {
	case "plugin", "plugins", "need-plugin", "need-plugins":
		for _, name := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' }) {
			p.plugins[pluginName(name)] = true
		}
	}
}

// setPH records the value of a name for %(name): the first one, as uWSGI's
// uwsgi_get_exported_opt finds the first.
func (p *parser) setPH(name, v string) {
	if _, ok := p.ph[name]; !ok {
		p.ph[name] = v
	}
}

// setPHAt is setPH for a name the file sets at line: when the name was set
// before to another value and something refers to it, a warning says that
// %(name) keeps the first value (a "default, then override" in a block
// does not work in uWSGI either).
func (p *parser) setPHAt(line int, name, v string) {
	if old, ok := p.ph[name]; ok && old != v && p.scan.referenced(name) {
		p.warnf(line, "%s is set again, but %%(%s) is its first value, %s, as in uWSGI (set it once, e.g. in an if-*/else)", name, name, QuoteValue(old))
	}
	p.setPH(name, v)
}

// lookup is the value of %(name): the first value set so far, or a value
// set further down the file outside any block (uWSGI expands references
// once the whole file is read).
func (p *parser) lookup(name string) (string, bool, error) {
	if v, ok := p.ph[name]; ok {
		return v, true, nil
	}
	// the first line further down that sets it
	sets := p.scan.sets[name]
	i := sort.Search(len(sets), func(i int) bool { return sets[i].line.seq > p.cur })
	if i == len(sets) {
		return "", false, nil
	}
	f := sets[i]
	if !f.top {
		return "", false, fmt.Errorf("%%(%s) refers to %s, inside a block further down: set it before this line", name, p.lineRef(f.line.line))
	}
	if p.resolving[name] || len(p.resolving) >= maxForward {
		return "", false, fmt.Errorf("%%(%s) refers to itself through %s", name, p.lineRef(f.line.line))
	}
	p.resolving[name] = true
	defer delete(p.resolving, name)
	src := p.src
	p.src = f.line.line >> lineBits // its magic variables are its file's
	v, err := p.expand(f.value, "", false)
	p.src = src
	if err != nil {
		return "", false, fmt.Errorf("%%(%s), set at %s: %w", name, p.lineRef(f.line.line), err)
	}
	p.ph[name] = v
	return v, true, nil
}

// maxForward bounds a chain of references to lines further down.
const maxForward = 32

func (p *parser) apply(l rawLine, under string, hasUnder bool) {
	p.items++
	if p.items > MaxItems {
		p.errorf(l.line, "this file sets more than %d options (each pass of a loop counts); giving up", MaxItems)
		p.stopped = true
		return
	}
	k := l.key
	if isInclude(k) {
		p.include(l, under, hasUnder)
		return
	}
	if msg, ok := unsupportedConfig[k]; ok {
		p.errorf(l.line, "%s", msg)
		return
	}
	if p.template {
		if err := onlyMagic(l.value, "uWSGI reads a file of inherit after it has expanded the others, and leaves them as text"); err != nil {
			p.errorf(l.line, "%s: %v", k, err)
			return
		}
	}
	v, err := p.expand(l.value, under, hasUnder)
	if err != nil {
		p.fail(l, err)
		return
	}
	if k == "set" {
		// uWSGI's set: NAME=VALUE sets the option NAME, or a placeholder
		// when NAME is not an option.
		name, val, ok := strings.Cut(v, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" || isLogic(name) || name == "set" {
			p.errorf(l.line, "set wants NAME=VALUE (an option or a placeholder), got %s", QuoteValue(v))
			return
		}
		if !isOptionName(name) {
			p.setPHAt(l.line, name, val)
			return
		}
		if _, bad := unsupportedConfig[name]; bad || isInclude(name) {
			p.errorf(l.line, "set = %s=...: write %s = %s on a line of its own", name, name, val)
			return
		}
		l.key, k, v = name, name, val
	}
	p.setPHAt(l.line, k, v)
	p.notePlugins(k, v)
	if !isOptionName(k) && p.scan.referenced(k) {
		// A placeholder: %(k) refers to it somewhere in the file. Its
		// value is checked where it is used.
		return
	}
	p.applyValue(l, k, v)
}

// applyValue applies the option k of line l with its expanded value v.
func (p *parser) applyValue(l rawLine, k, v string) {
	opt, ok := Lookup(k)
	if !ok {
		opt, ok = catalogOption(k)
	}
	if !ok {
		p.errorf(l.line, "%s", p.unknownKey(k))
		return
	}
	if opt.Scope&p.o.Scope == 0 {
		p.errorf(l.line, "%s belongs in %s, not here", k, scopeName(opt.Scope))
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
		if isOptionName(name) {
			// as uWSGI: "you cannot use NAME as a placeholder, it is
			// already available as an option"
			p.errorf(l.line, "%s: %s is an option, not a placeholder name (write %s = VALUE, or set = %s=VALUE)", k, QuoteValue(name), name, name)
			return
		}
		p.setPHAt(l.line, name, strings.TrimSpace(val))
		return
	}
	p.setPH(opt.Name, v)
	if opt.Kind == KindIgnored {
		p.warnf(l.line, "%s has no effect under this emperor and is ignored", k)
		return
	}
	if opt.Owner != OwnerEmperor {
		p.applyApp(l, k, opt, v)
		return
	}
	val, err := opt.parse(v)
	if err != nil {
		p.file.reject(opt.Name)
		p.errorf(l.line, "%s: %v", k, err)
		return
	}
	p.appFileServerLine(l, k, opt.Name)
	p.file.Entries = append(p.file.Entries, Entry{Key: opt.Name, Value: v, Val: val, Line: l.line})
}

// expand replaces magic variables (%n ...), %(option) references and their
// arithmetic, $(ENV) / $(ENV:-default) lookups and @(file) contents.
// Anything unknown or unresolved is an error: uWSGI silently leaves or drops
// it, which hides typos until runtime. It measures the result before it
// builds it, so a value over a limit costs no memory, and the one it builds
// is allocated once at its final size.
func (p *parser) expand(s string, under string, hasUnder bool) (string, error) {
	if !strings.ContainsAny(s, "%$@") {
		return s, p.spend(len(s))
	}
	n := 0
	err := p.walk(s, under, hasUnder, 0, func(part string) error {
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
	p.walk(s, under, hasUnder, 0, func(part string) error { b.WriteString(part); return nil })
	p.expanded += n
	return b.String(), nil
}

// maxNesting bounds references inside references: @($(HOME)/%(f)).
const maxNesting = 8

var errNoUnder = errors.New("%(_) has no value here: uWSGI sets it only inside a for loop and in the taken branch of an if-* with a value (not in else, nor in if-reload); elsewhere it leaves %(_) as literal text")

// walk passes the parts of the expansion of s to emit, in order: runs of
// literal text and the values that replace each reference. The text inside
// @(...) and $(...) is expanded first (uWSGI expands $() before @(), and
// magic variables before both).
func (p *parser) walk(s string, under string, hasUnder bool, depth int, emit func(string) error) error {
	if depth > maxNesting {
		return fmt.Errorf("references nest more than %d deep", maxNesting)
	}
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
			case n == '(':
				end := closing(s, i+1)
				if end < 0 {
					return fmt.Errorf("%%( is not closed")
				}
				name := s[i+2 : end]
				var err error
				if val, err = p.ref(name, under, hasUnder, depth); err != nil {
					return err
				}
				skip = end - i
			default:
				v, ok, err := p.magicVar(n)
				if err != nil {
					return err
				}
				if !ok {
					return fmt.Errorf("unknown magic variable %%%c (known: %%o %%p %%s %%n %%e %%d %%c %%0-%%9 %%x %%i %%j %%b %%V %%v %%h %%k %%t %%T %%u %%U %%g %%G %%[, the capitals of o p s n e d c x i j, and %%%%)", n)
				}
				val, skip = v, 1
			}
		case (c == '$' || c == '@') && i+1 < len(s) && s[i+1] == '(':
			end := closing(s, i+1)
			if end < 0 {
				return fmt.Errorf("%c( is not closed", c)
			}
			inner, err := p.inner(s[i+2:end], under, hasUnder, depth)
			if err != nil {
				return err
			}
			if c == '$' {
				val, err = p.env(inner)
			} else {
				val, err = p.atFile(inner)
			}
			if err != nil {
				return err
			}
			skip = end - i
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

// inner expands the text inside $(...) or @(...), bounded like a value.
func (p *parser) inner(s string, under string, hasUnder bool, depth int) (string, error) {
	if !strings.ContainsAny(s, "%$@") {
		return s, nil
	}
	var b strings.Builder
	err := p.walk(s, under, hasUnder, depth+1, func(part string) error {
		if b.Len()+len(part) > 4096 {
			return fmt.Errorf("the name inside $(...) or @(...) expands to more than 4096 bytes")
		}
		b.WriteString(part)
		return nil
	})
	return b.String(), err
}

// ref is the value of %(name): %(_), an option or placeholder, or the
// arithmetic of uWSGI's placeholders when name holds a space.
func (p *parser) ref(name string, under string, hasUnder bool, depth int) (string, error) {
	if name == "_" {
		if !hasUnder {
			return "", errNoUnder
		}
		return under, nil
	}
	if strings.Contains(name, " ") {
		return p.compute(name, under, hasUnder, depth)
	}
	if strings.ContainsAny(name, "%$@") {
		// a name built by expansion: %(%(_)_port), %(%n_root)
		var err error
		if name, err = p.inner(name, under, hasUnder, depth); err != nil {
			return "", err
		}
	}
	v, ok, err := p.lookup(name)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("unresolved reference %%(%s): no option or placeholder %s is set before this line", name, QuoteValue(name))
	}
	return v, nil
}

// env is $(NAME) or our $(NAME:-default).
func (p *parser) env(inner string) (string, error) {
	name, def, hasDef := strings.Cut(inner, ":-")
	if name == "" {
		return "", fmt.Errorf("$() names no environment variable")
	}
	v, set := p.o.Getenv(name)
	if !set || (hasDef && v == "") {
		if !hasDef {
			return "", fmt.Errorf("environment variable %s is not set (write $(%s:-default) for a default)", name, name)
		}
		v = def
	}
	return v, nil
}

// atFile is @(path): the content of a file, as uWSGI's uwsgi_at_file_read
// gives it: one trailing \n or \r is removed, nothing else. A relative path
// is in the file's directory (uWSGI's working directory under its Emperor).
// The file is read once per parse.
func (p *parser) atFile(path string) (string, error) {
	if path == "" {
		return "", fmt.Errorf("@() names no file")
	}
	full := p.rel(path)
	if v, ok := p.files[full]; ok {
		return v, nil
	}
	b, err := p.readData(full)
	if err != nil {
		return "", fmt.Errorf("@(%s): %w", path, err)
	}
	if n := len(b); n > 0 && (b[n-1] == '\n' || b[n-1] == '\r') {
		b = b[:n-1]
	}
	if len(b) > maxValueBytes {
		return "", fmt.Errorf("@(%s) is %d bytes, over the %d byte limit of a value", path, len(b), maxValueBytes)
	}
	p.files[full] = string(b)
	return string(b), nil
}
