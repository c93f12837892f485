package source

import (
	"io"
	"io/fs"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// openRegular opens the regular file p for reading. It looks first and
// opens only a regular file, so that a device (a tape, a watchdog) is never
// opened and a FIFO never waited on; the open is non-blocking as well, for
// a file swapped for a FIFO in between (reading a regular file is not
// affected). A file that is not regular is reported with its FileInfo and
// errNotRegular. The file is read and closed by plain system calls,
// without the runtime's poller (which takes no regular files) or an
// os.File; like any io.ReadCloser, it must be closed.
func openRegular(p string) (io.ReadCloser, fs.FileInfo, error) {
	var st unix.Stat_t
	if err := ignoringEINTR(func() error { return unix.Stat(p, &st) }); err != nil {
		return nil, nil, &fs.PathError{Op: "stat", Path: p, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		fi, err := os.Stat(p) // to say what it is
		if err != nil {
			return nil, nil, err
		}
		return nil, fi, errNotRegular
	}
	var fd int
	err := ignoringEINTR(func() error {
		var err error
		fd, err = unix.Open(p, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
		return err
	})
	if err != nil {
		return nil, nil, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	return &fdFile{fd: fd, path: p}, nil, nil
}

// ignoringEINTR calls f until it is not interrupted.
func ignoringEINTR(f func() error) error {
	for {
		if err := f(); err != unix.EINTR {
			return err
		}
	}
}

// fdFile is an open regular file. Close may be called concurrently with
// Read, and never waits: with a read in progress (on a stuck network file
// system, say), the descriptor is closed when that read returns, so that
// a read never meets a descriptor number that was closed and reused.
type fdFile struct {
	path string

	mu      sync.Mutex // guards what follows
	fd      int
	reading int  // reads in progress
	closed  bool // Close was called; fd is closed once reading is 0
}

func (f *fdFile) Read(p []byte) (int, error) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return 0, &fs.PathError{Op: "read", Path: f.path, Err: fs.ErrClosed}
	}
	f.reading++
	fd := f.fd
	f.mu.Unlock()
	n, err := readFD(fd, p)
	f.mu.Lock()
	f.reading--
	if f.closed && f.reading == 0 {
		unix.Close(f.fd)
	}
	f.mu.Unlock()
	if err != nil && err != io.EOF {
		err = &fs.PathError{Op: "read", Path: f.path, Err: err}
	}
	return n, err
}

// readFD reads fd into p, io.EOF at the end.
func readFD(fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		n, err := unix.Read(fd, p)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return 0, err
		case n == 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

func (f *fdFile) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return &fs.PathError{Op: "close", Path: f.path, Err: fs.ErrClosed}
	}
	f.closed = true
	if f.reading > 0 {
		return nil // the last read closes it
	}
	if err := unix.Close(f.fd); err != nil {
		return &fs.PathError{Op: "close", Path: f.path, Err: err}
	}
	return nil
}
