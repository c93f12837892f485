package node

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/atomicfile"
	"github.com/insitu-data/insitu/internal/fserr"
)

// jobSource is the input of this node's part of a job: the objects of the
// job's bucket (under its prefix) in the node's store that the node owns
// under its current map, the rule of the object API and of source.Cluster.
// A copy the node holds but no longer owns (a map change left it behind)
// is not listed: its owner lists the object, from its own copy. Every
// read goes through the store's os.Root, as the object API's do: the
// listing has the rules of [Node.List] (regular files only: no links, no
// special files, no names that are not valid UTF-8), and Open refuses a
// link, and a file that is not the one it looked at.
//
// The listing reads each directory whole, as source.Dir does (memory
// holds one directory's entries per level), so that it reads the bucket
// once: the node's paged listing, which holds a page at most, reads a
// directory again for each page.
type jobSource struct {
	n      *Node
	bucket string
	prefix string
	start  string // the directory the listing starts from (see checkPrefix)
}

// newJobSource returns the source of a job over bucket and prefix; a bad
// prefix is an InvalidArgument error.
func (n *Node) newJobSource(bucket, prefix string) (*jobSource, error) {
	start, err := checkPrefix(bucket, prefix)
	if err != nil {
		return nil, insitu.Errorf(insitu.InvalidArgument, "job spec: prefix: %w", err)
	}
	return &jobSource{n: n, bucket: bucket, prefix: prefix, start: start}, nil
}

// Objects lists the objects the node owns, in bytewise key order, with
// Path set to the object's file; each directory is taken as it is when
// the listing reads it, under the map of that moment. A bucket the node
// holds nothing of lists nothing. A directory that cannot be read is
// yielded as an error, and the listing goes on.
func (s *jobSource) Objects(ctx context.Context) iter.Seq2[insitu.Object, error] {
	return func(yield func(insitu.Object, error) bool) {
		if err := ctx.Err(); err != nil {
			yield(insitu.Object{}, err)
			return
		}
		fi, err := s.n.root.Lstat(s.bucket)
		switch {
		case errors.Is(err, fs.ErrNotExist) || err == nil && !fi.IsDir():
			return // no such bucket (a link is none)
		case err != nil:
			yield(insitu.Object{}, s.dirError("", err))
			return
		}
		w := jobWalker{s: s, l: lister{n: s.n, bucket: s.bucket, prefix: s.prefix}, yield: yield}
		w.walk(ctx, s.start)
	}
}

// jobWalker lists a job's objects for one call of Objects.
type jobWalker struct {
	s     *jobSource
	l     lister // for its candidate rules
	yield func(insitu.Object, error) bool
}

// walk lists the directory rel ("" or a key prefix ending in "/") of the
// bucket; it reports false when the listing must end.
func (w *jobWalker) walk(ctx context.Context, rel string) bool {
	if err := ctx.Err(); err != nil {
		w.yield(insitu.Object{}, err)
		return false
	}
	n, dir := w.s.n, filepath.FromSlash(w.s.bucket+"/"+rel)
	if rel != "" {
		// A directory swapped for a link since its parent was read is
		// not walked into.
		if fi, err := n.root.Lstat(dir); err != nil || !fi.IsDir() {
			return true
		}
	}
	d, err := n.root.Open(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || rel != "" && isNotDir(err) {
			return true // a prefix directory that does not exist, or removed
		}
		return w.yield(insitu.Object{}, w.s.dirError(rel, err))
	}
	ents, err := d.ReadDir(-1)
	d.Close()
	if err != nil && !w.yield(insitu.Object{}, w.s.dirError(rel, err)) {
		return false
	} // and list the entries read before the error
	// The directory's objects are taken as they are now, before any is
	// yielded: what the job then does to them does not change the listing.
	m := n.Map()
	type entry struct {
		obj insitu.Object
		dir string // a subdirectory's sort key, or ""
	}
	list := make([]entry, 0, len(ents))
	for i, e := range ents {
		if i%scanChunk == scanChunk-1 && ctx.Err() != nil {
			w.yield(insitu.Object{}, ctx.Err())
			return false
		}
		c, ok := w.l.candidate(rel, e)
		switch {
		case !ok:
		case c.dir:
			list = append(list, entry{dir: c.sortKey})
		default:
			name := insitu.Name{Bucket: w.s.bucket, Key: rel + c.sortKey}
			if !m.Owns(n.id, name) {
				continue // a copy left behind by a map change
			}
			list = append(list, entry{obj: insitu.Object{Name: name, Size: c.info.Size(), Owner: n.id, Path: n.Path(name), Version: atomicfile.Version(c.info)}})
		}
	}
	ents = nil
	sortKey := func(e entry) string {
		if e.dir != "" {
			return e.dir
		}
		return e.obj.Name.Key[len(rel):]
	}
	slices.SortFunc(list, func(a, b entry) int { return strings.Compare(sortKey(a), sortKey(b)) })
	for _, e := range list {
		if e.dir != "" {
			if !w.walk(ctx, rel+e.dir) {
				return false
			}
			continue
		}
		if !w.yield(e.obj, nil) {
			return false
		}
	}
	return true
}

