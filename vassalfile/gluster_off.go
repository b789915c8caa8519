//go:build nogluster || !cgo

package vassalfile

// glusterBuilt: built with -tags nogluster, glusterfs-mount is an error.
const glusterBuilt = false
