package transport

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/fserr"
)

// resolveRoots makes the allowed roots absolute, clean and free of
// symbolic links. A root that does not resolve to a directory is an
// InvalidArgument error.
func resolveRoots(roots []string) ([]string, error) {
	var out []string
	for _, r := range roots {
		abs, err := filepath.Abs(r)
		if err == nil {
			abs, err = filepath.EvalSymlinks(abs)
		}
		if err == nil {
			var fi os.FileInfo
			if fi, err = os.Stat(abs); err == nil && !fi.IsDir() {
				err = errors.New("not a directory")
			}
		}
		if err != nil {
			return nil, insitu.Errorf(insitu.InvalidArgument, "transport.NewServer: local-file root %q does not resolve to a directory: %w", r, err)
		}
		out = append(out, abs)
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

// confine resolves a request's local path: clean it, follow its links, and
// find the allowed root it is in. A path outside every root is
// PermissionDenied; a path inside one that does not resolve has the code
// of its file-system error (package fserr): NotFound for a missing file.
func (s *Server) confine(name insitu.Name, p string) (root, rel, resolved string, err error) {
	if len(s.roots) == 0 {
		return "", "", "", insitu.Errorf(insitu.PermissionDenied, "local-file input is disabled on this server (ServerOptions.Roots is empty)")
	}
	clean := filepath.Clean(p)
	resolved, err = filepath.EvalSymlinks(clean)
	if err != nil {
		for _, r := range s.roots {
			if _, ok := within(r, clean); ok {
				return "", "", "", fserr.Wrap(name, err)
			}
		}
		return "", "", "", insitu.Errorf(insitu.PermissionDenied, "local path %s is outside the server's allowed roots", clean)
	}
	for _, r := range s.roots {
		if rel, ok := within(r, resolved); ok {
			return r, rel, resolved, nil
		}
	}
	return "", "", "", insitu.Errorf(insitu.PermissionDenied, "local path %s (resolved to %s) is outside the server's allowed roots", clean, resolved)
}

// localFile is a confined local input, opened on its first Read so that a
// transform that only uses Input.Path never opens it. Its errors carry the
// codes of package fserr.
type localFile struct {
	name      insitu.Name
	root, rel string
	once      sync.Once
	f         *os.File
	err       error
}

// openLocal stats the local input and returns it, not yet opened, with its size.
func openLocal(name insitu.Name, root, rel, resolved string) (*localFile, int64, error) {
	fi, err := os.Stat(resolved)
	if err != nil {
		return nil, 0, fserr.Wrap(name, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, 0, insitu.WithName(insitu.Errorf(insitu.InvalidArgument, "local path %s is not a regular file", resolved), name)
	}
	return &localFile{name: name, root: root, rel: rel}, fi.Size(), nil
}

func (l *localFile) open() error {
	l.once.Do(func() {
		// OpenInRoot refuses a link swapped in since the path was checked.
		f, err := os.OpenInRoot(l.root, l.rel)
		if err != nil {
			l.err = fserr.Wrap(l.name, err)
			return
		}
		l.f = f
	})
	return l.err
}

func (l *localFile) Read(p []byte) (int, error) {
	if err := l.open(); err != nil {
		return 0, err
	}
	n, err := l.f.Read(p)
	if err != nil && err != io.EOF {
		err = fserr.Wrap(l.name, err)
	}
	return n, err
}

func (l *localFile) Close() error {
	if l.f != nil {
		return l.f.Close()
	}
	return nil
}
