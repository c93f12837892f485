package sink

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"syscall"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/atomicfile"
	"github.com/insitu-data/insitu/internal/fserr"
)

// openRoot opens the sink's directory for a Put of name, creating it first
// when it is missing.
func (s *DirSink) openRoot(name insitu.Name) (*os.Root, error) {
	root, err := os.OpenRoot(s.root)
	if errors.Is(err, fs.ErrNotExist) {
		if err = s.makeRoot(); err == nil {
			root, err = os.OpenRoot(s.root)
		}
	}
	if err != nil {
		return nil, s.rootError(name, err)
	}
	return root, nil
}

// makeRoot creates the sink's directory and its missing parents through a
// root on its nearest existing ancestor, so that they are made (and, with
// sync on, their parents synced) like the directories under it.
func (s *DirSink) makeRoot() error {
	for anc := filepath.Dir(s.root); ; anc = filepath.Dir(anc) {
		r, err := os.OpenRoot(anc)
		if err == nil {
			rel, err := filepath.Rel(anc, s.root)
			if err == nil {
				err = atomicfile.MkdirAll(r, filepath.ToSlash(rel), s.files)
			}
			r.Close()
			return err
		}
		if !errors.Is(err, fs.ErrNotExist) || filepath.Dir(anc) == anc {
			return err
		}
	}
}

// rootError explains why the sink's directory could not be opened or
// made; name is the object of the Put, if any. A file on the root's path
// is looked for whatever err is: os.OpenRoot of a file fails with an error
// that is no syscall.ENOTDIR.
func (s *DirSink) rootError(name insitu.Name, err error) error {
	for d := s.root; ; d = filepath.Dir(d) {
		if fi, serr := os.Stat(d); serr == nil {
			if !fi.IsDir() {
				return &insitu.Error{Code: insitu.InvalidArgument, Name: name,
					Msg: fmt.Sprintf("sink root %q cannot be a directory: %q is a file", s.root, d)}
			}
			break
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	return fserr.Wrap(name, err)
}

// createError classifies an error of atomicfile.Create for name: a path
// out of the root, a file where the key needs a directory, or a file
// system failure.
func (s *DirSink) createError(root *os.Root, name insitu.Name, err error) error {
	switch {
	case atomicfile.Escapes(err):
		return &insitu.Error{Code: insitu.PermissionDenied, Name: name,
			Msg: fmt.Sprintf("a symbolic link on the key's path leads out of the sink root %q", s.root), Err: err}
	case errors.Is(err, syscall.ENOTDIR), errors.Is(err, fs.ErrExist):
		return collision(root, name, err)
	}
	return fserr.Wrap(name, err)
}

// collision explains why the directory of name's file could not be made:
// an object stands on its path.
func collision(root *os.Root, name insitu.Name, err error) error {
	dir := path.Dir(name.Key)
	for i := 0; i <= len(dir); i++ {
		if i < len(dir) && dir[i] != '/' {
			continue
		}
		fi, serr := root.Stat(filepath.FromSlash(dir[:i]))
		if serr != nil {
			break
		}
		if !fi.IsDir() {
			return &insitu.Error{Code: insitu.InvalidArgument, Name: name,
				Msg: fmt.Sprintf("key collides with the object %q: an object cannot also be a directory of keys", dir[:i])}
		}
	}
	return &insitu.Error{Code: insitu.InvalidArgument, Name: name,
		Msg: "something other than a directory stands where the key needs one", Err: err}
}

// isDirError is the error of a Put whose file would replace a directory.
func isDirError(name insitu.Name, file string) error {
	return &insitu.Error{Code: insitu.InvalidArgument, Name: name,
		Msg: fmt.Sprintf("%q is a directory holding other objects", file)}
}
