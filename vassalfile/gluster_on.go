//go:build !nogluster

package vassalfile

// glusterBuilt: the binary links libgfapi (see package gfapi).
const glusterBuilt = true
