//go:build !nogluster && cgo

package vassalfile

// glusterBuilt: the binary links libgfapi (see package gfapi).
const glusterBuilt = true
