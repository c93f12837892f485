// Package atomicfile writes files that appear under their final name whole
// or not at all: the bytes go to a temporary file in the destination
// directory, which is synced, closed and renamed over the final name, and
// the directory is synced so the rename survives a crash. All file system
// access goes through an [os.Root], so a name can never reach outside it.
package atomicfile

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
)

// TempPrefix starts the base name of every temporary file this package
// writes. Listings of a store skip such files; stores refuse keys with a
// path segment that starts with it.
const TempPrefix = ".insitu-tmp-"

// IsTemp reports whether base, the last element of a path, is the name of
// a temporary file of this package.
func IsTemp(base string) bool { return strings.HasPrefix(base, TempPrefix) }

// File is a file being written. Its bytes appear under the final name only
// when [File.Commit] succeeds; [File.Abort] removes them. A File is not safe
// for concurrent use.
type File struct {
	root *os.Root
	f    *os.File
	name string // final, slash-separated, relative to root
	tmp  string // temporary, slash-separated, relative to root
	done bool
}

// createAttempts bounds the retries when a concurrent removal of an empty
// parent directory races with creating the temporary file.
const createAttempts = 4

// Create starts writing the file name, a slash-separated path relative to
// root, creating its missing parent directories (mode 0o755). The file
// gets mode perm when committed. name must be local (see
// [filepath.IsLocal]); the root refuses anything that escapes it, such as a
// symbolic link out of the tree.
func Create(root *os.Root, name string, perm fs.FileMode) (*File, error) {
	if !filepath.IsLocal(filepath.FromSlash(name)) {
		return nil, &fs.PathError{Op: "create", Path: name, Err: fs.ErrInvalid}
	}
	dir, base := path.Split(name)
	if base == "" || IsTemp(base) {
		return nil, &fs.PathError{Op: "create", Path: name, Err: fs.ErrInvalid}
	}
	var lastErr error
	for range createAttempts {
		if dir != "" {
			if err := root.MkdirAll(filepath.FromSlash(strings.TrimSuffix(dir, "/")), 0o755); err != nil {
				return nil, err
			}
		}
		tmp := dir + TempPrefix + base + "-" + randomSuffix()
		f, err := root.OpenFile(filepath.FromSlash(tmp), os.O_RDWR|os.O_CREATE|os.O_EXCL, perm)
		if err == nil {
			return &File{root: root, f: f, name: name, tmp: tmp}, nil
		}
		lastErr = err
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, fs.ErrExist) {
			break
		}
		// The parent was removed under us, or the random name was taken:
		// try again.
	}
	return nil, lastErr
}

func randomSuffix() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// Name returns the final name, as given to [Create].
func (f *File) Name() string { return f.name }

// TempName returns the slash-separated name of the temporary file.
func (f *File) TempName() string { return f.tmp }

// Write writes to the temporary file.
func (f *File) Write(p []byte) (int, error) { return f.f.Write(p) }

// Commit syncs and closes the temporary file, renames it over the final
// name and syncs the directory. On error the temporary file is removed and
// whatever was under the final name stays. Commit after Commit or Abort is
// an error.
func (f *File) Commit() error {
	if f.done {
		return fs.ErrClosed
	}
	f.done = true
	err := f.f.Sync()
	if cerr := f.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = f.root.Rename(filepath.FromSlash(f.tmp), filepath.FromSlash(f.name))
	}
	if err != nil {
		_ = f.root.Remove(filepath.FromSlash(f.tmp))
		return err
	}
	return syncDir(f.root, path.Dir(f.name))
}

// Abort closes and removes the temporary file. It does nothing after
// Commit or Abort, so it can be deferred.
func (f *File) Abort() error {
	if f.done {
		return nil
	}
	f.done = true
	err := f.f.Close()
	if rerr := f.root.Remove(filepath.FromSlash(f.tmp)); err == nil {
		err = rerr
	}
	return err
}

// syncDir makes a rename in dir durable. File systems that cannot sync a
// directory (some report EINVAL) are not an error.
func syncDir(root *os.Root, dir string) error {
	d, err := root.Open(filepath.FromSlash(dir))
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil && (errors.Is(err, syscall.EINVAL) || errors.Is(err, errors.ErrUnsupported)) {
		return nil
	}
	return err
}
