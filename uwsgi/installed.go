package uwsgi

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// nobody is the uid and gid of the uwsgi --help that a root emperor runs.
const nobody = 65534

// Binary is the uwsgi that Installed asks, found in PATH. PluginDir is
// Debian's plugin directory, where uwsgi looks for a plugin by name.
var (
	Binary    = "uwsgi"
	PluginDir = "/usr/lib/uwsgi/plugins"
)

// HelpTimeout bounds one `uwsgi --help` (it takes about 0.3 s). It is
// below the emperor's bound on checking a whole file
// (emperor.DefaultCheckTimeout, 10 s), so that a uwsgi that hangs is
// reported as such, not as a file whose check hangs.
var HelpTimeout = 5 * time.Second

// ErrNotInstalled is Installed's error when there is no uwsgi to ask.
var ErrNotInstalled = errors.New("uWSGI is not installed")

// Installation is what the installed uwsgi knows with a set of plugins
// loaded.
type Installation struct {
	// Options are the option names it knows: the core's and those of the
	// plugins it loaded.
	Options map[string]bool
	// Missing are the plugins it could not load, with its reason.
	Missing map[string]string
}

// Installed asks the installed uwsgi which options it knows with plugins
// loaded (looked for in dirs, then in its own plugin directory): one run
// of `uwsgi --plugins-dir D... --plugin a,b --help`, bounded by
// HelpTimeout, in an empty environment (uwsgi reads UWSGI_* variables as
// options). The answer is cached per set of dirs and plugins until the
// binary or its plugin directory changes (a package installed since).
func Installed(dirs, plugins []string) (*Installation, error) {
	bin, err := exec.LookPath(Binary)
	if err != nil {
		return nil, fmt.Errorf("%w: %s not found (apt-get install uwsgi-core)", ErrNotInstalled, Binary)
	}
	key := stamp(bin) + "\x00" + stamp(PluginDir) + "\x00" + strings.Join(dirs, "\x01") + "\x00" + strings.Join(plugins, "\x01")
	cache.Lock()
	in, ok := cache.m[key]
	cache.Unlock()
	if ok {
		return in, nil
	}
	in, err = ask(bin, dirs, plugins)
	if err != nil {
		return nil, err
	}
	cache.Lock()
	if len(cache.m) > 256 {
		cache.m = map[string]*Installation{}
	}
	cache.m[key] = in
	cache.Unlock()
	return in, nil
}

var cache = struct {
	sync.Mutex
	m map[string]*Installation
}{m: map[string]*Installation{}}

// stamp identifies a file's version: path, size and modification time.
func stamp(path string) string {
	st, err := os.Stat(path)
	if err != nil {
		return path
	}
	return fmt.Sprintf("%s:%d:%d", path, st.Size(), st.ModTime().UnixNano())
}

var (
	helpLine   = regexp.MustCompile(`^    (?:-.\|)?--(\S+)`)
	unableLine = regexp.MustCompile(`UNABLE to load uWSGI plugin: (.*?): (.*?) !!!`)
)

func ask(bin string, dirs, plugins []string) (*Installation, error) {
	var args []string
	for _, d := range dirs {
		args = append(args, "--plugins-dir", d)
	}
	if len(plugins) > 0 {
		args = append(args, "--plugin", strings.Join(plugins, ","))
	}
	args = append(args, "--help")
	ctx, cancel := context.WithTimeout(context.Background(), HelpTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin"}
	cmd.Dir = "/"
	if os.Geteuid() == 0 {
		// The plugins it loads are named by a vassal file; their code
		// runs at load time. The app server runs them as the vassal's
		// user; the check runs them as nobody, not as root.
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ctx.Err() != nil {
		return nil, fmt.Errorf("%s %s: no answer within %v", bin, strings.Join(args, " "), HelpTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w: %s", bin, strings.Join(args, " "), err, lastLine(errOut.String()))
	}
	in := &Installation{Options: map[string]bool{}, Missing: map[string]string{}}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		if m := helpLine.FindStringSubmatch(sc.Text()); m != nil {
			in.Options[m[1]] = true
		}
	}
	if len(in.Options) == 0 {
		return nil, fmt.Errorf("%s %s printed no option", bin, strings.Join(args, " "))
	}
	for _, m := range unableLine.FindAllStringSubmatch(out.String()+errOut.String(), -1) {
		in.Missing[PluginName(m[1])] = m[2]
	}
	return in, nil
}

// PluginName is the name uwsgi gives a plugin named by a path or a file
// name: /usr/lib/uwsgi/plugins/python3_plugin.so is python3.
func PluginName(v string) string {
	v = filepath.Base(strings.TrimSpace(v))
	v = strings.TrimSuffix(v, ".so")
	return strings.TrimSuffix(v, "_plugin")
}

// SplitPlugins splits the value of a plugin line (plugin, plugins,
// need-plugin...) into names, as uWSGI does (at commas; we also take
// spaces).
func SplitPlugins(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
}

// InstalledPlugins lists the plugins of the plugin directory, by name.
func InstalledPlugins() []string {
	files, _ := filepath.Glob(filepath.Join(PluginDir, "*_plugin.so"))
	var out []string
	for _, f := range files {
		out = append(out, PluginName(f))
	}
	sort.Strings(out)
	return out
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
