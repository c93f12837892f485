package source

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"iter"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/atomicfile"
)

// tmpPrefix starts the names of the temporary files that sink.Dir and the
// storage nodes write before renaming them; listings skip such files and
// Open refuses them.
const tmpPrefix = atomicfile.TempPrefix

// DirOptions configure [Dir]. A nil *DirOptions lists every object with an
// empty bucket.
type DirOptions struct {
	// Bucket is the Name.Bucket of every listed object. It must be a valid
	// bucket name (see insitu.ValidateBucket) or "". Default "".
	Bucket string
	// Prefix keeps only keys that start with it; subtrees that cannot hold
	// such keys are not read. Default "": every key.
	Prefix string
	// Suffix keeps only keys that end with it, such as ".flac". Default "":
	// every key.
	Suffix string
	// StartAfter keeps only keys that sort bytewise after it, to resume an
	// interrupted listing from the last key done; subtrees that hold no
	// such keys are not read. Default "": from the first key.
	StartAfter string
}

// DirSource is a local directory seen as one bucket: every regular file
// under the root is an object whose key is its path relative to the root,
// with "/" as the separator whatever the operating system. Make one with
// [Dir]. A DirSource is safe for concurrent use.
type DirSource struct {
	root string // absolute and clean
	opts DirOptions

	readDir func(string) ([]os.DirEntry, error) // os.ReadDir; replaced by tests
}

// Dir returns the source of the files under root, a directory that need
// not exist yet (listing a missing root is a NotFound error). A relative
// root is made absolute now, so Object.Path is always absolute.
//
// Objects lists the files recursively in bytewise key order, the order of
// S3 listings ("a-b" before "a/b"), reading one directory at a time: memory
// holds one directory's entries per level, never the whole tree. Listed
// objects have Size, Path and Version set (Version: the file's size and
// modification time in nanoseconds, "<size>-<ns>") and Owner "".
// Symbolic links to regular files are listed (with the target's size and
// version); links to directories are not followed; other non-regular
// files are skipped, and so are the temporary files of sink.Dir (names
// starting with ".insitu-tmp-"). A file whose key
// is not a valid [insitu.Name] (invalid UTF-8, over insitu.MaxKeyLen bytes)
// is yielded as an InvalidArgument error naming its path, as is a directory
// under which every key would be invalid; the listing goes on. So does it
// after an unreadable subdirectory, yielded as an error. A missing root is
// a NotFound error, a root that is not a directory an InvalidArgument
// error, an unreadable root a PermissionDenied error; each ends the
// listing.
//
// An empty root or an invalid DirOptions.Bucket is an InvalidArgument
// error; the directory itself is not looked at until the first call.
func Dir(root string, opts *DirOptions) (*DirSource, error) {
	d := &DirSource{readDir: os.ReadDir}
	if opts != nil {
		d.opts = *opts
	}
	if root == "" {
		return nil, insitu.Errorf(insitu.InvalidArgument, "source.Dir: empty root directory")
	}
	if d.opts.Bucket != "" {
		if err := insitu.ValidateBucket(d.opts.Bucket); err != nil {
			return nil, err
		}
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, insitu.Errorf(insitu.InvalidArgument, "source.Dir: root %q: %w", root, err)
	}
	d.root = abs
	return d, nil
}

// Root returns the absolute path of the source's directory.
func (d *DirSource) Root() string { return d.root }

// Objects lists the files under the root; see [Dir] for the order, the
// filters and the errors. Each call lists afresh; breaking out of the loop
// early leaves nothing open. When ctx ends, ctx.Err() is the last thing
// yielded.
func (d *DirSource) Objects(ctx context.Context) iter.Seq2[insitu.Object, error] {
	return func(yield func(insitu.Object, error) bool) {
		if err := ctx.Err(); err != nil {
			yield(insitu.Object{}, err)
			return
		}
		fi, err := os.Stat(d.root)
		if err != nil {
			yield(insitu.Object{}, rootError(err))
			return
		}
		if !fi.IsDir() {
			yield(insitu.Object{}, insitu.Errorf(insitu.InvalidArgument, "source root %q is not a directory", d.root))
			return
		}
		entries, err := d.readDir(d.root)
		if err != nil {
			yield(insitu.Object{}, rootError(err))
			return
		}
		w := walker{ctx: ctx, opts: &d.opts, readDir: d.readDir, yield: yield}
		w.walk(d.root, "", entries)
	}
}

// Open opens the file root/key of obj.Name (the bucket is not looked at: a
// DirSource is one bucket; obj.Path is not trusted). The key is validated
// first, so names with "..", a leading "/" or a NUL byte are InvalidArgument
// errors and never reach the file system. A missing file, a directory and
// a temporary file of sink.Dir are NotFound errors. Symbolic links inside
// the root, including links to directories, are followed.
func (d *DirSource) Open(ctx context.Context, obj insitu.Object) (io.ReadCloser, error) {
	p, err := d.path(obj.Name)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, fi, err := openRegular(p)
	switch {
	case err == errNotRegular:
		return nil, notRegular(obj.Name, p, fi)
	case err != nil:
		return nil, fileError(obj.Name, err)
	}
	return f, nil
}

// errNotRegular is openRegular's error for a file that is not regular.
var errNotRegular = errors.New("not a regular file")

