package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emperor-dev/emperor/control"
)

func TestCheckPrintsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.ini")
	good := filepath.Join(dir, "good.ini")
	os.WriteFile(bad, []byte("[uwsgi]\nattach-deamon = x\nthreads = many\nuid = no-such-user-here\nif-reload =\n"), 0o644)
	os.WriteFile(good, []byte("[uwsgi]\nplugin = psgi\nattach-daemon = sleep 1\n"), 0o644)
	var out bytes.Buffer
	root := newRoot(&out, &out)
	root.SetArgs([]string{"check", bad, good})
	err := root.Execute()
	if ee, ok := err.(exitError); !ok || ee.code != 1 {
		t.Fatalf("err %v", err)
	}
	s := out.String()
	for _, want := range []string{bad + ":2: unknown option", bad + ":3: threads:", bad + ":5: if-reload opened here is never closed", good + ":2: warning: plugin"} {
		if !strings.Contains(s, want) {
			t.Errorf("missing %q in:\n%s", want, s)
		}
	}
	out.Reset()
	root = newRoot(&out, &out)
	os.WriteFile(bad, []byte("[uwsgi]\nuid = no-such-user-here\n"), 0o644)
	root.SetArgs([]string{"check", bad})
	if err := root.Execute(); err == nil || !strings.Contains(out.String(), bad+":2: uid no-such-user-here") {
		t.Fatalf("%v %s", err, out.String())
	}
	out.Reset()
	root = newRoot(&out, &out)
	root.SetArgs([]string{"check", good})
	if err := root.Execute(); err != nil {
		t.Fatalf("good file: %v\n%s", err, out.String())
	}
}

func TestStatusTable(t *testing.T) {
	now := time.Now()
	var out bytes.Buffer
	printStatus(&out, &control.Response{Vassals: []control.VassalStatus{
		{Name: "a", State: "running", PID: 42, StartedAt: now.Add(-90 * time.Second), Restarts: 2, LastExit: "killed by killed"},
		{Name: "b", State: "backoff", NextAttempt: now.Add(2 * time.Second), Restarts: 3, Failures: 6.25},
		{Name: "c", State: "failed-config", ConfigError: "/v/c.ini:3: unknown option"},
		{Name: "d", State: "running", PID: 7, StartedAt: now, Mounts: []control.MountStatus{{Prefix: "/", Kind: "glusterfs", Source: "vol1", State: "connecting"}}},
		{Name: "e", State: "running", PID: 8, StartedAt: now, Reads: []string{"/etc/uwsgi/base.ini:web", "/srv/key"}},
	}}, now)
	s := out.String()
	for _, want := range []string{"\ne reads /etc/uwsgi/base.ini:web, /srv/key\n", "NAME", "a     running", "42", "1m30s", "backoff (next in 2s)", "FAILURES", "3         6.2", "config: /v/c.ini:3: unknown option", "/=glusterfs:vol1 connecting"} {
		if !strings.Contains(s, want) {
			t.Errorf("missing %q in\n%s", want, s)
		}
	}
}

// docs/options.md is generated; it must match what the parser accepts.
func TestOptionsDocIsCurrent(t *testing.T) {
	var out bytes.Buffer
	root := newRoot(&out, &out)
	root.SetArgs([]string{"options", "--markdown"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"../../docs/options.md", "../../README.md"} {
		doc, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(doc), out.String()) {
			t.Fatalf("%s is stale: run make docs", f)
		}
	}
}

// Every example vassal file passes emperor check (with its users pointed at
// one that exists here).
func TestExamplesCheck(t *testing.T) {
	for _, k := range []string{"ZIPAPP_USER", "ZIPAPP_GROUP", "COW_USER", "COW_GROUP"} {
		t.Setenv(k, "root")
	}
	files, _ := filepath.Glob("../../examples/*.ini")
	if len(files) < 4 {
		t.Fatalf("examples: %v", files)
	}
	for _, f := range files {
		if filepath.Base(f) == "emperor.ini" {
			continue
		}
		for _, d := range checkFile(f) {
			if !d.Warning {
				t.Errorf("%s", d)
			}
		}
	}
}

// emperor reload talks to the control socket and says how many vassals it
// reached; a refusal is an error with the emperor's reason.
func TestReloadCommand(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conn := control.NewConn(c)
			var req control.Request
			conn.Recv(&req)
			if req.Name == "nosuch" {
				conn.Send(control.Response{Error: `no vassal named "nosuch"`})
			} else {
				conn.Send(control.Response{OK: true, Reloaded: 3})
			}
			c.Close()
		}
	}()
	var out bytes.Buffer
	root := newRoot(&out, &out)
	root.SetArgs([]string{"reload", "--control", path})
	if err := root.Execute(); err != nil || !strings.Contains(out.String(), "reloading 3 vassal(s)") {
		t.Fatalf("%v %q", err, out.String())
	}
	root = newRoot(&out, &out)
	root.SetArgs([]string{"reload", "nosuch", "--control", path})
	if err := root.Execute(); err == nil || !strings.Contains(err.Error(), `no vassal named "nosuch"`) {
		t.Fatal(err)
	}
}
