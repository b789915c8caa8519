package vassal

import (
	"fmt"
	"os/user"
	"strconv"

	"github.com/emperor-dev/emperor/vassalfile"
)

// ResolveCreds turns uid/gid/add-gid/no-initgroups into numbers, reading the
// host's user database (before any jail, so a rootfs needs no /etc/passwd).
// emperor check calls it too, so an unknown user is a config error and not a
// runtime surprise.
func ResolveCreds(s *vassalfile.Spec) (Creds, error) {
	if s.UID == "" && s.GID == "" && len(s.AddGIDs) == 0 {
		return Creds{}, nil
	}
	c := Creds{Set: true, UID: -1, GID: -1}
	var u *user.User
	if s.UID != "" {
		var err error
		u, err = lookupUser(s.UID)
		if err != nil {
			return Creds{}, &CredsError{Op: "uid", Arg: s.UID, Err: err}
		}
		c.UID, _ = strconv.Atoi(u.Uid)
	}
	switch {
	case s.GID != "":
		g, err := lookupGroup(s.GID)
		if err != nil {
			return Creds{}, &CredsError{Op: "gid", Arg: s.GID, Err: err}
		}
		c.GID = g
	case u != nil && u.Gid != "":
		c.GID, _ = strconv.Atoi(u.Gid)
	}
	if u != nil && !s.NoInitgroups && u.Username != "" {
		ids, err := u.GroupIds()
		if err == nil {
			for _, id := range ids {
				if n, err := strconv.Atoi(id); err == nil {
					c.Groups = appendUnique(c.Groups, n)
				}
			}
		}
	}
	for _, a := range s.AddGIDs {
		g, err := lookupGroup(a)
		if err != nil {
			return Creds{}, &CredsError{Op: "add-gid", Arg: a, Err: err}
		}
		c.Groups = appendUnique(c.Groups, g)
	}
	if c.UID < 0 {
		c.UID = 0
	}
	if c.GID < 0 {
		c.GID = 0
	}
	if c.Groups == nil {
		c.Groups = []int{}
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

// lookupUser accepts a name or a number; a number needs no passwd entry.
func lookupUser(v string) (*user.User, error) {
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return nil, fmt.Errorf("negative uid")
		}
		if u, err := user.LookupId(v); err == nil {
			return u, nil
		}
		return &user.User{Uid: v}, nil
	}
	u, err := user.Lookup(v)
	if err != nil {
		return nil, fmt.Errorf("no such user in the host's user database")
	}
	return u, nil
}

func lookupGroup(v string) (int, error) {
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0, fmt.Errorf("negative gid")
		}
		return n, nil
	}
	g, err := user.LookupGroup(v)
	if err != nil {
		return 0, fmt.Errorf("no such group in the host's group database")
	}
	return strconv.Atoi(g.Gid)
}
