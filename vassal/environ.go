package vassal

import "strings"

// DefaultPath is the PATH every hook and daemon starts with.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// baseEnv is the environment every hook and daemon starts from, before the
// vassal's env lines, its putenv hooks and LISTEN_FDS. It is not the
// emperor's environment: that holds whatever the emperor was started with
// (credentials, internal variables such as CPUProfileEnv), and a tenant
// must not read it. PID 1 itself keeps the emperor's environment, for the
// $(VAR) placeholders of the vassal file, which it parses again and must
// expand as the emperor did; after the privilege drop the kernel makes it
// non-dumpable, so a tenant cannot read it from /proc/1/environ either.
func baseEnv() []string {
	return []string{"PATH=" + DefaultPath, "HOME=/"}
}

// mergeEnv joins environment lists; a later value of a name replaces an
// earlier one in place. execve does not deduplicate, and glibc's getenv
// returns the first entry of a name, so a vassal's `env = HOME=/app` would
// otherwise lose to the base HOME=/.
func mergeEnv(lists ...[]string) []string {
	var out []string
	at := map[string]int{}
	for _, l := range lists {
		for _, kv := range l {
			k, _, _ := strings.Cut(kv, "=")
			if i, ok := at[k]; ok {
				out[i] = kv
				continue
			}
			at[k] = len(out)
			out = append(out, kv)
		}
	}
	return out
}
