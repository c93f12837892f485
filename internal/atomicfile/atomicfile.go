// Package atomicfile writes files that appear under their final name whole
// or not at all: the bytes go to a temporary file in the destination
// directory, which is synced, closed and renamed over the final name, and
// the directory is synced so the rename survives a crash. All file system
// access goes through an [os.Root], so a name can never reach outside it.
//
// A crash between creating a temporary file and renaming it leaves the
// temporary file behind; [Sweep] removes such leftovers.
package atomicfile

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
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

// Options configure [Create] and [MkdirAll]. A nil *Options means the
// defaults.
type Options struct {
	// NoSync skips every fsync: of the file before the rename, of its
	// directory after it, and of the parent of each directory made for
	// it. Other processes still see the file whole or not at all, but a
	// crash may lose it. Default false.
	NoSync bool
	// DirPerm is the mode (before the umask) of the directories made for
	// the file. Default 0o755.
	DirPerm fs.FileMode
}

func (o *Options) sync() bool { return o == nil || !o.NoSync }

func (o *Options) dirPerm() fs.FileMode {
	if o == nil || o.DirPerm == 0 {
		return 0o755
	}
	return o.DirPerm
}

// File is a file being written. Its bytes appear under the final name only
// when [File.Commit] succeeds; [File.Abort] removes them. A File is not safe
// for concurrent use.
type File struct {
	root *os.Root
	f    *os.File
	name string // final, slash-separated, relative to root
	tmp  string // temporary, slash-separated, relative to root
	sync bool
	done bool

	// dir is the file's directory, held open when the file was created
	// by a [Dir]'s fast path: the rename, link, removal and the
	// directory's sync then go through it (see fastCommit); nil when the
	// file was created through the root.
	dir *os.File
	// fast is the Dir's root directory, through which the rename goes
	// (see fastDir.call); set with dir.
	fast *fastDir
}

// createAttempts bounds the retries when a concurrent removal of an empty
// parent directory (by another process, or by a caller that removes the
// directories a deletion leaves empty) races with making the directories
// or creating the temporary file in them.
const createAttempts = 16

// Create starts writing the file name, a slash-separated path relative to
// root, creating its missing parent directories (see [MkdirAll]). The file
// gets mode perm (before the umask). name must be local (see
// [filepath.IsLocal]) and its base name must not start with [TempPrefix];
// the root refuses anything that escapes it, such as a symbolic link out
// of the tree (see [Escapes]).
//
// The temporary file is named [TempPrefix] and 32 random hexadecimal
// digits, whatever the length of the final name, so any name the file
// system allows can be written.
//
// A parent directory removed by someone else while Create makes the
// directories or creates the temporary file in them (a concurrent removal
// of empty directories, say) is made again, a few times; once the
// temporary file exists, its directories are not empty and cannot be
// removed by such a cleanup. A caller that removes empty directories
// itself and must never fail a concurrent Create with fs.ErrNotExist
// excludes the two (package node does, with a lock).
func Create(root *os.Root, name string, perm fs.FileMode, opts *Options) (*File, error) {
	dir, _, err := splitName(name)
	if err != nil {
		return nil, err
	}
	return create(root, name, dir, perm, opts)
}

