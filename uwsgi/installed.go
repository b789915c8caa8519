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
	return cachedAsk(&helpCache, dirs, plugins, func(bin string) (*Installation, error) {
		return ask(bin, dirs, plugins)
	})
}

// answers caches what the installed uwsgi answered, per set of dirs and
// plugins, binary and plugin directory.
type answers[T any] struct {
	sync.Mutex
	m map[string]T
}

var (
	helpCache  answers[*Installation]
	routeCache answers[map[string]bool]
)

// cachedAsk answers from c, or runs ask with the installed uwsgi (Binary,
// found in PATH) and keeps its answer until the binary or its plugin
// directory changes.
func cachedAsk[T any](c *answers[T], dirs, plugins []string, ask func(bin string) (T, error)) (T, error) {
	var zero T
	bin, err := exec.LookPath(Binary)
	if err != nil {
		return zero, fmt.Errorf("%w: %s not found (apt-get install uwsgi-core)", ErrNotInstalled, Binary)
	}
	key := stamp(bin) + "\x00" + stamp(PluginDir) + "\x00" + strings.Join(dirs, "\x01") + "\x00" + strings.Join(plugins, "\x01")
	c.Lock()
	v, ok := c.m[key]
	c.Unlock()
	if ok {
		return v, nil
	}
	if v, err = ask(bin); err != nil {
		return zero, err
	}
	c.Lock()
	if c.m == nil || len(c.m) > 256 {
		c.m = map[string]T{}
	}
	c.m[key] = v
	c.Unlock()
	return v, nil
}

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
	out, errOut, err := run(bin, loadArgs(dirs, plugins, "--help"))
	if err != nil {
		return nil, err
	}
	in := &Installation{Options: map[string]bool{}, Missing: map[string]string{}}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if m := helpLine.FindStringSubmatch(sc.Text()); m != nil {
			in.Options[m[1]] = true
		}
	}
	if len(in.Options) == 0 {
		return nil, fmt.Errorf("%s %s printed no option", bin, strings.Join(loadArgs(dirs, plugins, "--help"), " "))
	}
	for _, m := range unableLine.FindAllStringSubmatch(out+errOut, -1) {
		in.Missing[PluginName(m[1])] = m[2]
	}
	return in, nil
}

// loadArgs are the arguments that make uwsgi load plugins from dirs (then
// its own directory), followed by more.
func loadArgs(dirs, plugins []string, more ...string) []string {
	var args []string
	for _, d := range dirs {
		args = append(args, "--plugins-dir", d)
	}
	if len(plugins) > 0 {
		args = append(args, "--plugin", strings.Join(plugins, ","))
	}
	return append(args, more...)
}

// run runs bin with args, bounded by HelpTimeout, in an empty environment
// (uwsgi reads UWSGI_* variables as options), from /, as nobody when the
// emperor is root, and returns its output. An exit status other than 0 is
// an error whose text ends with the last line of its stderr; the output
// comes with it.
func run(bin string, args []string) (stdout, stderr string, err error) {
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
	err = cmd.Run()
	if ctx.Err() != nil {
		return "", "", fmt.Errorf("%s %s: no answer within %v", bin, strings.Join(args, " "), HelpTimeout)
	}
	if err != nil {
		err = fmt.Errorf("%s %s: %w: %s", bin, strings.Join(args, " "), err, lastLine(errOut.String()))
	}
	return out.String(), errOut.String(), err
}

// noClock names a clock no uwsgi has: --clock makes uwsgi exit right after
// it printed the lists it was asked for (core/uwsgi.c calls
// uwsgi_set_clock after router_list; core/clock.c exits when the clock is
// unknown), before it would set up anything of an app server.
const noClock = "emperor-check-no-such-clock"

var routersList = regexp.MustCompile(`(?s)\*\*\* uWSGI loaded routers \*\*\*\n(.*?)--- end of routers list ---`)

// RouteActions asks the installed uwsgi which routing actions it has with
// plugins loaded (as Installed: looked for in dirs, then in its own plugin
// directory): one run of `uwsgi --plugins-dir D... --plugin a,b
// --router-list --clock NONE`, which prints the actions registered by the
// core and the plugins it loaded, then exits (noClock). The answer is
// cached as Installed's.
func RouteActions(dirs, plugins []string) (map[string]bool, error) {
	return cachedAsk(&routeCache, dirs, plugins, func(bin string) (map[string]bool, error) {
		args := loadArgs(dirs, plugins, "--router-list", "--clock", noClock)
		out, errOut, err := run(bin, args)
		m := routersList.FindStringSubmatch(out + errOut) // uwsgi_log writes to stderr
		if m == nil {
			if err == nil {
				err = fmt.Errorf("%s %s printed no routers list: %s", bin, strings.Join(args, " "), lastLine(errOut))
			}
			return nil, err
		}
		actions := map[string]bool{}
		for _, a := range strings.Fields(m[1]) {
			actions[a] = true
		}
		return actions, nil
	})
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
