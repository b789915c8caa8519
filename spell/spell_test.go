package spell

import "testing"

func TestTypo(t *testing.T) {
	for _, c := range []struct {
		typed, known string
		want         bool
	}{
		{"attach-deamon", "attach-daemon", true},
		{"atach-deamon", "attach-daemon", true},
		{"attachdaemon", "attach-daemon", true},
		{"hook_pre_jail", "hook-pre-jail", true},
		{"mountpoint-chek", "mountpoint-check", true},
		{"chmd", "chmod", true},
		{"dc", "cd", true},
		{"wait_for_sock", "wait_for_socket", false}, // a word 2 letters short of 6
		{"wait_for_sockt", "wait_for_socket", true},
		{"unmount", "umount", true},

		{"hook-pre-app", "hook-pre-jail", false},
		{"chmod-socket", "http-socket", false},
		{"socket-timeout", "hook-timeout", false},
		{"attach-daemon2", "attach-daemon", false},
		{"static-map2", "static-map", false},
		{"cron2", "cron", false},
		{"link", "unlink", false},
		{"mount", "umount", false},
		{"cp", "cd", false},
		{"ls", "cd", false},
		{"cat", "cd", false},
		{"mv", "cd", false},
		{"env2", "env", false},
		{"uid", "gid", false},
		{"x", "x", false},
	} {
		if _, got := Typo(c.typed, c.known); got != c.want {
			t.Errorf("Typo(%q, %q) = %v, want %v", c.typed, c.known, got, c.want)
		}
	}
}

func TestNearest(t *testing.T) {
	known := []string{"cd", "chdir", "chmod", "chown", "chown2", "exec", "unlink", "umount", "mount"}
	for typed, want := range map[string]string{
		"chmdo": "chmod", "chonw": "chown", "exce": "exec", "unlnk": "unlink", "link": "", "cp": "", "dc": "cd",
	} {
		if got := Nearest(typed, known, nil); got != want {
			t.Errorf("Nearest(%q) = %q, want %q", typed, got, want)
		}
	}
	if got := Nearest("chmdo", known, func(k string) bool { return k != "chmod" }); got != "" {
		t.Errorf("filtered: %q", got)
	}
}

func TestDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		d    int
	}{{"deamon", "daemon", 1}, {"", "abc", 3}, {"app", "jail", 3}, {"chmod", "http", 4}, {"abc", "abc", 0}} {
		if got := Distance(c.a, c.b); got != c.d {
			t.Errorf("%q %q: %d, want %d", c.a, c.b, got, c.d)
		}
	}
}
