//go:build !linux

package source

import (
	"io"
	"io/fs"
	"os"
	"syscall"
)

// openRegular opens the regular file p for reading: non-blocking, so that a
// FIFO does not wait for a writer, then a look at what was opened. A file
// that is not regular is closed and reported with its FileInfo and
// errNotRegular.
func openRegular(p string) (io.ReadCloser, fs.FileInfo, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fi, errNotRegular
	}
	return f, nil, nil
}
