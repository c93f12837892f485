package transport

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// openConfined opens rel, a clean relative path, inside root: its
// directory through the os.Root (links that stay inside it are followed,
// others refused), its last element with openat(2) and O_NOFOLLOW, so
// that a symbolic link there is refused (ELOOP) rather than followed, and
// O_NONBLOCK, so that a FIFO cannot block the open.
func openConfined(root *os.Root, rel string) (*os.File, error) {
	dir, base := filepath.Split(rel)
	if dir == "" {
		dir = "."
	}
	if base == "" || base == "." || base == ".." {
		// The root itself: open it, and let fstat refuse a directory.
		return root.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	}
	d, err := root.OpenFile(dir, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	rc, err := d.SyscallConn()
	if err != nil {
		return nil, err
	}
	fd, oerr := -1, error(nil)
	err = rc.Control(func(dfd uintptr) {
		for {
			fd, oerr = syscall.Openat(int(dfd), base, syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
			if oerr != syscall.EINTR {
				return
			}
		}
	})
	if err == nil {
		err = oerr
	}
	if err != nil {
		return nil, &fs.PathError{Op: "openat", Path: rel, Err: err}
	}
	return os.NewFile(uintptr(fd), rel), nil
}

// fdPath returns a path that names f itself, /proc/<pid>/fd/<n>: opening
// it opens the same file, whatever its name leads to now, from this
// process and from the processes it starts (which /proc/self would not
// do), for as long as f is open.
func fdPath(f *os.File) string {
	rc, err := f.SyscallConn()
	if err != nil {
		return ""
	}
	var p string
	rc.Control(func(fd uintptr) { p = fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), fd) })
	return p
}
