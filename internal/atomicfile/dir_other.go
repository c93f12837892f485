//go:build !linux

package atomicfile

import (
	"errors"
	"io/fs"
	"os"
)

// fastDir would hold a root's directory open for creates by openat2(2);
// without it, every create takes Create's path.
type fastDir struct{}

func (*fastDir) init(*os.Root) {}
func (*fastDir) close() error  { return nil }

func (*fastDir) create(*os.Root, string, string, string, fs.FileMode, *Options) (*File, bool) {
	return nil, false
}

func (*fastDir) call(op func() error) error { return op() }

func (*fastDir) open(string) (*os.File, fs.FileInfo, bool) { return nil, nil, false }

// fastCommit and fastAbort are never called here: no File has a dir.
func (f *File) fastCommit(error, bool) error { return errors.ErrUnsupported }
func (f *File) fastAbort(error) error        { return errors.ErrUnsupported }
