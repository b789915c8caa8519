// Command emperor runs per-tenant vassals from a directory of uWSGI-style
// vassal files. This file stays thin: the logic lives in the libraries.
package main

import (
	"fmt"
	"os"

	"github.com/emperor-dev/emperor/cloexec"
	"github.com/emperor-dev/emperor/reexec"
	"github.com/emperor-dev/emperor/vassal"
)

func main() {
	// Before anything else, for every entry point: nothing we inherited may
	// reach a vassal or its tenants.
	if err := cloexec.AboveStderr(); err != nil {
		fmt.Fprintln(os.Stderr, "emperor: inherited descriptors:", err)
		os.Exit(1)
	}
	// A re-executed vassal skips the CLI entirely: it is PID 1 of a new
	// namespace and must set up its mounts before anything else runs.
	if len(os.Args) > 1 && os.Args[1] == reexec.InitCommand {
		os.Exit(vassal.Main(os.Args[2:]))
	}
	os.Exit(execute(os.Args[1:]))
}
