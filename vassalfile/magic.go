package vassalfile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The magic variables of uWSGI 2.0 (config_magic_table_fill and uwsgi_setup
// in core/uwsgi.c), as a vassal started by uWSGI's Emperor sees them: the
// Emperor changes into the vassals directory and passes the file's base name,
// so %o is the base name and %v, uWSGI's working directory, is the file's
// directory.
//
//	%o  the file name as passed (the base name for a vassal)
//	%p  the absolute path (symlinks resolved, unless the file itself is one)
//	%s  the file name, %n without its extension, %e the extension
//	%d  the directory with a trailing /, %c its last component
//	%0..%9  the components of %d, from the root
//	%x  the section asked for with ini = file:section
//	%i  the inode of the file, %j the djb33x hash of %p in hex
//	%O %P %S %N %E %D %C %X %I %J  the same of the first file read (the vassal file)
//	%b  the uWSGI binary, %V its version
//	%v  the working directory, %h the host name, %k the cpu cores online
//	%t  unix time in seconds, %T in microseconds
//	%u %g  uid and gid of the reading process, %U %G their names
//	%[  ESC (for ANSI colours in log formats), %% a percent sign
func (p *parser) initMagic(s *source) {
	if s.reuse >= 0 {
		// ini = :section reads the last file again: uWSGI keeps the
		// magic table of the last file it read, with %o cut to "" at
		// the colon and %x the section (config_magic_table_fill's reuse).
		r := p.srcs[s.reuse]
		if r.magic == nil {
			p.initMagic(r)
		}
		s.magic = map[byte]string{}
		for k, v := range r.magic {
			s.magic[k] = v
		}
		s.lazy = r.lazy
		s.magic['o'], s.magic['x'] = "", s.Section
		return
	}
	path := s.full
	full := fullPath(path)
	dir := full[:strings.LastIndexByte(full, '/')+1]
	base := full[len(dir):]
	n, e := base, ""
	if i := strings.LastIndexByte(base, '.'); i >= 0 {
		n, e = base[:i], base[i+1:]
	}
	c := ""
	if trimmed := strings.TrimSuffix(dir, "/"); strings.Contains(trimmed, "/") {
		c = trimmed[strings.LastIndexByte(trimmed, '/')+1:]
	}
	o := s.written
	cwd := strings.TrimSuffix(dir, "/")
	if cwd == "" {
		cwd = "/"
	}
	if s.index == 0 {
		if p.o.Scope&ScopeVassal != 0 {
			o = filepath.Base(path)
		} else if wd, err := os.Getwd(); err == nil {
			cwd = wd
		}
	} else {
		// uWSGI's working directory, %v, is the vassal file's
		cwd, _, _ = p.magicOf(0, 'v')
	}
	x := ""
	if s.asked {
		x = s.Section
	}
	m := map[byte]string{
		'%': "%", '[': "\x1b",
		'o': o, 'p': full, 's': base, 'n': n, 'e': e, 'd': dir, 'c': c, 'x': x,
		'j': djb33xHex(full), 'v': cwd, 'h': p.o.Hostname,
		't': strconv.FormatInt(p.o.Now().Unix(), 10),
		'T': strconv.FormatInt(p.o.Now().UnixMicro(), 10),
	}
	for i := byte('0'); i <= '9'; i++ {
		m[i] = ""
	}
	i := byte('0')
	for _, part := range strings.Split(dir, "/") {
		if part != "" && i <= '9' {
			m[i] = part
			i++
		}
	}
	s.magic = m
	s.lazy = map[byte]func() (string, error){
		'i': func() (string, error) { return inode(full), nil },
		'b': p.o.uwsgiBinary,
		'V': p.o.uwsgiVersion,
		'k': func() (string, error) { return strconv.Itoa(cpusOnline()), nil },
		'u': func() (string, error) { return strconv.Itoa(os.Getuid()), nil },
		'g': func() (string, error) { return strconv.Itoa(os.Getgid()), nil },
		'U': func() (string, error) {
			id := strconv.Itoa(os.Getuid())
			if u, err := user.LookupId(id); err == nil {
				return u.Username, nil
			}
			return id, nil
		},
		'G': func() (string, error) {
			id := strconv.Itoa(os.Getgid())
			if g, err := user.LookupGroupId(id); err == nil {
				return g.Name, nil
			}
			return id, nil
		},
	}
}

// magicVar is the value of %c in the file being read. Its table is made at
// the first use: most files use none, and %p costs a few path lookups. The
// capitals of o p s n e d c x i j are those of the first file read, the
// vassal file (uWSGI fills them in its first round only).
func (p *parser) magicVar(c byte) (string, bool, error) {
	if strings.IndexByte("OPSNEDCXIJ", c) >= 0 {
		return p.magicOf(0, c+'a'-'A')
	}
	return p.magicOf(p.src, c)
}

// magicOf is %c of the file srcs[src].
func (p *parser) magicOf(src int, c byte) (string, bool, error) {
	s := p.srcs[src]
	if s.magic == nil {
		p.initMagic(s)
	}
	if v, ok := s.magic[c]; ok {
		return v, true, nil
	}
	f, ok := s.lazy[c]
	if !ok {
		return "", false, nil
	}
	v, err := f()
	if err != nil {
		return "", true, err
	}
	s.magic[c] = v
	return v, true, nil
}

// fullPath is uWSGI's %p: the absolute path with symlinks resolved
// (realpath), except that a file which is itself a symlink keeps its own
// path.
func fullPath(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	if st, err := os.Lstat(abs); err == nil && st.Mode()&os.ModeSymlink != 0 {
		return abs
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		return real
	}
	return abs
}

// djb33xHex is uWSGI's %j: djb33x_hash of the path (its bytes as C's signed
// char), the four bytes of the uint32 in memory order (little endian) in
// upper-case hex.
func djb33xHex(s string) string {
	h := uint32(5381)
	for i := 0; i < len(s); i++ {
		h = ((h << 5) + h) ^ uint32(int32(int8(s[i])))
	}
	return fmt.Sprintf("%02X%02X%02X%02X", byte(h), byte(h>>8), byte(h>>16), byte(h>>24))
}

func inode(path string) string {
	st, err := os.Lstat(path)
	if err != nil {
		return "" // uWSGI leaves %i empty when lstat fails
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		return strconv.FormatUint(sys.Ino, 10)
	}
	return ""
}

// cpusOnline is uWSGI's %k, sysconf(_SC_NPROCESSORS_ONLN): the cpus online,
// from /sys (the Go runtime's count is the affinity mask's).
func cpusOnline() int {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return runtime.NumCPU()
	}
	n := 0
	for _, r := range strings.Split(strings.TrimSpace(string(b)), ",") {
		lo, hi, isRange := strings.Cut(r, "-")
		a, err1 := strconv.Atoi(lo)
		z := a
		var err2 error
		if isRange {
			z, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || z < a {
			return runtime.NumCPU()
		}
		n += z - a + 1
	}
	if n == 0 {
		return runtime.NumCPU()
	}
	return n
}

// uwsgiBinary is %b: the uWSGI binary the app server runs, as uWSGI
// itself reports it (/proc/self/exe: symlinks resolved).
func (o *ParseOptions) uwsgiBinary() (string, error) {
	bin := o.UWSGI
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("uwsgi"); err != nil {
			return "", fmt.Errorf("%%b is the uWSGI binary, and there is none in PATH (install uwsgi-core)")
		}
	}
	if real, err := filepath.EvalSymlinks(bin); err == nil {
		bin = real
	}
	return filepath.Abs(bin)
}

