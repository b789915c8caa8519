package vassal

import (
	"fmt"
	"net"
	"os"
)

// sockets binds, as root before the privilege drop (so that ports below
// 1024 work for an unprivileged vassal), every shared-socket, which the
// daemons inherit, and every http-socket, which the file server serves. They
// stay open across reloads, so connections queue in the backlog while
// daemons restart; a change of either needs a full restart (RestartReason).
type sockets struct {
	v      *vassal
	shared []*os.File
	http   []net.Listener
}

func (s *sockets) Start(c *config) error {
	for _, addr := range c.spec.SharedSockets {
		f, err := bindShared(addr)
		if err != nil {
			s.Stop()
			return err
		}
		s.shared = append(s.shared, f)
	}
	for _, addr := range c.spec.HTTPSockets {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			s.Stop()
			return fmt.Errorf("http-socket %s: %w", addr, err)
		}
		s.http = append(s.http, l)
	}
	return nil
}

func (s *sockets) Apply(old, new *config) error { return nil }

// Stop closes every socket. The file server has shut its listeners down
// already (it stops first); closing one twice is harmless.
func (s *sockets) Stop() {
	for _, f := range s.shared {
		f.Close()
	}
	for _, l := range s.http {
		l.Close()
	}
	s.shared, s.http = nil, nil
}