// dirError is the error of reading the directory rel of the bucket.
func (s *jobSource) dirError(rel string, err error) error {
	return &insitu.Error{Code: fserr.Code(err), Name: insitu.Name{Bucket: s.bucket}, Msg: "listing " + s.bucket + "/" + rel, Err: err}
}

// Open opens obj's file through the store's root; see [Node.openInput].
func (s *jobSource) Open(ctx context.Context, obj insitu.Object) (io.ReadCloser, error) {
	return s.n.openInput(ctx, obj.Name)
}

// inputFile checks that name is an input that a job of this node may read
// now: a name the node owns under its current map (else NotOwner), whose
// file in the store is a regular file, reached through the store's root.
// A symbolic link, whether it points in the store or out, or a path that
// leaves the store is refused with PermissionDenied; so is a special file
// (a FIFO, a device, a socket). A missing file or a directory is NotFound.
func (n *Node) inputFile(ctx context.Context, name insitu.Name) (fs.FileInfo, error) {
	if err := n.own(n.Map(), name); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	fi, err := n.root.Lstat(filepath.FromSlash(relPath(name)))
	if err != nil {
		return nil, n.fileError(name, err, false)
	}
	switch mode := fi.Mode(); {
	case mode.IsRegular():
		return fi, nil
	case mode.IsDir():
		return nil, &insitu.Error{Code: insitu.NotFound, Name: name, Msg: "no such object"}
	case mode&fs.ModeSymlink != 0:
		return nil, &insitu.Error{Code: insitu.PermissionDenied, Name: name,
			Msg: "the object's file in the store is a symbolic link, which a node never reads as an object"}
	default:
		return nil, &insitu.Error{Code: insitu.PermissionDenied, Name: name,
			Msg: "the object's file in the store is not a regular file (" + mode.Type().String() + ")"}
	}
}

// openInput opens the file of a job's input, name, through the store's
// root, after the checks of [Node.inputFile]. The open does not block (a
// FIFO swapped in is not waited on), and the file opened must be the one
// checked: a file swapped for a link or for another file in between is
// refused with PermissionDenied.
func (n *Node) openInput(ctx context.Context, name insitu.Name) (*os.File, error) {
	if err := n.own(n.Map(), name); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// The file as stored, opened in two system calls when nothing about
	// it needs telling: a regular file, reached through no link.
	if f, _, ok := n.files.OpenNoFollow(relPath(name)); ok {
		return f, nil
	}
	fi, err := n.inputFile(ctx, name)
	if err != nil {
		return nil, err
	}
	f, err := n.root.OpenFile(filepath.FromSlash(relPath(name)), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, n.fileError(name, err, false)
	}
	ofi, err := f.Stat()
	if err != nil || !os.SameFile(fi, ofi) || !ofi.Mode().IsRegular() {
		f.Close()
		return nil, &insitu.Error{Code: insitu.PermissionDenied, Name: name,
			Msg: "the object's file in the store changed while it was opened (a link or another file swapped in)"}
	}
	return f, nil
}

