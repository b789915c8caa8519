package vassalfile

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// globLimit is filepath.Glob with a bound on the matches: it stops with an
// error once more than limit paths match, and reads each directory in
// chunks, so a for-glob over a huge tree cannot exhaust memory before the
// loop's own limit is checked. Matches are sorted within each directory, as
// filepath.Glob sorts them.
func globLimit(pattern string, limit int) ([]string, error) {
	if _, err := filepath.Match(pattern, ""); err != nil {
		return nil, err
	}
	var out []string
	err := globInto(pattern, limit, &out)
	return out, err
}

func hasMeta(p string) bool { return strings.ContainsAny(p, `*?[\`) }

func globInto(pattern string, limit int, out *[]string) error {
	if !hasMeta(pattern) {
		if _, err := os.Lstat(pattern); err == nil {
			return add(out, limit, pattern)
		}
		return nil
	}
	dir, file := filepath.Split(pattern)
	dir = cleanGlobDir(dir)
	if !hasMeta(dir) {
		return globDir(dir, file, limit, out)
	}
	var dirs []string
	if err := globInto(dir, limit, &dirs); err != nil {
		return err
	}
	for _, d := range dirs {
		if err := globDir(d, file, limit, out); err != nil {
			return err
		}
	}
	return nil
}

func add(out *[]string, limit int, p string) error {
	if len(*out) >= limit {
		return fmt.Errorf("matches more than %d paths", limit)
	}
	*out = append(*out, p)
	return nil
}

// cleanGlobDir is filepath.Glob's treatment of the directory part.
func cleanGlobDir(dir string) string {
	switch dir {
	case "":
		return "."
	case string(filepath.Separator):
		return dir
	}
	return dir[:len(dir)-1]
}

// globDir adds the names in dir that match pattern.
func globDir(dir, pattern string, limit int, out *[]string) error {
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() {
		return nil // as filepath.Glob: an unreadable directory matches nothing
	}
	d, err := os.Open(dir)
	if err != nil {
		return nil
	}
	defer d.Close()
	var found []string
	for {
		names, err := d.Readdirnames(256)
		for _, n := range names {
			if ok, _ := filepath.Match(pattern, n); ok {
				if len(*out)+len(found) >= limit {
					return fmt.Errorf("matches more than %d paths", limit)
				}
				found = append(found, filepath.Join(dir, n))
			}
		}
		if err == io.EOF || len(names) == 0 {
			break
		}
		if err != nil {
			return nil
		}
	}
	sort.Strings(found)
	*out = append(*out, found...)
	return nil
}
