package sink

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"github.com/insitu-data/insitu"
)

// createTemp creates a new temporary file in dir.
func createTemp(dir string) (*os.File, error) {
	for {
		p := filepath.Join(dir, TempPrefix+rand.Text())
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
		if errors.Is(err, fs.ErrExist) {
			continue // 130 random bits collided: try again
		}
		return f, err
	}
}

// mkdirs creates dir and its missing parents, and with sync on, syncs the
// parent of each directory it created, so the new entries are durable.
func (s *DirSink) mkdirs(name insitu.Name, dir string) error {
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return nil
	}
	var missing []string
	for d := dir; ; {
		if _, err := os.Lstat(d); !errors.Is(err, fs.ErrNotExist) {
			break
		}
		missing = append(missing, d)
		parent := filepath.Dir(d)
		if parent == d {
			break
		}
		d = parent
	}
	if err := os.MkdirAll(dir, 0o777); err != nil {
		if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, fs.ErrExist) {
			return s.collision(name, dir)
		}
		return s.fsError(name, err)
	}
	if s.sync {
		for _, d := range missing {
			if err := syncDir(filepath.Dir(d)); err != nil {
				return s.fsError(name, err)
			}
		}
	}
	return nil
}

// collision explains why dir could not be made: a file stands on its path.
func (s *DirSink) collision(name insitu.Name, dir string) error {
	file := ""
	for d := dir; ; {
		if fi, err := os.Stat(d); err == nil {
			if !fi.IsDir() {
				file = d
			}
			break
		}
		parent := filepath.Dir(d)
		if parent == d {
			break
		}
		d = parent
	}
	if file != "" && strings.HasPrefix(file, s.root+string(filepath.Separator)) {
		key := filepath.ToSlash(strings.TrimPrefix(file, s.root+string(filepath.Separator)))
		return &insitu.Error{Code: insitu.InvalidArgument, Name: name,
			Msg: fmt.Sprintf("key collides with the object %q: an object cannot also be a directory of keys", key)}
	}
	return &insitu.Error{Code: insitu.InvalidArgument, Name: name,
		Msg: fmt.Sprintf("sink root %q cannot be a directory: %q is a file", s.root, file)}
}

// fsError wraps a file system error of a put; err names the file.
func (s *DirSink) fsError(name insitu.Name, err error) error {
	code := insitu.Unknown
	switch {
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EROFS):
		code = insitu.PermissionDenied
	case errors.Is(err, syscall.ENAMETOOLONG):
		code = insitu.InvalidArgument
	}
	return &insitu.Error{Code: code, Name: name, Err: err}
}

func sizeError(name insitu.Name, size int64, got string) error {
	return &insitu.Error{Code: insitu.InvalidArgument, Name: name,
		Msg: fmt.Sprintf("size mismatch: told %d bytes, the input had %s", size, got)}
}

// readError names the object in the input's error, leaving context errors
// and errors that already name an object as they are.
func readError(name insitu.Name, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if _, ok := errors.AsType[*insitu.Error](err); ok {
		return insitu.WithName(err, name)
	}
	return &insitu.Error{Code: insitu.CodeOf(err), Name: name, Msg: "reading the input", Err: err}
}

// syncDir fsyncs a directory, so the entries just made in it are durable.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil // directories cannot be opened for syncing there
	}
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSUP) {
		return nil // the file system does not sync directories
	}
	return err
}
