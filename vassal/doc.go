// Package vassal is the PID-1 side of a vassal: the process the emperor
// re-executes into new namespaces (the contract is package reexec). When it
// exits it takes the whole namespace with it.
//
//   - bootstrap.go is what makes it a PID 1: the start message, the mount
//     propagation and /proc of its namespaces, signals, the reaper
//     (reaper.go) and the loop that turns signals and the emperor's messages
//     into starts, reloads and stops.
//   - components.go lists what a vassal is made of (hooks, jail, sockets,
//     credentials, chdir, the file server, daemons, mountpoint-check), each
//     in a file of its own.
//   - lifecycle.go drives the components: start in order, reload applied in
//     order and rolled back when a component refuses it, stop in reverse.
package vassal
