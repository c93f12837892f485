package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

const attrsKept = true

func setAttr(f *os.File, name, value string) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.Fsetxattr(int(fd), name, []byte(value), 0)
	}); err != nil {
		return err
	}
	if serr != nil {
		return &os.PathError{Op: "setxattr", Path: f.Name(), Err: serr}
	}
	return nil
}

func getAttr(f *os.File, name string) (string, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return "", err
	}
	buf := make([]byte, maxAttr)
	var (
		n    int
		gerr error
	)
	if err := rc.Control(func(fd uintptr) {
		n, gerr = unix.Fgetxattr(int(fd), name, buf)
	}); err != nil {
		return "", err
	}
	switch {
	case errors.Is(gerr, unix.ENODATA), errors.Is(gerr, unix.ERANGE):
		return "", nil // none, or not one of ours
	case gerr != nil:
		return "", &os.PathError{Op: "getxattr", Path: f.Name(), Err: gerr}
	}
	return string(buf[:n]), nil
}

// openNoFollow opens name for reading: its directory through root, its
// last element with openat(2), O_NOFOLLOW (a link there is ELOOP) and
// O_NONBLOCK (a FIFO does not block the open).
func openNoFollow(root *os.Root, name string) (*os.File, error) {
	dir, base := path.Split(name)
	if dir == "" {
		dir = "."
	}
	if base == "" {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	d, err := root.OpenFile(filepath.FromSlash(dir), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	rc, err := d.SyscallConn()
	if err != nil {
		return nil, err
	}
	fd, oerr := -1, error(nil)
	if err := rc.Control(func(dfd uintptr) {
		for {
			fd, oerr = syscall.Openat(int(dfd), base, syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
			if oerr != syscall.EINTR {
				return
			}
		}
	}); err != nil {
		return nil, err
	}
	if oerr != nil {
		return nil, &fs.PathError{Op: "openat", Path: name, Err: oerr}
	}
	return os.NewFile(uintptr(fd), name), nil
}
