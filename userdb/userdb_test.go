package userdb

import (
	"errors"
	"os/user"
	"strconv"
	"strings"
	"testing"
)

func TestParseID(t *testing.T) {
	for _, c := range []struct {
		in    string
		id    int
		isNum bool
		err   error
	}{
		{"0", 0, true, nil},
		{"1000", 1000, true, nil},
		{"+7", 7, true, nil},
		{"4294967294", MaxID, true, nil},
		{"4294967295", 0, true, ErrRange},
		{"99999999999999999999999", 0, true, ErrRange},
		{"-1", 0, true, ErrNegative},
		{"-", 0, false, nil},
		{"nobody", 0, false, nil},
		{"12ab", 0, false, nil},
		{"", 0, false, nil},
	} {
		id, isNum, err := ParseID(c.in)
		if id != c.id || isNum != c.isNum || !errors.Is(err, c.err) {
			t.Errorf("%q: got %d %v %v, want %d %v %v", c.in, id, isNum, err, c.id, c.isNum, c.err)
		}
	}
}

func TestLookupRejectsBadNumbers(t *testing.T) {
	for _, v := range []string{"-1", "-5", "4294967295"} {
		if _, err := LookupUser(v); err == nil {
			t.Errorf("user %s accepted", v)
		}
		if _, err := LookupGroup(v); err == nil {
			t.Errorf("group %s accepted", v)
		}
	}
	var e *Error
	if _, err := LookupGroup("-1"); !errors.As(err, &e) || e.Kind != "group" || !errors.Is(err, ErrNegative) {
		t.Fatalf("%v", err)
	}
}

func TestLookupNamesAndNumbers(t *testing.T) {
	root, err := user.LookupId("0")
	if err != nil {
		t.Skip("no user 0 in this database")
	}
	u, err := LookupUser(root.Username)
	if err != nil || u.UID != 0 || u.Name != root.Username {
		t.Fatalf("%+v %v", u, err)
	}
	// A number needs no entry.
	u, err = LookupUser("4000000000")
	if err != nil || u.UID != 4000000000 || u.GID != -1 {
		t.Fatalf("%+v %v", u, err)
	}
	if _, err := LookupUser("no-such-user-here"); err == nil {
		t.Fatal("unknown user accepted")
	}
	if _, err := LookupGroup("no-such-group-here"); err == nil {
		t.Fatal("unknown group accepted")
	}
	if g, err := LookupGroup("123"); err != nil || g != 123 {
		t.Fatal(g, err)
	}
}

func TestResolve(t *testing.T) {
	if c, err := Resolve(Request{}); err != nil || c.Set {
		t.Fatalf("%+v %v", c, err)
	}
	c, err := Resolve(Request{User: "4000000001", AddGroups: []string{"5", "5", "6"}})
	if err != nil || !c.Set || c.UID != 4000000001 || c.GID != 0 || len(c.Groups) != 2 {
		t.Fatalf("%+v %v", c, err)
	}
	me, err := user.Current()
	if err == nil && me.Username != "" {
		c, err := Resolve(Request{User: me.Username})
		gid, _ := strconv.Atoi(me.Gid)
		if err != nil || c.GID != gid {
			t.Fatalf("%+v %v (want the primary group %d)", c, err, gid)
		}
	}
	var ce *CredsError
	if _, err := Resolve(Request{User: "0", AddGroups: []string{"-3"}}); !errors.As(err, &ce) || ce.Option != "add-gid" || ce.Value != "-3" {
		t.Fatalf("%v", err)
	}
	if _, err := Resolve(Request{Group: "no-such-group-here"}); !errors.As(err, &ce) || ce.Option != "gid" {
		t.Fatalf("%v", err)
	}
}

// TestCheckReportsEveryName: Check reports every user and group it cannot
// resolve, where Resolve stops at the first.
func TestCheckReportsEveryName(t *testing.T) {
	got := Check(Request{User: "no-such-user-here", Group: "no-such-group-here", AddGroups: []string{"0", "no-such-group-2", "-1", "no-such-group-2"}})
	var s []string
	for _, e := range got {
		s = append(s, e.Option+" "+e.Value)
	}
	want := "uid no-such-user-here, gid no-such-group-here, add-gid no-such-group-2, add-gid -1"
	if strings.Join(s, ", ") != want {
		t.Fatalf("got %q, want %q", strings.Join(s, ", "), want)
	}
	if got := Check(Request{User: "0", Group: "0"}); len(got) != 0 {
		t.Fatalf("root: %v", got)
	}
}
