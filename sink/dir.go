package sink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/atomicfile"
	"github.com/insitu-data/insitu/internal/fserr"
	"github.com/insitu-data/insitu/internal/putcheck"
)

// TempPrefix starts the names of the temporary files [DirSink.Put] writes
// next to their final names: ".insitu-tmp-". It equals the prefix of the
// temporary files of the storage nodes (package node), both being
// internal/atomicfile.TempPrefix. source.Dir skips such files, keys whose
// last segment starts with it are refused, and [DirSink.Sweep] removes the
// ones a crash left.
const TempPrefix = atomicfile.TempPrefix

// bufSize is the size of the copy buffer of one Put.
const bufSize = 256 << 10

// DirOptions configure [Dir]. A nil *DirOptions means the defaults.
type DirOptions struct {
	// NoSync skips the fsync calls. Default false: Put fsyncs the file
	// before renaming it, then its directory (and the parent of every
	// directory it created), so a stored object survives a crash. Set it
	// for scratch output where speed matters more.
	NoSync bool
}

// DirSink stores objects as files under a local directory. Make one with
// [Dir]. A DirSink is safe for concurrent use.
type DirSink struct {
	root  string // absolute and clean
	files *atomicfile.Options
	bufs  sync.Pool
}

// Dir returns a sink that writes the object bucket/key to the file
// root/key. The bucket is ignored: a DirSink is one bucket. root and the
// directories under it are created as needed. A relative root is made
// absolute now.
//
// Put writes to a temporary file in the final file's directory, named
// [TempPrefix] and 32 random hexadecimal digits, renames it over the final
// name once the whole input is written (and synced, see [DirOptions]), and
// removes it on any failure: a reader never sees a partial object, and an
// older object under the name stays whole until the new one replaces it.
// Concurrent Puts of one name leave one of the versions whole. A crash
// (kill -9, power loss) during a Put can leave its temporary file behind;
// [DirSink.Sweep] removes such files when asked, never on its own.
//
// Every file access of a Put goes through an [os.Root] on the sink's
// directory, so no key reaches outside it, not even through a symbolic
// link in the tree that points out of it (such a Put fails with
// PermissionDenied); links that stay inside the tree are followed.
//
// An empty root is an InvalidArgument error; the directory itself is not
// looked at until the first call.
func Dir(root string, opts *DirOptions) (*DirSink, error) {
	if root == "" {
		return nil, insitu.Errorf(insitu.InvalidArgument, "sink.Dir: empty root directory")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, insitu.Errorf(insitu.InvalidArgument, "sink.Dir: root %q: %w", root, err)
	}
	s := &DirSink{root: abs, files: &atomicfile.Options{NoSync: opts != nil && opts.NoSync, DirPerm: 0o777}}
	s.bufs.New = func() any { b := make([]byte, bufSize); return &b }
	return s, nil
}

// Root returns the absolute path of the sink's directory.
func (s *DirSink) Root() string { return s.root }

// Put stores the bytes of r as root/<name.Key>, all or nothing, and returns
// their size and XXH64 checksum. The errors:
//   - InvalidArgument: an invalid name (see [insitu.Name.Validate]); a key
//     ending in a segment that starts with [TempPrefix]; a nil r; a key
//     that collides with an existing path ("a/b" when the object "a"
//     exists, or "a" when "a/" holds objects); a size below -1 or other
//     than the bytes r gave; a root that is not a directory;
//   - PermissionDenied: a directory that cannot be written, a read-only
//     file system; a symbolic link on the key's path that leads out of the
//     root;
//   - Unavailable: a full disk or quota, no file descriptors left (a retry
//     later can succeed);
//   - Internal: any other failure of the file system (such as EIO);
//   - ctx.Err(), unwrapped, when ctx ends (checked between chunks);
//   - r's error, with the name, when r fails.
//
// The size check, the checksum and the naming of r's errors are those of
// every sink of this module (internal/putcheck): a longer input is noticed
// by reading one byte past size, no further.
//
// In every case, nothing is left under the name but what was there before.
func (s *DirSink) Put(ctx context.Context, name insitu.Name, r io.Reader, size int64) (insitu.PutResult, error) {
	return s.put(ctx, name, r, size, "")
}