var versions sync.Map // binary path -> version string

// uwsgiVersion is %V: the version the uWSGI binary reports (2.0.21-debian).
func (o *ParseOptions) uwsgiVersion() (string, error) {
	bin, err := o.uwsgiBinary()
	if err != nil {
		return "", fmt.Errorf("%%V is the uWSGI version: %w", err)
	}
	if v, ok := versions.Load(bin); ok {
		return v.(string), nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "--version").Output()
	// In a vassal's PID 1 the reaper owns every wait (vassal/reaper.go) and
	// may collect the child first: then Wait fails with ECHILD, and the
	// output read to its end is the answer.
	if err != nil && !errors.Is(err, syscall.ECHILD) {
		return "", fmt.Errorf("%%V is the uWSGI version: %s --version: %w", bin, err)
	}
	v := string(bytes.TrimSpace(out))
	if v == "" || strings.ContainsAny(v, "\n\x00") || len(v) > 64 {
		return "", fmt.Errorf("%%V is the uWSGI version: %s --version printed %s", bin, QuoteValue(v))
	}
	versions.Store(bin, v)
	return v, nil
}

// The operators of uWSGI's placeholder arithmetic (uwsgi_manage_placeholder
// in core/config.c).
const (
	opConcat = iota
	opSum
	opSub
	opMul
	opDiv
)

