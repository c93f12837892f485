package atomicfile

import (
	"io/fs"
	"os"
	"path"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// fastDir is a root's directory held open for creates by openat2(2).
type fastDir struct {
	f       *os.File        // nil: no fast path
	rc      syscall.RawConn // f's, for its descriptor, held while in use
	creates atomic.Int64    // files created by the fast path, for tests
}

// beneath is how the fast path resolves a name: beneath the root however
// it is reached, and through no link of any kind.
const beneath = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS

// init holds root's directory open, if the kernel has a usable openat2:
// one probe decides for the Dir's lifetime (ENOSYS on an old kernel, EPERM
// in a sandbox, EINVAL or E2BIG from one that knows none of the flags), so
// that no one name's error turns the fast path off.
func (d *fastDir) init(root *os.Root) {
	f, err := root.Open(".")
	if err != nil {
		return
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return
	}
	probe := error(unix.EBADF)
	rc.Control(func(fd uintptr) {
		how := unix.OpenHow{Flags: unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: beneath}
		var pfd int
		for {
			pfd, probe = unix.Openat2(int(fd), ".", &how)
			if probe != unix.EINTR {
				break
			}
		}
		if probe == nil {
			unix.Close(pfd)
		}
	})
	if probe != nil {
		f.Close()
		return
	}
	d.f, d.rc = f, rc
}

// call runs op with the root's directory held open, so that Close, which
// waits for no one, still keeps what follows it out: once the Dir is
// closed, op is not run and the error is os.ErrClosed, as the root's once
// it is closed.
func (d *fastDir) call(op func() error) error {
	var err error
	if cerr := d.rc.Control(func(uintptr) { err = op() }); cerr != nil {
		return os.ErrClosed
	}
	return err
}

func (d *fastDir) close() error {
	if d.f == nil {
		return nil
	}
	return d.f.Close()
}

// create creates the temporary file of name (whose directory is dir and
// base name base, as checked by splitName) in two system calls: an
// openat2 of dir beneath the root, through no link of any kind, and an
// openat of the temporary file in it (O_EXCL, O_NOFOLLOW). ok is false
// when this cannot answer for certain: no openat2, a link on the way,
// dir missing (Create makes it) or not a directory, any error; the caller
// then takes Create's path, which gives the exact result or error.
func (d *fastDir) create(root *os.Root, name, dir, base string, perm fs.FileMode, opts *Options) (f *File, ok bool) {
	if d.f == nil {
		return nil, false
	}
	dirName := dir
	if dirName == "" {
		dirName = "."
	}
	how := unix.OpenHow{Flags: unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: beneath}
	dfd, oerr := -1, error(nil)
	if err := d.rc.Control(func(fd uintptr) {
		for {
			dfd, oerr = unix.Openat2(int(fd), dirName, &how)
			if oerr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return nil, false // closed
	}
	if oerr != nil {
		return nil, false // a link on the way, a directory to make, ...: Create's path tells
	}
	for range createAttempts {
		tmpBase := TempPrefix + randomSuffix()
		tfd, err := unix.Openat(dfd, tmpBase, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC|unix.O_NOFOLLOW, fileMode(perm))
		switch {
		case err == unix.EINTR, err == unix.EEXIST:
			continue // the random name was taken: another
		case err != nil:
			unix.Close(dfd)
			return nil, false
		}
		tmp := path.Join(dir, tmpBase)
		d.creates.Add(1)
		return &File{
			root: root,
			f:    os.NewFile(uintptr(tfd), tmp),
			name: name,
			tmp:  tmp,
			sync: opts.sync(),
			dir:  os.NewFile(uintptr(dfd), dirName),
			fast: d,
		}, true
	}
	unix.Close(dfd)
	return nil, false
}

// open is Dir.OpenNoFollow.
func (d *fastDir) open(name string) (*os.File, fs.FileInfo, bool) {
	if d.f == nil {
		return nil, nil, false
	}
	how := unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_NOCTTY,
		Resolve: beneath,
	}
	fd, oerr := -1, error(nil)
	if err := d.rc.Control(func(dfd uintptr) {
		for {
			fd, oerr = unix.Openat2(int(dfd), name, &how)
			if oerr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return nil, nil, false
	}
	if oerr != nil {
		return nil, nil, false
	}
	f := os.NewFile(uintptr(fd), name)
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, false
	}
	return f, fi, true
}

// fileMode is perm as open(2) takes it, as package os passes it.
func fileMode(perm fs.FileMode) uint32 {
	m := uint32(perm.Perm())
	if perm&fs.ModeSetuid != 0 {
		m |= unix.S_ISUID
	}
	if perm&fs.ModeSetgid != 0 {
		m |= unix.S_ISGID
	}
	if perm&fs.ModeSticky != 0 {
		m |= unix.S_ISVTX
	}
	return m
}

// fastCommit ends the commit of a file created by the fast path, whose
// temporary file is synced and closed (err the error of that): it renames
// (or, createOnly, links) the temporary file to the final name within
// the directory held open, removes the temporary name on error or after a
// link, and syncs the directory, as commit does through the root.
func (f *File) fastCommit(err error, createOnly bool) error {
	defer f.dir.Close()
	base, tmpBase := path.Base(f.name), path.Base(f.tmp)
	if err == nil {
		op := "renameat"
		err = f.fast.call(func() error {
			return f.dirCall(func(fd int) error {
				if createOnly {
					op = "linkat"
					return unix.Linkat(fd, tmpBase, fd, base, 0)
				}
				err := unix.Renameat(fd, tmpBase, fd, base)
				if err == unix.EISDIR {
					// os.Root.Rename finds the directory first and says
					// it exists.
					err = unix.EEXIST
				}
				return err
			})
		})
		if err != nil {
			err = &os.LinkError{Op: op, Old: f.tmp, New: f.name, Err: err}
		}
	}
	if err != nil || createOnly {
		// After a link, the file is in place: a temporary name left
		// behind is only litter, which Sweep removes, not a failure.
		_ = f.dirCall(func(fd int) error { return unix.Unlinkat(fd, tmpBase, 0) })
	}
	if err != nil {
		return err
	}
	if !f.sync {
		return nil
	}
	if err := syncOpenDir(f.dir); err != nil {
		return &DirSyncError{Dir: path.Dir(f.name), Err: err}
	}
	return nil
}

// fastAbort ends the abort of a file created by the fast path, whose
// temporary file is closed (err the error of that): it removes the
// temporary file and closes the directory.
func (f *File) fastAbort(err error) error {
	rerr := f.dirCall(func(fd int) error { return unix.Unlinkat(fd, path.Base(f.tmp), 0) })
	if rerr != nil {
		rerr = &fs.PathError{Op: "removeat", Path: f.tmp, Err: rerr}
	}
	if cerr := f.dir.Close(); rerr == nil {
		rerr = cerr
	}
	if err == nil {
		err = rerr
	}
	return err
}

// dirCall calls op with the descriptor of the file's directory.
func (f *File) dirCall(op func(fd int) error) error {
	rc, err := f.dir.SyscallConn()
	if err != nil {
		return err
	}
	var oerr error
	if err := rc.Control(func(fd uintptr) { oerr = op(int(fd)) }); err != nil {
		return err
	}
	return oerr
}
