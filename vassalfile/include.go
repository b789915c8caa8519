package vassalfile

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// uWSGI 2.0's inclusion of other files (core/uwsgi.c uwsgi_opt_load_ini and
// uwsgi_opt_load, core/ini.c uwsgi_ini_config):
//
//   - ini = FILE[:SECTION] is immediate: the file is read when the line is
//     read, and its lines take the place of the ini line. Any name; the
//     section is [uwsgi] unless one is given after the last ':' (an empty
//     one is [uwsgi] too), and FILE may be empty, ini = :SECTION: the last
//     file read.
//   - include = FILE.ini is immediate as well; the name must end in .ini,
//     and it takes no :section (uWSGI then looks for a configurator of
//     that name and exits).
//   - inherit = FILE.ini is a template: uWSGI reads it once every other
//     line is read and expanded, in the order it applies options, so its
//     lines come after every line of the vassal file (a scalar option set
//     in both takes the template's value, a %(name) the vassal file's), and
//     %(...), $(...) and @(...) in it are not expanded.
//
// Relative names are in uWSGI's working directory, the vassal file's
// directory (its Emperor starts a vassal there), whichever file names
// them. uWSGI expands only magic variables (of the including file) in the
// name, and %(_) inside a loop or the taken branch of an if-*, since it
// reads the file before it expands anything else.

const (
	// lineBits: the Line of a line of an included file is the file's
	// index in File.Sources shifted by lineBits, plus its line number (a
	// file of MaxFileSize bytes has fewer lines than 1<<lineBits). The
	// vassal file's own lines keep their number.
	lineBits = 21
	lineMask = 1<<lineBits - 1
	// MaxIncludeDepth bounds files included by included files.
	MaxIncludeDepth = 16
	// MaxSources bounds the inclusions of one vassal file (each time a
	// file is included counts, in a loop too).
	MaxSources = 256
)

// Source is a file that a vassal file read: itself (File.Sources[0]) or a
// file it included.
type Source struct {
	Path    string // as opened: relative names joined to the vassal file's directory
	Section string // the section read
	Key     string // ini, include or inherit; "" for the vassal file itself
	From    int    // the Line of the line that included it (0 for the vassal file)
}

// source is a Source while the parser reads it.
type source struct {
	Source
	index   int
	written string // %o: the name as written, without its :section
	full    string
	asked   bool // a :section was written (%x)
	reuse   int  // ini = :section: the source whose magic table is reused; -1
	magic   map[byte]string
	lazy    map[byte]func() (string, error)
}

// isInclude says whether key reads another config file.
func isInclude(k string) bool { return k == "ini" || k == "include" || k == "inherit" }

// unsupportedConfig are options that read config in a form not read here.
var unsupportedConfig = map[string]string{
	"xml":             "the xml config format is not supported: write the options in ini and read them with ini =",
	"yaml":            "the yaml config format is not supported: write the options in ini and read them with ini =",
	"yml":             "the yaml config format is not supported: write the options in ini and read them with ini =",
	"json":            "the json config format is not supported: write the options in ini and read them with ini =",
	"js":              "the json config format is not supported: write the options in ini and read them with ini =",
	"declare-option":  "declare-option is not supported: write the options it would expand to",
	"declare-option2": "declare-option2 is not supported: write the options it would expand to",
	"resolve":         "resolve (a DNS lookup into a placeholder) is not supported: write the address, or a placeholder set to it",
	"config":          "config (uWSGI's pluggable config loaders) is not supported: use ini =",
	"inject-before":   "inject-before is not supported: use ini = for the common lines",
	"inject-after":    "inject-after is not supported: use ini = for the common lines",
}

// locate gives the file and line of a Line, and how the file was included
// ("" for the vassal file).
func (f *File) locate(line int) (path string, n int, via string) {
	src := line >> lineBits
	if src <= 0 || src >= len(f.Sources) {
		return f.Path, line, ""
	}
	var chain []string
	for s := src; s > 0; {
		from := f.Sources[s].From
		fs := from >> lineBits
		p := f.Path
		if fs > 0 && fs < len(f.Sources) {
			p = f.Sources[fs].Path
		}
		chain = append(chain, fmt.Sprintf("%s at %s:%d", f.Sources[s].Key, p, from&lineMask))
		if fs >= s {
			break
		}
		s = fs
	}
	return f.Sources[src].Path, line & lineMask, "read by " + strings.Join(chain, ", read by ")
}

// LineRef is how a runtime message names a Line: its number for a line of
// the vassal file, "path:line" for a line of a file it included.
func (f *File) LineRef(line int) string {
	if line>>lineBits == 0 {
		return strconv.Itoa(line)
	}
	return f.Where(line)
}

