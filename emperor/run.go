package emperor

import (
	"context"
	"fmt"
	"os"
)

// RunOne runs the vassal of one file in the foreground, without a vassal
// directory or control socket: `emperor run`, for debugging. A receive on
// reload re-reads the file and reloads the vassal in place. It returns nil
// when ctx ends (after stopping the vassal with mercy), and an error saying
// why when the vassal dies: it is not restarted, so its failure stays on
// screen.
func RunOne(ctx context.Context, cfg Config, path string, reload <-chan struct{}) error {
	cfg.normalize()
	v, err := LoadVassal(path)
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find our own binary to re-execute as vassal init: %w", err)
	}
	s := newSupervisor(v.Name, path, &cfg, exe, true)
	go s.run()
	s.post(cmdUpdate{v})
	for {
		select {
		case <-ctx.Done():
			s.post(cmdStop{})
			<-s.done
			return nil
		case <-reload:
			nv, err := LoadVassal(path)
			if err != nil {
				s.post(cmdBroken{err})
				continue
			}
			s.post(cmdUpdate{nv})
		case <-s.done:
			return s.err
		}
	}
}
