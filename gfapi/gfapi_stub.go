//go:build nogluster || !cgo

package gfapi

import (
	"errors"
	"time"
)

// Available is false: this binary was built with -tags nogluster.
const Available = false

// ErrNotBuilt is what every call returns without libgfapi.
var ErrNotBuilt = errors.New("this emperor was built without GlusterFS support (-tags nogluster)")

// ErrClosed is returned by calls on a volume after Fini.
var ErrClosed = errors.New("gfapi: volume is closed")

// Stat mirrors the cgo build's type.
type Stat struct {
	Dev, Ino uint64
	Mode     uint32
	Nlink    uint64
	UID, GID uint32
	Size     int64
	ModTime  time.Time
}

func (s Stat) IsDir() bool     { return s.Mode&0o170000 == 0o040000 }
func (s Stat) IsRegular() bool { return s.Mode&0o170000 == 0o100000 }

// Volume cannot exist without libgfapi.
type Volume struct{}

// File cannot exist without libgfapi.
type File struct{}

// DirEntry mirrors the cgo build's type.
type DirEntry struct {
	Name string
	Stat Stat
}

func New(string) (*Volume, error)                          { return nil, ErrNotBuilt }
func (*Volume) SetVolfileServer(string, string, int) error { return ErrNotBuilt }
func (*Volume) SetVolfile(string) error                    { return ErrNotBuilt }
func (*Volume) SetLoggingFD(int, int) error                { return ErrNotBuilt }
func (*Volume) Init() error                                { return ErrNotBuilt }
func (*Volume) Fini() error                                { return nil }
func (*Volume) Stat(string) (Stat, error)                  { return Stat{}, ErrNotBuilt }
func (*Volume) Open(string) (*File, error)                 { return nil, ErrNotBuilt }
func (*Volume) ReadDir(string, int) ([]DirEntry, error)    { return nil, ErrNotBuilt }
func (*File) Stat() (Stat, error)                          { return Stat{}, ErrNotBuilt }
func (*File) ReadAt([]byte, int64) (int, error)            { return 0, ErrNotBuilt }
func (*File) Close() error                                 { return nil }