// Where is "path:line" of a Line, for messages: lines of an included file
// name that file.
func (f *File) Where(line int) string {
	p, n, _ := f.locate(line)
	return fmt.Sprintf("%s:%d", p, n)
}

// Locate places diagnostics whose Line is in an included file (see
// lineBits) in that file, with how it was included. Diagnostics of the
// vassal file itself are unchanged; it may be applied again.
func (f *File) Locate(ds []Diag) []Diag {
	if f == nil || len(f.Sources) < 2 {
		return ds
	}
	for i := range ds {
		d := &ds[i]
		if d.Line>>lineBits == 0 || d.File != f.Path {
			continue
		}
		p, n, via := f.locate(d.Line)
		d.File, d.Line = p, n
		d.ForLine &= lineMask
		d.Via = via
	}
	return ds
}

// lineRef names a Line in a message about the current file: "line 4", or
// "line 4 of base.ini" for a line of another file.
func (p *parser) lineRef(line int) string {
	if line>>lineBits == p.src {
		return fmt.Sprintf("line %d", line&lineMask)
	}
	path, n, _ := p.file.locate(line)
	return fmt.Sprintf("line %d of %s", n, path)
}

// includeValue checks the value of an ini, include or inherit line and
// expands what uWSGI expands there (magic variables, already substituted
// in the whole file when uWSGI reads it, and %(_) of a block).
func (p *parser) includeValue(l rawLine, under string, hasUnder bool) (string, error) {
	raw := l.value
	if raw == "" {
		return "", fmt.Errorf("names no file")
	}
	if i := strings.Index(raw, "://"); i > 0 && strings.Trim(raw[:i], "abcdefghijklmnopqrstuvwxyz") == "" {
		return "", fmt.Errorf("%s: uWSGI's URL forms (http://, exec://, sym://, section://, data://, fd://, call://...) are not read here: name a file", QuoteValue(raw))
	}
	if err := onlyMagic(raw, "uWSGI reads the file before it expands them, and would open a file of that literal name; use magic variables (%d, %n...) or a fixed path"); err != nil {
		return "", err
	}
	return p.expand(raw, under, hasUnder)
}

// onlyMagic rejects %(...) (other than %(_)), $(...) and @(...) in a value
// that uWSGI reads without expanding them.
func onlyMagic(v, why string) error {
	for i := 0; i+1 < len(v); i++ {
		c := v[i]
		if c == '%' && v[i+1] != '(' {
			i++ // %% and magic variables
			continue
		}
		if (c == '%' || c == '$' || c == '@') && v[i+1] == '(' {
			if c == '%' && strings.HasPrefix(v[i:], "%(_)") {
				i += 3
				continue
			}
			end := closing(v, i+1)
			if end < 0 {
				end = len(v) - 1
			}
			return fmt.Errorf("%s is not expanded here: %s", QuoteValue(v[i:end+1]), why)
		}
	}
	return nil
}

// includeTarget resolves the value of an include line to the file and
// section it reads, with uWSGI's rules for each key.
func (p *parser) includeTarget(key, v string) (written, section string, asked bool, reuse int, err error) {
	reuse = -1
	section = "uwsgi"
	if key != "ini" {
		switch {
		case strings.HasSuffix(v, ".ini"):
			return v, section, false, -1, nil
		case strings.HasSuffix(v, ".xml"), strings.HasSuffix(v, ".yaml"), strings.HasSuffix(v, ".yml"),
			strings.HasSuffix(v, ".json"), strings.HasSuffix(v, ".js"):
			return "", "", false, -1, fmt.Errorf("%s: the xml, yaml and json config formats are not supported: write the options in ini", QuoteValue(v))
		case strings.Contains(v, ":") && key == "include":
			return "", "", false, -1, fmt.Errorf("%s: include reads only names ending in .ini in uWSGI 2.0, and no :section (uWSGI exits \"unable to load configuration\"): write ini = %s", QuoteValue(v), v)
		case strings.Contains(v, ":"):
			return "", "", false, -1, fmt.Errorf("%s: inherit reads only names ending in .ini in uWSGI 2.0, and no :section (uWSGI exits \"unable to load configuration\"): put the template's options in the [uwsgi] section of a file of its own", QuoteValue(v))
		}
		return "", "", false, -1, fmt.Errorf("%s: %s reads only names ending in .ini in uWSGI 2.0 (uWSGI exits \"unable to load configuration\"): rename the file, or write ini = %s, which reads any name", QuoteValue(v), key, v)
	}
	written = v
	if i := strings.LastIndexByte(v, ':'); i >= 0 {
		written, asked = v[:i], true
		if v[i+1:] != "" {
			section = v[i+1:]
		}
	}
	if written == "" {
		// ini = :section: the last file uWSGI read
		if p.lastFile < 0 {
			return "", "", false, -1, fmt.Errorf("%s names the last file read, which depends on whether an ini or include inside a block above was read: name the file", QuoteValue(v))
		}
		reuse = p.lastFile
	}
	return written, section, asked, reuse, nil
}