// Stat returns the object of name, with Size, Path and Version set, or a NotFound
// error, with the same checks as [DirSource.Open]. The returned Name is
// name as given.
func (d *DirSource) Stat(ctx context.Context, name insitu.Name) (insitu.Object, error) {
	p, err := d.path(name)
	if err != nil {
		return insitu.Object{}, err
	}
	if err := ctx.Err(); err != nil {
		return insitu.Object{}, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return insitu.Object{}, fileError(name, err)
	}
	if !fi.Mode().IsRegular() {
		return insitu.Object{}, notRegular(name, p, fi)
	}
	return insitu.Object{Name: name, Size: fi.Size(), Path: p, Version: atomicfile.Version(fi)}, nil
}

// path returns the file of name, refusing names that could leave the root.
func (d *DirSource) path(name insitu.Name) (string, error) {
	if err := name.Validate(); err != nil {
		return "", err
	}
	local, err := filepath.Localize(name.Key)
	if err != nil {
		return "", &insitu.Error{Code: insitu.InvalidArgument, Name: name, Msg: "key cannot be a file name on this system", Err: err}
	}
	if strings.HasPrefix(path.Base(name.Key), tmpPrefix) {
		return "", &insitu.Error{Code: insitu.NotFound, Name: name, Msg: "names starting with " + tmpPrefix + " are sink.Dir's temporary files, not objects"}
	}
	return filepath.Join(d.root, local), nil
}

// walker lists one tree for one call of Objects.
type walker struct {
	ctx     context.Context
	opts    *DirOptions
	readDir func(string) ([]os.DirEntry, error)
	yield   func(insitu.Object, error) bool
}

// entry is a directory entry with its sort name: the name, with "/"
// appended for a directory, so that sorting by it gives key order.
type entry struct {
	fs.DirEntry
	sortName string
}

// walk lists the entries of the directory dir, whose keys start with
// prefix ("" or ending in "/"). It reports false when the listing must end
// (the consumer stopped or ctx ended).
func (w *walker) walk(dir, prefix string, des []os.DirEntry) bool {
	ents := make([]entry, len(des))
	for i, de := range des {
		ents[i] = entry{DirEntry: de, sortName: de.Name()}
		if de.IsDir() {
			ents[i].sortName += "/"
		}
	}
	slices.SortFunc(ents, func(a, b entry) int { return strings.Compare(a.sortName, b.sortName) })
	var ds *dirStat // opened for the first file that needs it
	defer func() {
		if ds != nil {
			ds.close()
		}
	}()
	for _, e := range ents {
		if err := w.ctx.Err(); err != nil {
			w.yield(insitu.Object{}, err)
			return false
		}
		key := prefix + e.sortName
		var ok bool
		if e.IsDir() {
			ok = w.dir(filepath.Join(dir, e.Name()), key)
		} else {
			if ds == nil {
				s := openDirStat(dir)
				ds = &s
			}
			ok = w.file(ds, dir, key, e)
		}
		if !ok {
			return false
		}
	}
	return true
}

// dir lists the subdirectory p, whose keys start with key (ending in "/"),
// unless no wanted key can be under it.
func (w *walker) dir(p, key string) bool {
	o := w.opts
	if !strings.HasPrefix(key, o.Prefix) && !strings.HasPrefix(o.Prefix, key) {
		return true
	}
	if key < o.StartAfter && !strings.HasPrefix(o.StartAfter, key) {
		return true // every key under it sorts before StartAfter
	}
	switch {
	case !utf8.ValidString(key):
		return w.yield(insitu.Object{}, insitu.Errorf(insitu.InvalidArgument,
			"directory %q not listed: its name is not valid UTF-8, so no key under it is valid", p))
	case len(key) >= insitu.MaxKeyLen:
		return w.yield(insitu.Object{}, insitu.Errorf(insitu.InvalidArgument,
			"directory %q not listed: every key under it would be over %d bytes", p, insitu.MaxKeyLen))
	}
	des, err := w.readDir(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return true // removed while listing
		}
		if !w.yield(insitu.Object{}, dirError(err)) {
			return false
		}
		// ReadDir returns the entries it read before the error: list them.
	}
	return w.walk(p, key, des)
}

// file yields the file e of dir, stat'ed through ds, as the object key
// when it is wanted.
func (w *walker) file(ds *dirStat, dir, key string, e entry) bool {
	o := w.opts
	if !strings.HasPrefix(key, o.Prefix) || !strings.HasSuffix(key, o.Suffix) || key <= o.StartAfter ||
		strings.HasPrefix(e.Name(), tmpPrefix) {
		return true
	}
	p := filepath.Join(dir, e.Name())
	var info fileStat
	var err error
	switch t := e.Type(); {
	case t.IsRegular():
		info, err = ds.lstat(e.Name())
	case t&fs.ModeSymlink != 0:
		var fi fs.FileInfo
		if fi, err = os.Stat(p); err == nil {
			info = statOf(fi)
		}
	default:
		return true // a device, socket, FIFO...
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return true // removed while listing, or a dangling link
		}
		return w.yield(insitu.Object{}, dirError(err))
	}
	if !info.regular {
		return true // a link to a directory or to a special file
	}
	name := insitu.Name{Bucket: o.Bucket, Key: key}
	if err := name.Validate(); err != nil {
		msg := err.Error()
		if e, ok := errors.AsType[*insitu.Error](err); ok {
			msg = e.Msg
		}
		return w.yield(insitu.Object{}, insitu.Errorf(insitu.InvalidArgument, "file %q not listed: %s", p, msg))
	}
	return w.yield(insitu.Object{Name: name, Size: info.size, Path: p, Version: atomicfile.VersionOf(info.size, info.mtime)}, nil)
}