// create is Create of the checked name, whose directory is dir.
func create(root *os.Root, name, dir string, perm fs.FileMode, opts *Options) (*File, error) {
	var lastErr error
	for range createAttempts {
		if err := MkdirAll(root, dir, opts); err != nil {
			lastErr = err
			// A parent removed between two steps of the mkdirs fails
			// them with fs.ErrNotExist, or with fs.ErrExist when the
			// removal came between a mkdir that found the directory and
			// the check that it is one (os.Root.MkdirAll). The latter is
			// also the error of a file where a directory should be, which
			// stays the error once the attempts are spent.
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrExist) {
				continue
			}
			return nil, err
		}
		tmp := path.Join(dir, TempPrefix+randomSuffix())
		f, err := root.OpenFile(filepath.FromSlash(tmp), os.O_RDWR|os.O_CREATE|os.O_EXCL, perm)
		if err == nil {
			return &File{root: root, f: f, name: name, tmp: tmp, sync: opts.sync()}, nil
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
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// MkdirAll creates the directory dir, a slash-separated path relative to
// root ("" or "." is the root itself), and its missing parents, with mode
// opts.DirPerm. Unless opts.NoSync, it then syncs the parent of every
// directory it made, so that the new entries survive a crash. dir must be
// local (see [filepath.IsLocal]).
func MkdirAll(root *os.Root, dir string, opts *Options) error {
	if dir == "" || dir == "." {
		return nil
	}
	local := filepath.FromSlash(dir)
	if !filepath.IsLocal(local) {
		return &fs.PathError{Op: "mkdir", Path: dir, Err: fs.ErrInvalid}
	}
	if fi, err := root.Stat(local); err == nil && fi.IsDir() {
		return nil
	}
	// The directories that are missing now, deepest first: once made,
	// each one's parent holds a new entry to sync.
	var missing []string
	for d := path.Clean(dir); d != "."; d = path.Dir(d) {
		if _, err := root.Lstat(filepath.FromSlash(d)); !errors.Is(err, fs.ErrNotExist) {
			break
		}
		missing = append(missing, d)
	}
	if err := root.MkdirAll(local, opts.dirPerm()); err != nil {
		return err
	}
	if !opts.sync() {
		return nil
	}
	for _, d := range missing {
		if err := syncDir(root, path.Dir(d)); err != nil {
			return err
		}
	}
	return nil
}

// Name returns the final name, as given to [Create].
func (f *File) Name() string { return f.name }

// TempName returns the slash-separated name of the temporary file.
func (f *File) TempName() string { return f.tmp }

// Write writes to the temporary file.
func (f *File) Write(p []byte) (int, error) { return f.f.Write(p) }

// A DirSyncError is the error of a [File.Commit] that renamed the file
// into place but could not sync its directory: the file is visible under
// its final name, but may not survive a crash.
type DirSyncError struct {
	Dir string // the directory, slash-separated, relative to the root
	Err error
}

// Error describes the failed sync.
func (e *DirSyncError) Error() string {
	return "committed, but syncing the directory " + e.Dir + " failed: " + e.Err.Error()
}

// Unwrap returns the sync's error.
func (e *DirSyncError) Unwrap() error { return e.Err }

// Commit syncs and closes the temporary file, renames it over the final
// name and syncs the directory (no syncs with [Options.NoSync]). On error
// the temporary file is removed and whatever was under the final name
// stays, except for a [*DirSyncError]: the file is then in place. Commit
// after Commit or Abort is an error.
func (f *File) Commit() error { return f.commit(false) }

// CommitNew is [File.Commit] for a file that may only be created: when
// something exists under the name already, nothing is changed, the
// temporary file is removed and the error is [fs.ErrExist] (wrapped). The
// file appears by a hard link, which fails rather than replaces, and the
// temporary name is then removed. It needs a file system with hard links
// (not vfat or exFAT, say), where a link fails with another error.
func (f *File) CommitNew() error { return f.commit(true) }

func (f *File) commit(createOnly bool) error {
	if f.done {
		return fs.ErrClosed
	}
	f.done = true
	var err error
	if f.sync {
		err = f.f.Sync()
	}
	if cerr := f.f.Close(); err == nil {
		err = cerr
	}
	if f.dir != nil {
		return f.fastCommit(err, createOnly)
	}
	if err == nil {
		if createOnly {
			err = f.root.Link(filepath.FromSlash(f.tmp), filepath.FromSlash(f.name))
		} else {
			err = f.root.Rename(filepath.FromSlash(f.tmp), filepath.FromSlash(f.name))
		}
	}
	if err != nil || createOnly {
		// After a link, the file is in place: a temporary name left
		// behind is only litter, which Sweep removes, not a failure.
		_ = f.root.Remove(filepath.FromSlash(f.tmp))
	}
	if err != nil {
		return err
	}
	if !f.sync {
		return nil
	}
	dir := path.Dir(f.name)
	if err := syncDir(f.root, dir); err != nil {
		return &DirSyncError{Dir: dir, Err: err}
	}
	return nil
}

// Abort closes and removes the temporary file. It does nothing after
// Commit or Abort, so it can be deferred.
func (f *File) Abort() error {
	if f.done {
		return nil
	}
	f.done = true
	err := f.f.Close()
	if f.dir != nil {
		return f.fastAbort(err)
	}
	if rerr := f.root.Remove(filepath.FromSlash(f.tmp)); err == nil {
		err = rerr
	}
	return err
}

// Escapes reports whether err is an [os.Root]'s refusal of a path that
// leaves the root, such as one through a symbolic link that points out of
// the tree. The os package exports no sentinel error for it, so Escapes
// compares the text of the innermost error with the one os uses.
func Escapes(err error) bool {
	for err != nil {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error() == "path escapes from parent"
		}
		err = next
	}
	return false
}

// syncDir makes a rename in dir durable. File systems that cannot sync a
// directory (some report EINVAL) are not an error, nor is Windows, where a
// directory cannot be opened for syncing.
func syncDir(root *os.Root, dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := root.Open(filepath.FromSlash(dir))
	if err != nil {
		return err
	}
	err = syncOpenDir(d)
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncOpenDir syncs the open directory d, as syncDir does.
func syncOpenDir(d *os.File) error {
	err := d.Sync()
	if err != nil && (errors.Is(err, syscall.EINVAL) || errors.Is(err, errors.ErrUnsupported)) {
		return nil
	}
	return err
}
