package vassalfile

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// ParsePivotRoot reads "NEW OLD": both absolute, OLD under NEW (as uWSGI
// writes it: pivot_root = /ufs /ufs/.old_root).
func ParsePivotRoot(v string) (string, string, error) {
	f := strings.Fields(v)
	if len(f) != 2 {
		return "", "", fmt.Errorf("wants NEW_ROOT PUT_OLD, got %s", QuoteValue(v))
	}
	nr, old := filepath.Clean(f[0]), filepath.Clean(f[1])
	if !filepath.IsAbs(nr) || !filepath.IsAbs(old) {
		return "", "", fmt.Errorf("both paths must be absolute, got %s", QuoteValue(v))
	}
	if nr == "/" {
		return "", "", fmt.Errorf("new root cannot be /")
	}
	if !strings.HasPrefix(old, nr+"/") {
		return "", "", fmt.Errorf("put_old %s must be under the new root %s", old, nr)
	}
	return nr, old, nil
}

// PivotRoot is pivot_root's NEW OLD.
type PivotRoot struct{ New, Old string }

func parsePivot(v string) (any, error) {
	nr, old, err := ParsePivotRoot(v)
	return PivotRoot{nr, old}, err
}

func validateAbs(v string) error {
	if !filepath.IsAbs(v) {
		return fmt.Errorf("%s is not an absolute path", QuoteValue(v))
	}
	return nil
}

func init() {
	register(
		&Option{Name: "chroot", Scope: ScopeVassal, Kind: KindString, Restart: true, Validate: validateAbs,
			Default: "(none)",
			Doc:     "chroot(2) into DIR after the pre-jail, in-jail and post-jail hooks (skipped on reload).",
			UWSGI:   "same"},
		&Option{Name: "pivot_root", Aliases: []string{"pivot-root"}, Scope: ScopeVassal, Kind: KindString,
			Restart: true, Parse: parsePivot, Default: "(none)",
			Doc:   "NEW OLD: pivot_root(2) to NEW after the pre-jail, in-jail and post-jail hooks, with the old root at OLD (a path under NEW). Skipped on reload.",
			UWSGI: "We make / private first and bind NEW onto itself when it is not a mount point, where uWSGI fails with EINVAL."},
		&Option{Name: "hook-timeout", Scope: ScopeVassal, Kind: KindSeconds, Min: time.Millisecond, Max: 24 * time.Hour, Default: "60",
			Doc:   "Longest time one hook may take (exec, wait_for_*); a hook past it is killed and fails.",
			UWSGI: "Not in uWSGI, where a hanging hook hangs the vassal."},
		&Option{Name: "mountpoint-check", Aliases: []string{"check-mountpoint", "mount-check", "check-mount"},
			Scope: ScopeVassal, Kind: KindString, List: true, Validate: validateAbs, Default: "(none)",
			Doc:   "Path checked with statfs(2) every check-interval and whenever a child of the vassal exits. A failing, hung or unmounted path destroys the vassal so the emperor restarts it clean.",
			UWSGI: "Adds the timeout (a hung FUSE daemon wedges uWSGI's master), the unmounted case, and the check on child exit."},
		&Option{Name: "check-interval", Scope: ScopeVassal, Kind: KindSeconds, Min: 10 * time.Millisecond, Max: time.Hour, Default: "1",
			Doc:   "Interval of mountpoint-check.",
			UWSGI: "Also accepts Go durations (250ms)."},
		&Option{Name: "mountpoint-check-timeout", Scope: ScopeVassal, Kind: KindSeconds, Min: time.Millisecond, Max: time.Hour, Default: "3",
			Doc:   "How long one statfs may block before the mount counts as hung.",
			UWSGI: "Not in uWSGI."},
	)
}
