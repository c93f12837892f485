package transport

import (
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/insitu-data/insitu"
)

// resolveRoots makes the allowed roots absolute, clean and free of
// symbolic links. A root that does not resolve is logged and left out.
func resolveRoots(roots []string, log *slog.Logger) []string {
	var out []string
	for _, r := range roots {
		abs, err := filepath.Abs(r)
		if err == nil {
			abs, err = filepath.EvalSymlinks(abs)
		}
		if err != nil {
			log.Warn("transport: leaving out a local-file root that does not resolve", "root", r, "err", err)
			continue
		}
		out = append(out, abs)
	}
	return out
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
// PermissionDenied; a missing file inside one is NotFound.
func (s *Server) confine(p string) (root, rel, resolved string, err error) {
	if len(s.roots) == 0 {
		return "", "", "", insitu.Errorf(insitu.PermissionDenied, "local-file input is disabled on this server (ServerOptions.Roots is empty)")
	}
	clean := filepath.Clean(p)
	resolved, err = filepath.EvalSymlinks(clean)
	if err != nil {
		for _, r := range s.roots {
			if _, ok := within(r, clean); ok && errors.Is(err, fs.ErrNotExist) {
				return "", "", "", insitu.Errorf(insitu.NotFound, "local file %s does not exist", clean)
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
// transform that only uses Input.Path never opens it.
type localFile struct {
	root, rel string
	once      sync.Once
	f         *os.File
	err       error
}

// openLocal stats the local input and returns it, not yet opened, with its size.
func openLocal(root, rel, resolved string) (*localFile, int64, error) {
	fi, err := os.Stat(resolved)
	if err != nil {
		return nil, 0, localErr(err, resolved)
	}
	if !fi.Mode().IsRegular() {
		return nil, 0, insitu.Errorf(insitu.InvalidArgument, "local path %s is not a regular file", resolved)
	}
	return &localFile{root: root, rel: rel}, fi.Size(), nil
}

func localErr(err error, p string) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return insitu.Errorf(insitu.NotFound, "local file %s does not exist", p)
	case errors.Is(err, fs.ErrPermission):
		return insitu.Errorf(insitu.PermissionDenied, "local file %s: %w", p, err)
	}
	return insitu.Errorf(insitu.PermissionDenied, "local file %s: %w", p, err)
}

func (l *localFile) open() error {
	l.once.Do(func() {
		// OpenInRoot refuses a link swapped in since the path was checked.
		f, err := os.OpenInRoot(l.root, l.rel)
		if err != nil {
			l.err = localErr(err, filepath.Join(l.root, l.rel))
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
	return l.f.Read(p)
}

// WriteTo lets io.Copy use the file's own fast paths.
func (l *localFile) WriteTo(w io.Writer) (int64, error) {
	if err := l.open(); err != nil {
		return 0, err
	}
	return io.Copy(w, l.f)
}

func (l *localFile) Close() error {
	if l.f != nil {
		return l.f.Close()
	}
	return nil
}
