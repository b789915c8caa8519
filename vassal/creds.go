package vassal

// credentials drops PID 1 to the vassal's user and groups (uid, gid,
// add-gid, no-initgroups), resolved in the host's user database when the
// file was loaded, before the jail could hide it. It happens once, after
// every root phase: a change needs a full restart (RestartReason), and a
// drop is for good.
type credentials struct{}

func (*credentials) Start(c *config) error        { return dropPrivileges(c.creds) }
func (*credentials) Apply(old, new *config) error { return nil }
func (*credentials) Stop()                        {}
