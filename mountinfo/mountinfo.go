// Package mountinfo reads /proc/self/mountinfo: the mount points of the
// calling process's mount namespace. It reads kernel data only, so a hung
// FUSE mount cannot block it (a statfs on that mount would).
package mountinfo

import (
	"bufio"
	"os"
	"strings"
)

// Points returns the mount points of this mount namespace, in the order the
// kernel lists them (parents before children).
func Points() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 {
			out = append(out, Unescape(fields[4]))
		}
	}
	return out, sc.Err()
}

// Set returns the mount points as a set.
func Set() (map[string]bool, error) {
	pts, err := Points()
	if err != nil {
		return nil, err
	}
	m := make(map[string]bool, len(pts))
	for _, p := range pts {
		m[p] = true
	}
	return m, nil
}

// IsMountPoint says whether path is a mount point here.
func IsMountPoint(path string) (bool, error) {
	m, err := Set()
	if err != nil {
		return false, err
	}
	return m[path], nil
}

// Unescape undoes the octal escapes (\040 for a space) of mountinfo fields.
func Unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOct(s[i+1]) && isOct(s[i+2]) && isOct(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOct(c byte) bool { return c >= '0' && c <= '7' }
