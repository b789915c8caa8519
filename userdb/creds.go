package userdb

import (
	"errors"
	"fmt"
)

// Creds is who a vassal's processes run as after its privilege drop.
type Creds struct {
	UID, GID int
	Groups   []int
	Set      bool // false: stay as we are (root)
}

// Request is what a vassal file asks for: uid, gid, add-gid and
// no-initgroups, as written.
type Request struct {
	User         string
	Group        string
	AddGroups    []string
	NoInitgroups bool
}

// CredsError names the option whose value could not be resolved: "uid",
// "gid" or "add-gid", so a checker can point at its line.
type CredsError struct {
	Option string
	Value  string
	Err    error
}

func (e *CredsError) Error() string {
	reason := e.Err
	var le *Error
	if errors.As(e.Err, &le) && le.Value == e.Value {
		reason = le.Err // the option and value already say which user or group
	}
	return fmt.Sprintf("%s %s: %v", e.Option, e.Value, reason)
}
func (e *CredsError) Unwrap() error { return e.Err }

// Resolve turns a Request into numbers. gid defaults to the user's primary
// group; the user's supplementary groups are added unless NoInitgroups; a
// user or group left unset is 0 (root), as when nothing is dropped.
func Resolve(r Request) (Creds, error) {
	if r.User == "" && r.Group == "" && len(r.AddGroups) == 0 {
		return Creds{}, nil
	}
	c := Creds{Set: true, Groups: []int{}}
	var u User
	haveUser := false
	if r.User != "" {
		var err error
		u, err = LookupUser(r.User)
		if err != nil {
			return Creds{}, &CredsError{Option: "uid", Value: r.User, Err: err}
		}
		c.UID, haveUser = u.UID, true
	}
	switch {
	case r.Group != "":
		g, err := LookupGroup(r.Group)
		if err != nil {
			return Creds{}, &CredsError{Option: "gid", Value: r.Group, Err: err}
		}
		c.GID = g
	case haveUser && u.GID >= 0:
		c.GID = u.GID
	}
	if haveUser && !r.NoInitgroups {
		// As initgroups(3): a group database that cannot be read leaves the
		// user with no supplementary groups rather than failing the vassal.
		if gs, err := u.Groups(); err == nil {
			for _, g := range gs {
				c.Groups = appendUnique(c.Groups, g)
			}
		}
	}
	for _, a := range r.AddGroups {
		g, err := LookupGroup(a)
		if err != nil {
			return Creds{}, &CredsError{Option: "add-gid", Value: a, Err: err}
		}
		c.Groups = appendUnique(c.Groups, g)
	}
	return c, nil
}

func appendUnique(s []int, v int) []int {
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}

// Check looks up every user and group the request names and returns one
// CredsError per value that cannot be resolved, in the order uid, gid,
// add-gid: Resolve stops at the first, a checker reports them all at once.
func Check(r Request) []*CredsError {
	var out []*CredsError
	if r.User != "" {
		if _, err := LookupUser(r.User); err != nil {
			out = append(out, &CredsError{Option: "uid", Value: r.User, Err: err})
		}
	}
	if r.Group != "" {
		if _, err := LookupGroup(r.Group); err != nil {
			out = append(out, &CredsError{Option: "gid", Value: r.Group, Err: err})
		}
	}
	seen := map[string]bool{}
	for _, a := range r.AddGroups {
		if seen[a] {
			continue
		}
		seen[a] = true
		if _, err := LookupGroup(a); err != nil {
			out = append(out, &CredsError{Option: "add-gid", Value: a, Err: err})
		}
	}
	return out
}