// compute evaluates a %(...) holding spaces as uWSGI does, as a pipeline
// from left to right: a run of values is concatenated ("%(a b)" is the
// value of a followed by b's), an operator + - * / combines the running
// value with the next one as 64-bit integers (a division by zero gives 0),
// and ++ / -- add or take one. A token of digits is a number, "_" the value
// of the block (%(_)), anything else the value of an option or placeholder.
// Where uWSGI takes an unknown name as empty and leaves a pipeline that
// yields nothing as literal text, both are errors here.
func (p *parser) compute(expr string, under string, hasUnder bool, depth int) (string, error) {
	var cur []byte
	have := false
	state := opConcat
	for _, tok := range strings.Split(expr, " ") {
		var val string
		switch tok {
		case "":
			continue
		case "+":
			state = opSum
			continue
		case "-":
			state = opSub
			continue
		case "*":
			state = opMul
			continue
		case "/":
			state = opDiv
			continue
		case "++", "--":
			if have {
				n := strtoll(string(cur))
				if tok == "++" {
					n++
				} else {
					n--
				}
				cur = strconv.AppendInt(cur[:0], n, 10)
			}
			state = opConcat
			continue
		case "_":
			if !hasUnder {
				return "", errNoUnder
			}
			val = under
		default:
			if isNumber(tok) {
				val = tok
				break
			}
			if strings.ContainsAny(tok, "%$@") {
				var err error
				if tok, err = p.inner(tok, under, hasUnder, depth); err != nil {
					return "", err
				}
			}
			v, ok, err := p.lookup(tok)
			if err != nil {
				return "", err
			}
			if !ok {
				return "", fmt.Errorf("unresolved reference %s in %%(%s): no option or placeholder %s is set in this file", QuoteValue(tok), expr, QuoteValue(tok))
			}
			val = v
		}
		if state == opConcat {
			if len(cur)+len(val) > maxValueBytes {
				return "", fmt.Errorf("value expands to more than %d bytes", maxValueBytes)
			}
			cur = append(cur, val...)
		} else {
			a, b := int64(0), strtoll(val)
			if have {
				a = strtoll(string(cur))
			}
			var r int64
			switch state {
			case opSum:
				r = a + b
			case opSub:
				r = a - b
			case opMul:
				r = a * b
			case opDiv:
				if b != 0 {
					r = a / b
				}
			}
			cur = strconv.AppendInt(cur[:0], r, 10)
		}
		have = true
		state = opConcat
	}
	if !have {
		return "", fmt.Errorf("%%(%s) computes no value (uWSGI leaves it as literal text)", expr)
	}
	return string(cur), nil
}

// isNumber is uWSGI's is_a_number: only digits.
func isNumber(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// strtoll is C's strtoll(s, NULL, 10): leading space, a sign, the digits
// up to the first other byte, 0 for none, clamped on overflow.
func strtoll(s string) int64 {
	i := 0
	for i < len(s) && (s[i] == ' ' || (s[i] >= '\t' && s[i] <= '\r')) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	var n uint64
	over := false
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		d := uint64(s[i] - '0')
		if n > (math.MaxUint64-d)/10 {
			over = true
			continue
		}
		n = n*10 + d
	}
	switch {
	case neg && (over || n > 1<<63):
		return math.MinInt64
	case neg:
		return -int64(n)
	case over || n > math.MaxInt64:
		return math.MaxInt64
	}
	return int64(n)
}
