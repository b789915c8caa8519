// Package userdb resolves users and groups, given by name or by number, in
// the host's user database (os/user: /etc/passwd and /etc/group, or NSS
// when built with cgo). It is the one resolver of the project: the vassal
// uses it for uid/gid/add-gid before its jail, the emperor to check a vassal
// file before it spawns it, and the chown hook for its owner and group.
package userdb

import (
	"errors"
	"fmt"
	"os/user"
	"strconv"
	"strings"
)

// MaxID is the largest usable uid or gid. IDs are 32 bits, and (uid_t)-1
// means "leave unchanged" to chown(2) and setresuid(2), so it cannot name
// anyone.
const MaxID = 1<<32 - 2

// ErrNegative and ErrRange reject numbers that name no user or group.
var (
	ErrNegative = errors.New("negative id")
	ErrRange    = fmt.Errorf("id out of range (0 to %d)", MaxID)
)

// Error is a user or group that could not be resolved.
type Error struct {
	Kind  string // "user" or "group"
	Value string
	Err   error
}

func (e *Error) Error() string { return fmt.Sprintf("%s %q: %v", e.Kind, e.Value, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// ParseID reads v as a numeric id. ok is false when v is not a number (a
// name); err is set for a number that is negative or out of range.
func ParseID(v string) (id int, ok bool, err error) {
	digits := strings.TrimPrefix(strings.TrimPrefix(v, "-"), "+")
	if digits == "" || strings.TrimLeft(digits, "0123456789") != "" {
		return 0, false, nil
	}
	if strings.HasPrefix(v, "-") {
		return 0, true, ErrNegative
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || n > MaxID {
		return 0, true, ErrRange
	}
	return int(n), true, nil
}

// User is a resolved user.
type User struct {
	Name string // empty for a number with no entry in the database
	UID  int
	// GID is the primary group; -1 for a number with no database entry.
	GID int
	u   *user.User
}

// LookupUser resolves a user name or number. A number needs no entry in
// the database.
func LookupUser(v string) (User, error) {
	id, isNum, err := ParseID(v)
	if err != nil {
		return User{}, &Error{Kind: "user", Value: v, Err: err}
	}
	var u *user.User
	if isNum {
		u, err = user.LookupId(strconv.Itoa(id))
		if err != nil {
			return User{UID: id, GID: -1}, nil
		}
	} else {
		u, err = user.Lookup(v)
		if err != nil {
			return User{}, &Error{Kind: "user", Value: v, Err: errors.New("no such user in the host's user database")}
		}
	}
	return fromDB(u, v)
}

func fromDB(u *user.User, v string) (User, error) {
	uid, _, err := ParseID(u.Uid)
	if err != nil {
		return User{}, &Error{Kind: "user", Value: v, Err: fmt.Errorf("the database gives uid %s: %w", u.Uid, err)}
	}
	out := User{Name: u.Username, UID: uid, GID: -1, u: u}
	if u.Gid != "" {
		gid, isNum, err := ParseID(u.Gid)
		if err != nil || !isNum {
			return User{}, &Error{Kind: "user", Value: v, Err: fmt.Errorf("the database gives primary gid %s: %v", u.Gid, err)}
		}
		out.GID = gid
	}
	return out, nil
}

// Groups lists the user's supplementary groups from the group database
// (what initgroups(3) would set). A user known only by number has none.
func (u User) Groups() ([]int, error) {
	if u.u == nil || u.Name == "" {
		return nil, nil
	}
	ids, err := u.u.GroupIds()
	if err != nil {
		return nil, &Error{Kind: "user", Value: u.Name, Err: fmt.Errorf("supplementary groups: %w", err)}
	}
	var out []int
	for _, s := range ids {
		if id, isNum, err := ParseID(s); err == nil && isNum {
			out = append(out, id)
		}
	}
	return out, nil
}

// LookupGroup resolves a group name or number to a gid. A number needs no
// entry in the database.
func LookupGroup(v string) (int, error) {
	id, isNum, err := ParseID(v)
	if err != nil {
		return 0, &Error{Kind: "group", Value: v, Err: err}
	}
	if isNum {
		return id, nil
	}
	g, err := user.LookupGroup(v)
	if err != nil {
		return 0, &Error{Kind: "group", Value: v, Err: errors.New("no such group in the host's group database")}
	}
	gid, isNum, err := ParseID(g.Gid)
	if err != nil || !isNum {
		return 0, &Error{Kind: "group", Value: v, Err: fmt.Errorf("the database gives gid %s: %v", g.Gid, err)}
	}
	return gid, nil
}

// LookupUID resolves a user name or number to a uid.
func LookupUID(v string) (int, error) {
	u, err := LookupUser(v)
	if err != nil {
		return 0, err
	}
	return u.UID, nil
}