// PutOrigin is [DirSink.Put], with origin recorded in the file's extended
// attribute user.insitu.origin, set on the temporary file before the
// rename. The value is a compact binary form of the origin, about 50
// bytes, that names the input relative to the file's key and checks that
// key, so that ext4 keeps it in the inode and a file renamed or copied to
// another key has no origin (a value that is the origin's text, as
// earlier versions wrote, still reads); the bytes and their origin appear
// together, and a file replaced by Put has none. [DirSink.Stat] reads it
// back. On a file system that keeps no extended attributes (or none of
// that size), and on systems other than Linux, the file is stored without
// it: Stat then gives no origin, and a run with SkipUnchanged makes such
// outputs again every time. An origin over [insitu.MaxOriginLen] is not
// recorded either.
func (s *DirSink) PutOrigin(ctx context.Context, name insitu.Name, r io.Reader, size int64, origin insitu.Origin) (insitu.PutResult, error) {
	text := origin.String()
	if len(text) > insitu.MaxOriginLen {
		text = ""
	}
	return s.put(ctx, name, r, size, text)
}

// put stores r under name, with the origin text when it is not "".
func (s *DirSink) put(ctx context.Context, name insitu.Name, r io.Reader, size int64, origin string) (insitu.PutResult, error) {
	final, err := s.path(name, true)
	if err != nil {
		return insitu.PutResult{}, err
	}
	in, err := putcheck.New(ctx, name, r, size, 0)
	if err != nil {
		return insitu.PutResult{}, err
	}
	root, err := s.openRoot(name)
	if err != nil {
		return insitu.PutResult{}, err
	}
	defer root.Close()
	if fi, err := root.Lstat(filepath.FromSlash(name.Key)); err == nil && fi.IsDir() {
		return insitu.PutResult{}, isDirError(name, final)
	}
	f, err := atomicfile.Create(root, name.Key, 0o666, s.files)
	if err != nil {
		return insitu.PutResult{}, s.createError(root, name, err)
	}
	defer f.Abort()
	if err := s.copy(name, f, in); err != nil {
		return insitu.PutResult{}, err
	}
	if err := ctx.Err(); err != nil {
		return insitu.PutResult{}, err
	}
	if origin != "" {
		if err := f.SetAttr(atomicfile.OriginAttr, atomicfile.EncodeOrigin(origin, name.Key)); err != nil && !atomicfile.AttrUnsupported(err) {
			return insitu.PutResult{}, fserr.Wrap(name, err)
		}
	}
	if err := f.Commit(); err != nil {
		if serr, ok := errors.AsType[*atomicfile.DirSyncError](err); ok {
			// The object is in place; a failure here means it may not
			// survive a crash, and is reported as such.
			return insitu.PutResult{}, &insitu.Error{Code: insitu.Unknown, Name: name,
				Msg: "stored, but syncing its directory failed", Err: serr.Err}
		}
		if errors.Is(err, syscall.EISDIR) || errors.Is(err, fs.ErrExist) || errors.Is(err, syscall.ENOTEMPTY) {
			return insitu.PutResult{}, isDirError(name, final)
		}
		return insitu.PutResult{}, fserr.Wrap(name, err)
	}
	return in.Result(), nil
}

