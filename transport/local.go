package transport

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/atomicfile"
	"github.com/insitu-data/insitu/internal/fserr"
)

// localRoot is an allowed root of local-file input, open for the Server's
// life: a request's file is opened through it, so that nothing outside it
// can be reached, whatever links its subdirectories hold.
type localRoot struct {
	given, resolved string // absolute and clean; resolved has no link
	root            *os.Root
}

// openRoots opens the allowed roots. A root that does not resolve to a
// directory is an InvalidArgument error.
func openRoots(roots []string) ([]localRoot, error) {
	var out []localRoot
	for _, r := range roots {
		abs, err := filepath.Abs(r)
		var resolved string
		if err == nil {
			resolved, err = filepath.EvalSymlinks(abs)
		}
		var root *os.Root
		if err == nil {
			root, err = os.OpenRoot(resolved)
		}
		if err != nil {
			for _, o := range out {
				o.root.Close()
			}
			return nil, insitu.Errorf(insitu.InvalidArgument, "transport.NewServer: local-file root %q does not resolve to a directory: %w", r, err)
		}
		out = append(out, localRoot{given: abs, resolved: resolved, root: root})
	}
	return out, nil
}

// within reports whether path p is root or inside it; both are clean and absolute.
func within(root, p string) (rel string, ok bool) {
	rel, err := filepath.Rel(root, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return "", false
	}
	return rel, true
}

// errOutside is the one error of a local path outside every root: the
// same text whether or not the path exists, so that a client cannot probe
// the machine's files.
func errOutside(p string) error {
	return insitu.Errorf(insitu.PermissionDenied, "local path %s is outside the server's allowed roots", p)
}

// confine finds the allowed root a request's local path is in, by its
// text alone (the file system is not touched): the cleaned path must be
// inside a root as given to NewServer or as its links resolved. Anything
// else is PermissionDenied, with the same message whether it exists or not.
func (s *Server) confine(p string) (*localRoot, string, error) {
	if len(s.roots) == 0 {
		return nil, "", insitu.Errorf(insitu.PermissionDenied, "local-file input is disabled on this server (ServerOptions.Roots is empty)")
	}
	clean := filepath.Clean(p)
	for i := range s.roots {
		r := &s.roots[i]
		if rel, ok := within(r.resolved, clean); ok {
			return r, rel, nil
		}
		if rel, ok := within(r.given, clean); ok {
			return r, rel, nil
		}
	}
	return nil, "", errOutside(clean)
}

// localFile is a confined local input, opened once for one request. The
// transform reads it as Input.Body and may open path, Input.Path, itself:
// on Linux path names this very open file (/proc/<pid>/fd/<n>), so that
// a tool run on it gets exactly the file that was checked, even if the
// name was changed since. It must stay open until the transform returns.
type localFile struct {
	f    *os.File
	name insitu.Name
	size int64
	path string
}

// openLocal opens rel in root, once (see openConfined): through the
// os.Root (no link may lead out of it), on Linux without following a link
// at the last element (O_NOFOLLOW), and without blocking (O_NONBLOCK: a
// FIFO cannot hold the request); then it refuses what fstat says is not a
// regular file. p is the path the request named, for the messages.
func (s *Server) openLocal(name insitu.Name, root *localRoot, rel, p string) (*localFile, error) {
	clean := filepath.Clean(p)
	f, err := openConfined(root.root, rel)
	if err != nil {
		switch {
		case errors.Is(err, syscall.ELOOP):
			return nil, insitu.WithName(insitu.Errorf(insitu.PermissionDenied,
				"local path %s is a symbolic link; the server opens no link as a local file", clean), name)
		case atomicfile.Escapes(err):
			return nil, insitu.WithName(errOutside(clean), name)
		case errors.Is(err, syscall.ENXIO): // a socket, or a device without its driver
			return nil, errNotRegular(name, clean)
		}
		return nil, fserr.Wrap(name, &fs.PathError{Op: "open", Path: clean, Err: unwrapPathError(err)})
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fserr.Wrap(name, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, errNotRegular(name, clean)
	}
	path := fdPath(f)
	if path == "" {
		path = clean
	}
	return &localFile{f: f, name: name, size: fi.Size(), path: path}, nil
}

func errNotRegular(name insitu.Name, p string) error {
	return insitu.WithName(insitu.Errorf(insitu.InvalidArgument, "local path %s is not a regular file", p), name)
}

// unwrapPathError returns the errno under an *fs.PathError, whose path
// would be the one relative to the root.
func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func (l *localFile) Read(p []byte) (int, error) {
	n, err := l.f.Read(p)
	if err != nil && err != io.EOF {
		err = fserr.Wrap(l.name, err)
	}
	return n, err
}

func (l *localFile) Close() error { return l.f.Close() }
