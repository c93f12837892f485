package atomicfile

import (
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// A Dir is a root held open for writing many files: on Linux, [Dir.Create]
// opens the file's directory with one openat2(2) beneath the root (no link
// of any kind followed), and the temporary file, its rename and the
// directory's sync all go through that directory's descriptor: about ten
// system calls a file, where [Create] walks the path through the [os.Root]
// component by component for each step (about forty). A file whose
// directory this cannot reach for certain (no openat2, a link on the way,
// a directory still to make) is created by [Create] instead, which gives
// the same result or error, so a Dir writes exactly the files Create does.
//
// A Dir is safe for concurrent use. Close it before its root.
type Dir struct {
	root *os.Root
	fast fastDir // the root's directory held open, where the fast path is
}

// NewDir returns a Dir over root. It never fails: when the root's
// directory cannot be held open, every Create takes [Create]'s path.
func NewDir(root *os.Root) *Dir {
	d := &Dir{root: root}
	d.fast.init(root)
	return d
}

// Root returns the root the Dir writes in.
func (d *Dir) Root() *os.Root { return d.root }

// Close releases the directory the Dir holds open, not its root. A file
// the Dir created before and commits after fails to commit, with
// os.ErrClosed, as a file of a closed root does, and is removed; Create
// after Close takes [Create]'s path.
func (d *Dir) Close() error { return d.fast.close() }

// Create is [Create] in the Dir's root.
func (d *Dir) Create(name string, perm fs.FileMode, opts *Options) (*File, error) {
	dir, base, err := splitName(name)
	if err != nil {
		return nil, err
	}
	if f, ok := d.fast.create(d.root, name, dir, base, perm, opts); ok {
		return f, nil
	}
	return create(d.root, name, dir, perm, opts)
}

// splitName checks name as [Create] does and splits it into its
// directory (without a trailing slash; "" for the root) and base name.
func splitName(name string) (dir, base string, err error) {
	if !filepath.IsLocal(filepath.FromSlash(name)) {
		return "", "", &fs.PathError{Op: "create", Path: name, Err: fs.ErrInvalid}
	}
	dir, base = path.Split(name)
	if base == "" || IsTemp(base) {
		return "", "", &fs.PathError{Op: "create", Path: name, Err: fs.ErrInvalid}
	}
	return strings.TrimSuffix(dir, "/"), base, nil
}

// OpenNoFollow opens the regular file name for reading, on Linux with one
// openat2(2) beneath the root through no link of any kind, O_NOFOLLOW and
// O_NONBLOCK (a FIFO does not block the open), then an fstat. ok is false
// when this cannot answer for certain (no openat2, a link anywhere on
// the way, not a regular file, any error): the caller then opens it its
// usual way, which gives the exact result or error.
func (d *Dir) OpenNoFollow(name string) (f *os.File, fi fs.FileInfo, ok bool) {
	return d.fast.open(name)
}