// open reads the file an include line names and lexes it, as a new source.
// chain are the sources including it, the vassal file first. It reports
// its errors at the include line, and returns ok false for them.
func (p *parser) open(l rawLine, v string, chain []int) (lines []rawLine, ok bool) {
	written, section, asked, reuse, err := p.includeTarget(l.key, v)
	if err != nil {
		p.errorf(l.line, "%s: %v", l.key, err)
		return nil, false
	}
	full := ""
	if reuse >= 0 {
		full = p.srcs[reuse].full
	} else {
		full = p.rel(written)
	}
	for _, c := range chain {
		if s := p.srcs[c]; s.full == full && s.Section == section {
			p.errorf(l.line, "%s = %s: include loop: %s (uWSGI recurses until it crashes)", l.key, v, p.loopChain(chain, l, full, section))
			return nil, false
		}
	}
	if len(chain) > MaxIncludeDepth {
		p.errorf(l.line, "%s = %s: files include each other more than %d deep: %s", l.key, v, MaxIncludeDepth, p.loopChain(chain, l, full, section))
		return nil, false
	}
	if len(p.srcs) >= MaxSources {
		p.errorf(l.line, "%s = %s: this file reads more than %d files (each inclusion counts, in loops too); giving up", l.key, v, MaxSources)
		p.stopped = true
		return nil, false
	}
	content, err := p.readConfig(full)
	if err != nil {
		p.errorf(l.line, "%s = %s: %v", l.key, v, err)
		return nil, false
	}
	p.readBytes += len(content)
	if p.readBytes > MaxFileSize {
		p.errorf(l.line, "%s = %s: the vassal file and the files it includes (each time it is included) are over the %d byte limit; giving up", l.key, v, MaxFileSize)
		p.stopped = true
		return nil, false
	}
	s := &source{Source: Source{Path: full, Section: section, Key: l.key, From: l.line},
		index: len(p.srcs), written: written, full: full, asked: asked, reuse: reuse}
	p.srcs = append(p.srcs, s)
	p.file.Sources = append(p.file.Sources, s.Source)
	p.lastFile = s.index
	lines, found := p.lex(content, s.index)
	if !found {
		p.errorf(l.line, "%s = %s: %s has no [%s] section (uWSGI warns and reads nothing from it)", l.key, v, full, section)
		return nil, false
	}
	return lines, true
}

// loopChain shows a chain of inclusions, each file:line that includes the
// next, then the file it names: app.ini:3 -> base.ini:2 -> app.ini.
func (p *parser) loopChain(chain []int, l rawLine, full, section string) string {
	var parts []string
	for _, c := range chain[1:] {
		parts = append(parts, p.file.Where(p.srcs[c].From))
	}
	parts = append(parts, p.file.Where(l.line))
	if section != "uwsgi" {
		full += ":" + section
	}
	return strings.Join(append(parts, full), " -> ")
}

// readConfig reads an included file (once per parse).
func (p *parser) readConfig(full string) ([]byte, error) {
	if b, ok := p.contents[full]; ok {
		return b, nil
	}
	b, err := p.readData(full)
	if err != nil {
		return nil, err
	}
	p.contents[full] = b
	return b, nil
}

// readData reads a file the vassal file names (an included file, @(file),
// for-readline): from ParseOptions.Files when given, else with the
// owner's credentials (see ReadAs). Every file read is kept in File.Read.
func (p *parser) readData(full string) ([]byte, error) {
	var b []byte
	var err error
	if p.o.Files != nil {
		var ok bool
		if b, ok = p.o.Files[full]; !ok {
			return nil, fmt.Errorf("%s was not read by the emperor's check of this file", full)
		}
	} else if b, err = p.o.ReadFile(full); err != nil {
		return nil, err
	}
	if p.file.Read == nil {
		p.file.Read = map[string][]byte{}
	}
	p.file.Read[full] = b
	return b, nil
}

