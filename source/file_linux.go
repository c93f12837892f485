package source

import (
	"io"
	"io/fs"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// openRegular opens the regular file p for reading: one open, non-blocking
// so that a FIFO does not wait for a writer (reading a regular file is not
// affected), then a look at what was opened. A file that is not regular is
// closed and reported with its FileInfo and errNotRegular. The file is
// read and closed by plain system calls, without the runtime's poller
// (which takes no regular files) or an os.File.
func openRegular(p string) (io.ReadCloser, fs.FileInfo, error) {
	var fd int
	var err error
	for {
		fd, err = unix.Open(p, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return nil, nil, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, nil, &fs.PathError{Op: "stat", Path: p, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		fi, err := os.Stat(p) // to say what it is
		if err != nil {
			return nil, nil, err
		}
		return nil, fi, errNotRegular
	}
	return &fdFile{fd: fd, path: p}, nil, nil
}

// fdFile is an open regular file. Close may be called concurrently with
// Read: it waits for a read in progress (of a regular file: short), so that
// a read never meets a descriptor number that was closed and reused.
type fdFile struct {
	path string
	mu   sync.Mutex // held while fd is used
	fd   int        // -1 once closed
}

func (f *fdFile) Read(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fd < 0 {
		return 0, &fs.PathError{Op: "read", Path: f.path, Err: fs.ErrClosed}
	}
	if len(p) == 0 {
		return 0, nil
	}
	for {
		n, err := unix.Read(f.fd, p)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return 0, &fs.PathError{Op: "read", Path: f.path, Err: err}
		case n == 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

func (f *fdFile) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fd < 0 {
		return &fs.PathError{Op: "close", Path: f.path, Err: fs.ErrClosed}
	}
	err := unix.Close(f.fd)
	f.fd = -1
	if err != nil {
		return &fs.PathError{Op: "close", Path: f.path, Err: err}
	}
	return nil
}
