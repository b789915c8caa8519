package reexec

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestNamespacesText(t *testing.T) {
	if DefaultNamespaces.String() != "fs,pid" {
		t.Fatal(DefaultNamespaces.String())
	}
	for _, ns := range []Namespaces{0, NSMount, NSPID, DefaultNamespaces, NSMount | NSPID | NSUTS | NSIPC | NSNet, NSNet} {
		b, err := json.Marshal(struct {
			NS Namespaces `json:"ns"`
		}{ns})
		if err != nil {
			t.Fatal(err)
		}
		var back struct {
			NS Namespaces `json:"ns"`
		}
		if err := json.Unmarshal(b, &back); err != nil || back.NS != ns {
			t.Fatalf("%v: %s -> %v, %v", ns, b, back.NS, err)
		}
	}
	var n Namespaces
	if err := n.UnmarshalText([]byte("fs,user")); err == nil {
		t.Fatal("an unknown namespace was accepted")
	}
	for name, want := range map[string]Namespaces{"fs": NSMount, "MNT": NSMount, "ns": NSMount, "mount": NSMount, "pid": NSPID, "net": NSNet} {
		if got, ok := NamespaceNamed(name); !ok || got != want {
			t.Errorf("%s: %v %v", name, got, ok)
		}
	}
	if _, ok := NamespaceNamed("user"); ok {
		t.Error("user namespace named")
	}
}

func TestCloneFlags(t *testing.T) {
	if f := (NSMount | NSPID).CloneFlags(); f != unix.CLONE_NEWNS|unix.CLONE_NEWPID {
		t.Fatalf("%#x", f)
	}
	if f := Namespaces(0).CloneFlags(); f != 0 {
		t.Fatalf("%#x", f)
	}
}

func TestArgvCarriesOnlyTheName(t *testing.T) {
	a := Argv("/usr/bin/emperor", "app")
	if len(a) != 3 || a[1] != InitCommand || a[2] != "app" {
		t.Fatal(a)
	}
}

func TestDescribeStatus(t *testing.T) {
	if s := DescribeStatus(unix.WaitStatus(3 << 8)); s != "exit status 3" {
		t.Fatal(s)
	}
	if s := DescribeStatus(unix.WaitStatus(unix.SIGKILL)); s != "killed by killed" {
		t.Fatal(s)
	}
}

func TestLogFormat(t *testing.T) {
	for in, want := range map[string]LogFormat{"": LogText, "text": LogText, "json": LogJSON} {
		if f, err := ParseLogFormat(in); err != nil || f != want {
			t.Errorf("%q: %v %v", in, f, err)
		}
	}
	if _, err := ParseLogFormat("xml"); err == nil {
		t.Error("xml accepted")
	}
	var b strings.Builder
	slog.New(LogJSON.Handler(&b)).Info("hi", "vassal", "v")
	var m map[string]any
	if err := json.Unmarshal([]byte(b.String()), &m); err != nil || m["msg"] != "hi" || m["vassal"] != "v" {
		t.Fatalf("%q: %v", b.String(), err)
	}
}
