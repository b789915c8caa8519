package vassalfile

import "github.com/emperor-dev/emperor/userdb"

// CredsRequest is what the file asks the privilege drop for (uid, gid,
// add-gid, no-initgroups), to be resolved with userdb.Resolve.
func (s *Spec) CredsRequest() userdb.Request {
	return userdb.Request{User: s.UID, Group: s.GID, AddGroups: s.AddGIDs, NoInitgroups: s.NoInitgroups}
}