// load lexes source idx and reads, in place of each ini or include line
// outside a logic block, the file it names: uWSGI reads those at once. The
// included lines hang under their include line (sub), so that blocks stay
// within their file. An include line inside a block is read when the
// block applies it; for the pre-scan of names, the file it names is read
// now if it can be (spec). inherit lines are read after every other line.
func (p *parser) load(lines []rawLine, chain []int) []rawLine {
	depth := 0
	for i := range lines {
		l := &lines[i]
		if p.stopped {
			return lines
		}
		switch k := l.key; {
		case isIf(k) || isFor(k):
			depth++
		case isEnd(k):
			depth = max(0, depth-1)
		case k == "ini" || k == "include":
			if depth > 0 {
				l.last, p.lastFile = p.lastFile, -1
				l.spec = p.speculate(*l)
				continue
			}
			l.included = true
			p.src = l.line >> lineBits
			v, err := p.includeValue(*l, "", false)
			if err != nil {
				p.errorf(l.line, "%s: %v", k, err)
				continue
			}
			sub, ok := p.open(*l, v, chain)
			if ok {
				l.sub = p.load(sub, append(chain[:len(chain):len(chain)], p.srcs[len(p.srcs)-1].index))
			}
		}
	}
	return lines
}

// speculate reads, for the pre-scan only, the file of an include line
// inside a block: the names it sets and refers to count as the file's. Its
// errors are reported if the block applies the line.
func (p *parser) speculate(l rawLine) []rawLine {
	if strings.Contains(l.value, "%(") || strings.Contains(l.value, "$(") || strings.Contains(l.value, "@(") || strings.HasPrefix(l.value, ":") {
		return nil
	}
	p.src = l.line >> lineBits
	v, err := p.expand(l.value, "", false)
	if err != nil {
		return nil
	}
	written, section, _, _, err := p.includeTarget(l.key, v)
	if err != nil || written == "" {
		return nil
	}
	content, err := p.readConfig(p.rel(written))
	if err != nil {
		return nil
	}
	p.specBytes += len(content)
	if p.specBytes > MaxFileSize {
		return nil
	}
	var errs diagList
	lines, _ := lexSection(&errs, content, section, 0)
	for i := range lines {
		lines[i].line = l.line
	}
	return lines
}

// include applies an ini, include or inherit line that load did not read
// in its place: one inside a block (uWSGI's logic adds it, with %(_)
// replaced, and it runs at once), or inherit anywhere (read once every
// other line is, by runTemplates). The lines of a file read from inside a
// block may not open blocks: uWSGI exits, "recursive logic in options is
// not supported".
func (p *parser) include(l rawLine, under string, hasUnder bool) {
	v, err := p.includeValue(l, under, hasUnder)
	if err != nil {
		p.errorf(l.line, "%s: %v", l.key, err)
		return
	}
	p.setPH(l.key, v)
	if l.key == "inherit" {
		l.value = v
		p.templates = append(p.templates, l)
		return
	}
	src := p.src
	chain := p.chainOf(src)
	if l.last >= 0 {
		p.lastFile = l.last
	}
	lines, ok := p.open(l, v, chain)
	if !ok {
		return
	}
	lines = p.load(lines, append(chain, len(p.srcs)-1))
	setSeq(lines, l.seq)
	saved := p.nested
	if saved.line == 0 {
		p.nested = p.block
	}
	p.run(lines)
	p.nested, p.src = saved, src
}

// runTemplates reads the files of the inherit lines applied, in order, as
// uWSGI's uwsgi_configure applies them once every other line is read and
// expanded: their lines come after all others, and nothing but magic
// variables is expanded in them. A template's own inherit lines are read
// after it.
func (p *parser) runTemplates() {
	for i := 0; i < len(p.templates) && !p.stopped; i++ {
		l := p.templates[i]
		p.cur, p.src = l.seq, l.line>>lineBits
		chain := p.chainOf(p.src)
		lines, ok := p.open(l, l.value, chain)
		if !ok {
			continue
		}
		p.template = true
		lines = p.load(lines, append(chain, len(p.srcs)-1))
		setSeq(lines, math.MaxInt)
		p.run(lines)
	}
	p.template = false
}

// chainOf is the chain of sources that included src, the vassal file
// first, src last.
func (p *parser) chainOf(src int) []int {
	var rev []int
	for s := src; ; {
		rev = append(rev, s)
		if s == 0 || len(rev) > MaxSources {
			break
		}
		s = p.srcs[s].From >> lineBits
	}
	out := make([]int, len(rev))
	for i, s := range rev {
		out[len(rev)-1-i] = s
	}
	return out
}

// setSeq places lines read after the pre-scan at seq: a %(name) in them
// looks further down from there.
func setSeq(lines []rawLine, seq int) {
	for i := range lines {
		lines[i].seq = seq
		setSeq(lines[i].sub, seq)
	}
}
