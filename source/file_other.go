//go:build !linux

package source

import (
	"io"
	"io/fs"
	"os"
	"syscall"
)

// openRegular opens the regular file p for reading: it looks first, so that
// a device is never opened, and opens non-blocking, for a file swapped for
// a FIFO in between. A file that is not regular is reported with its
// FileInfo and errNotRegular.
func openRegular(p string) (io.ReadCloser, fs.FileInfo, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fi, errNotRegular
	}
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, err
	}
	return f, nil, nil
}
