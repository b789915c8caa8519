package mountinfo

import "testing"

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{`/a\040b`: "/a b", `/plain`: "/plain", `/x\134y`: `/x\y`, `/bad\09`: `/bad\09`} {
		if got := Unescape(in); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

func TestRootIsMountPoint(t *testing.T) {
	ok, err := IsMountPoint("/")
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
}