// Sweep removes the temporary files that Puts interrupted by a crash
// (kill -9, power loss) left under the sink's directory: the regular files
// whose names start with [TempPrefix] and that were last modified more
// than olderThan ago, or all of them when olderThan is 0. It returns how
// many it removed. Such files are never objects: Put refuses their names
// and source.Dir skips them.
//
// A DirSink never sweeps on its own: its directory is the caller's, and
// other processes may be writing to it. A Put in progress, in this process
// or another, has a temporary file too, so make olderThan longer than any
// Put takes, or 0 only when nothing else writes to the directory.
//
// Sweep walks the whole tree without following symbolic links. A missing
// directory has nothing to sweep. The errors: InvalidArgument for a
// negative olderThan or a root that is not a directory; ctx.Err(),
// unwrapped, when ctx ends (checked between entries); the code of the file
// system's error otherwise (PermissionDenied, Unavailable or Internal). The count is of the files removed
// before the error.
func (s *DirSink) Sweep(ctx context.Context, olderThan time.Duration) (int, error) {
	if olderThan < 0 {
		return 0, insitu.Errorf(insitu.InvalidArgument, "sink.Dir: negative age %v for a sweep", olderThan)
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	root, err := os.OpenRoot(s.root)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, s.rootError(insitu.Name{}, err)
	}
	defer root.Close()
	n, err := atomicfile.Sweep(ctx, root, olderThan)
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		err = &insitu.Error{Code: fserr.Code(err), Msg: fmt.Sprintf("sweeping the temporary files under %q", s.root), Err: err}
	}
	return n, err
}

// Stat returns the object of name, with Size, Path and Origin set (Origin:
// the origin [DirSink.PutOrigin] recorded, "" for none), or a NotFound
// error. A directory is not an object; a symbolic link on the key's path
// that leads out of the root is PermissionDenied, as for Put. The origin
// is read from the file without following a final link: a link, or an
// attribute that is not an origin's text, gives none.
func (s *DirSink) Stat(ctx context.Context, name insitu.Name) (insitu.Object, error) {
	p, err := s.path(name, false)
	if err != nil {
		return insitu.Object{}, err
	}
	if err := ctx.Err(); err != nil {
		return insitu.Object{}, err
	}
	// Through an os.Root, as Put writes: a link out of the tree is refused
	// here too.
	root, err := os.OpenRoot(s.root)
	if err != nil {
		return insitu.Object{}, fserr.Wrap(name, err)
	}
	defer root.Close()
	fi, err := root.Stat(filepath.FromSlash(name.Key))
	if err != nil {
		return insitu.Object{}, fserr.Wrap(name, err)
	}
	if !fi.Mode().IsRegular() {
		return insitu.Object{}, &insitu.Error{Code: insitu.NotFound, Name: name, Msg: fmt.Sprintf("%q is not a regular file", p)}
	}
	// An origin that cannot be read, or is not one, is none: the output is
	// made again.
	value, _ := atomicfile.ReadAttr(root, name.Key, fi, atomicfile.OriginAttr)
	origin := atomicfile.DecodeOrigin(value, name.Key)
	return insitu.Object{Name: name, Size: fi.Size(), Path: p, Origin: origin}, nil
}

// path returns the file of name under the root, refusing names that could
// leave it. For a put, a reserved temp name is InvalidArgument; for a
// stat, NotFound.
func (s *DirSink) path(name insitu.Name, put bool) (string, error) {
	if err := name.Validate(); err != nil {
		return "", err
	}
	local, err := filepath.Localize(name.Key)
	if err != nil {
		return "", &insitu.Error{Code: insitu.InvalidArgument, Name: name, Msg: "key cannot be a file name on this system", Err: err}
	}
	if strings.HasPrefix(path.Base(name.Key), TempPrefix) {
		code := insitu.NotFound
		if put {
			code = insitu.InvalidArgument
		}
		return "", &insitu.Error{Code: code, Name: name, Msg: "names starting with " + TempPrefix + " are reserved for temporary files"}
	}
	return filepath.Join(s.root, local), nil
}

// copy streams in, which checks the size and the context, into f.
func (s *DirSink) copy(name insitu.Name, f io.Writer, in *putcheck.Reader) error {
	bp := s.bufs.Get().(*[]byte)
	defer s.bufs.Put(bp)
	buf := *bp
	for {
		m, rerr := in.Read(buf)
		if m > 0 {
			if _, err := f.Write(buf[:m]); err != nil {
				return fserr.Wrap(name, err)
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

var _ insitu.OriginSink = (*DirSink)(nil)