// confine wraps a job's transform so that it gets only inputs that pass
// [Node.inputFile] just before it runs: the node owns them, and their
// Path is a regular file of the store, not a link that leads out of it.
// The wrapper is a DirectTransform when t is one.
//
// An embedded transform (embedded: it runs in this process) gets more:
// the input opened once, through the store's root, as Input.Body, and an
// Input.Path that names that open file (/proc/<pid>/fd/<n> on Linux), so
// that a transform that opens the path itself, or a tool it starts (such
// as ffmpeg), reads exactly the file checked, whatever the name leads to
// by then. A transform server (a sidecar) is sent the store path and
// confines it itself, as its ServerOptions.Roots say.
//
// The wrapper is an [insitu.BatchTransform] when t is one, so that the
// job's runner hands it batches; each input of a batch is checked and
// opened as above.
func (n *Node) confine(t insitu.Transform, embedded bool) insitu.Transform {
	c := confined{n: n, t: t, embedded: embedded}
	if d, ok := t.(insitu.DirectTransform); ok {
		return confinedDirect{confined: c, d: d}
	}
	if b, ok := t.(insitu.BatchTransform); ok {
		return confinedBatch{confined: c, b: b}
	}
	return c
}

type confined struct {
	n        *Node
	t        insitu.Transform
	embedded bool
}

// input returns what the transform gets for in, after the checks, and
// the function that releases it once the transform has returned.
func (c confined) input(ctx context.Context, in *insitu.Input) (*insitu.Input, func(), error) {
	if !c.embedded {
		if _, err := c.n.inputFile(ctx, in.Name); err != nil {
			return nil, nil, err
		}
		return in, func() {}, nil
	}
	f, err := c.n.openInput(ctx, in.Name)
	if err != nil {
		return nil, nil, err
	}
	opened := *in
	opened.Body = f
	if p := fdPath(f); p != "" {
		opened.Path = p
	}
	return &opened, func() { f.Close() }, nil
}

func (c confined) Transform(ctx context.Context, in *insitu.Input, out io.Writer) error {
	opened, release, err := c.input(ctx, in)
	if err != nil {
		return err
	}
	defer release()
	return c.scrub(in, opened, c.t.Transform(ctx, opened, out))
}

// scrub returns err with the path of opened's file (/proc/<pid>/fd/<n>,
// which a transform's error may quote) replaced by the object's name, as
// the node's errors name objects; the error unwraps to err.
func (c confined) scrub(in, opened *insitu.Input, err error) error {
	if err == nil || opened.Path == in.Path || opened.Path == "" {
		return err
	}
	if msg := err.Error(); strings.Contains(msg, opened.Path) {
		return &relativeError{err: err, msg: strings.ReplaceAll(msg, opened.Path, relPath(in.Name))}
	}
	return err
}

type confinedDirect struct {
	confined
	d insitu.DirectTransform
}

func (c confinedDirect) TransformTo(ctx context.Context, in *insitu.Input, dst insitu.Destination) (insitu.PutResult, error) {
	opened, release, err := c.input(ctx, in)
	if err != nil {
		return insitu.PutResult{}, err
	}
	defer release()
	res, err := c.d.TransformTo(ctx, opened, dst)
	return res, c.scrub(in, opened, err)
}

type confinedBatch struct {
	confined
	b insitu.BatchTransform
}

// TransformBatch checks and opens every input of the batch as Transform
// does one, and releases them once the batch call has returned (its
// outputs, by the contract, no longer read them). An input that fails
// its check fails the batch, so that the runner does each input alone
// and exactly that one fails, with its own error.
func (c confinedBatch) TransformBatch(ctx context.Context, ins []*insitu.Input) ([]io.ReadCloser, error) {
	opened := make([]*insitu.Input, 0, len(ins))
	var releases []func()
	defer func() {
		for _, release := range releases {
			release()
		}
	}()
	for _, in := range ins {
		o, release, err := c.input(ctx, in)
		if err != nil {
			return nil, err
		}
		opened = append(opened, o)
		releases = append(releases, release)
	}
	outs, err := c.b.TransformBatch(ctx, opened)
	for i := range ins {
		err = c.scrub(ins[i], opened[i], err)
	}
	return outs, err
}
