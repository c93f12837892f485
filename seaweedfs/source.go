package seaweedfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/insitu-data/insitu"
)

// DefaultPageSize is the default [SourceOptions.PageSize].
const DefaultPageSize = 1000

// SourceOptions configure [NewSource]. A nil *SourceOptions lists the
// whole bucket.
type SourceOptions struct {
	// Prefix keeps only keys that start with it. The listing starts in
	// the deepest directory the prefix names and skips the directories
	// that cannot hold such keys. Default "": every key.
	Prefix string
	// StartAfter keeps only keys that sort bytewise after it, to resume an
	// interrupted listing; directories whose keys all sort before it are
	// not listed. Default "": from the first key.
	StartAfter string
	// PageSize is the number of entries asked of the filer per listing
	// request (its limit parameter). A listing holds one page per
	// directory level it is in. Default [DefaultPageSize], 1,000.
	PageSize int
}

// Source is a bucket of a SeaweedFS cluster: the directory Root/bucket of
// its filer, listed recursively. Make one with [NewSource]. A Source is
// safe for concurrent use.
type Source struct {
	c      *Client
	bucket string
	opts   SourceOptions
}

// NewSource returns the source of the objects in the directory
// Root/bucket of c's filer.
//
// Objects lists the directory and its subdirectories, a page of
// PageSize entries at a time, in bytewise key order (a directory "a" sorts
// as "a/", after "a-b" and "a.txt"), whatever the filer's own order, which
// is by name within each directory. Each object has its Size and its
// Owner: the volume server (its "host:port", as the master names it) that
// holds most of its bytes; for replicas, the one of highest rendezvous
// weight for the object's name, stable from one listing to the next. An
// object with no bytes on a volume server (empty, kept in the filer's own
// store, or on volumes no live server holds now) has Owner "". Path is
// always "": the bytes are on a volume server, not in a file here. Where
// each volume is comes from the master, in one request per listing
// (/vol/status) and one per volume it did not list (/dir/lookup).
//
// Symbolic links are not objects. A directory that the filer made of a
// file when a key below it was written (SeaweedFS keeps both "a" and
// "a/b", as S3 does) is listed as an object and as a directory. A file
// whose path does not make a valid [insitu.Name] (a NUL byte, a key over
// insitu.MaxKeyLen bytes) is yielded as an InvalidArgument error that names
// the filer path, and the listing goes on; a directory all of whose keys
// would be invalid is one such error. Errors that end the listing, yielded
// last: a missing bucket directory is NotFound, a filer or master that
// does not answer Unavailable, a URL that is not a filer's or a master's
// InvalidArgument, and ctx.Err() when ctx ends.
//
// Open reads an object straight from the volume servers that hold its
// chunks, trying each server of a chunk in turn (the owner first); if
// none of the first chunk's answers, or the chunks are not plain ones (a
// chunk manifest, encryption), or the bytes are kept by the filer, it
// reads through the filer. A chunk whose volume the master knows no live
// server of is Unavailable at once. Once bytes have been returned, a
// failure is an error of the reader: Unavailable for a server that fails
// or stops, so the runner retries the object.
//
// An invalid bucket or a negative PageSize is an InvalidArgument error,
// as is a nil c.
func NewSource(c *Client, bucket string, opts *SourceOptions) (*Source, error) {
	if c == nil {
		return nil, insitu.Errorf(insitu.InvalidArgument, "seaweedfs.NewSource: nil client")
	}
	s := &Source{c: c, bucket: bucket}
	if opts != nil {
		s.opts = *opts
	}
	if err := insitu.ValidateBucket(bucket); err != nil {
		return nil, err
	}
	switch {
	case s.opts.PageSize < 0:
		return nil, insitu.Errorf(insitu.InvalidArgument, "seaweedfs.NewSource: PageSize is %d; it must be positive, or 0 for the default", s.opts.PageSize)
	case s.opts.PageSize == 0:
		s.opts.PageSize = DefaultPageSize
	}
	return s, nil
}

// Bucket returns the bucket the source lists.
func (s *Source) Bucket() string { return s.bucket }

// Client returns the source's client.
func (s *Source) Client() *Client { return s.c }

// Objects lists the bucket; see [NewSource] for the order, the owners and
// the errors. Each call lists afresh. The listing runs on the caller's
// goroutine, one request at a time: breaking out of the loop early leaves
// nothing running.
func (s *Source) Objects(ctx context.Context) iter.Seq2[insitu.Object, error] {
	return func(yield func(insitu.Object, error) bool) {
		l := &lister{s: s, ctx: ctx, yield: yield}
		err := l.run()
		if l.stopped {
			return
		}
		if err != nil {
			if cerr := ctx.Err(); cerr != nil {
				err = cerr
			}
			yield(insitu.Object{}, err)
		}
	}
}

// lister is one listing.
type lister struct {
	s       *Source
	ctx     context.Context
	yield   func(insitu.Object, error) bool
	stopped bool                // the consumer stopped
	vols    map[uint32][]string // volume → servers, for this listing
}

// pendingDir is a subdirectory waiting for its turn in key order.
type pendingDir struct {
	key  string // its key: the keys below it start with key + "/"
	path string // its filer path
}

// listing is the filer's JSON answer to a GET of a directory.
type listing struct {
	Path                  string
	Entries               []*entry
	LastFileName          string
	ShouldDisplayLoadMore bool
}

func (l *lister) run() error {
	if err := l.ctx.Err(); err != nil {
		return err
	}
	bname := insitu.Name{Bucket: l.s.bucket}
	dir := l.s.c.root + "/" + l.s.bucket
	e, err := l.s.c.metadata(l.ctx, dir, bname)
	if err != nil {
		if errors.Is(err, insitu.NotFound) {
			return &insitu.Error{Code: insitu.NotFound, Name: bname, Msg: "no bucket directory " + dir + " in the filer", Err: err}
		}
		return err
	}
	if !e.isDir() {
		return &insitu.Error{Code: insitu.NotFound, Name: bname, Msg: "the filer path " + dir + " is a file, not a bucket directory"}
	}
	// Start in the deepest directory the prefix names.
	keyPrefix := ""
	if i := strings.LastIndexByte(l.s.opts.Prefix, '/'); i >= 0 {
		keyPrefix = l.s.opts.Prefix[:i+1]
		if (insitu.Name{Key: keyPrefix[:i]}).Validate() != nil {
			return nil // no valid key has this prefix
		}
		dir += "/" + keyPrefix[:i]
		e, err := l.s.c.metadata(l.ctx, dir, bname)
		switch {
		case errors.Is(err, insitu.NotFound):
			return nil // the prefix's directory does not exist: nothing to list
		case err != nil:
			return err
		case !e.isDir():
			return nil // a file, not a directory: no key has this prefix
		}
	}
	return l.walk(dir, keyPrefix, true)
}

// walk lists the directory dir, whose keys start with keyPrefix, and its
// subdirectories, in key order. A directory that is gone is skipped,
// unless it is the first one (top).
func (l *lister) walk(dir, keyPrefix string, top bool) error {
	var pending []pendingDir // sorted by key + "/"
	// expand lists the pending directories whose keys sort before bound
	// (all of them when all is set).
	expand := func(bound string, all bool) error {
		for len(pending) > 0 && (all || pending[0].key+"/" < bound) {
			d := pending[0]
			pending = pending[1:]
			if err := l.walk(d.path, d.key+"/", false); err != nil || l.stopped {
				return err
			}
		}
		return nil
	}
	last := ""
	for {
		page, err := l.page(dir, last)
		if err != nil {
			if !top && errors.Is(err, insitu.NotFound) {
				return nil // removed while we listed
			}
			return err
		}
		for _, e := range page.Entries {
			name := e.base()
			if e.FullPath != strings.TrimSuffix(dir, "/")+"/"+name {
				return &insitu.Error{Code: insitu.Internal, Name: insitu.Name{Bucket: l.s.bucket},
					Msg: fmt.Sprintf("the filer listed %q in the directory %s", e.FullPath, dir)}
			}
			key := keyPrefix + name
			if err := expand(key, false); err != nil || l.stopped {
				return err
			}
			if e.hasBytes() {
				if err := l.object(key, e); err != nil || l.stopped {
					return err
				}
			}
			if e.isDir() && e.SymlinkTarget == "" && l.wanted(key+"/") {
				if err := l.checkDir(key, e.FullPath); err != nil {
					if !l.yield(insitu.Object{}, err) {
						l.stopped = true
						return nil
					}
					continue
				}
				i, _ := slices.BinarySearchFunc(pending, key, func(d pendingDir, k string) int {
					return strings.Compare(d.key+"/", k+"/")
				})
				pending = slices.Insert(pending, i, pendingDir{key: key, path: e.FullPath})
			}
		}
		if !page.ShouldDisplayLoadMore || len(page.Entries) == 0 {
			break
		}
		last = page.Entries[len(page.Entries)-1].base()
	}
	return expand("", true)
}

// page returns one page of the directory dir, after the name last.
func (l *lister) page(dir, last string) (*listing, error) {
	if err := l.ctx.Err(); err != nil {
		return nil, err
	}
	q := url.Values{"limit": {strconv.Itoa(l.s.opts.PageSize)}}
	if last != "" {
		q.Set("lastFileName", last)
	}
	var page listing
	p := dir
	if p == "" {
		p = "/"
	}
	what := "the filer's listing of " + p
	err := l.s.c.getFilerJSON(l.ctx, l.s.c.filerURL(p, q), acceptJSON, what, insitu.Name{Bucket: l.s.bucket}, &page)
	if err != nil {
		return nil, err
	}
	return &page, nil
}

// wanted reports whether keys starting with dirKey (a directory's key and
// "/") can pass the Prefix and StartAfter filters.
func (l *lister) wanted(dirKey string) bool {
	prefix, after := l.s.opts.Prefix, l.s.opts.StartAfter
	if !strings.HasPrefix(dirKey, prefix) && !strings.HasPrefix(prefix, dirKey) {
		return false
	}
	// Every key below sorts before StartAfter when StartAfter is greater
	// than dirKey without starting with it.
	return !(after > dirKey && !strings.HasPrefix(after, dirKey))
}

// checkDir returns the error of a directory below which no key can be
// valid, naming its filer path; nil when keys below it can be valid.
func (l *lister) checkDir(key, p string) error {
	problem := ""
	if err := (insitu.Name{Key: key}).Validate(); err != nil {
		problem = message(err)
	} else if len(key)+2 > insitu.MaxKeyLen {
		problem = fmt.Sprintf("every key below it is over the limit of %d bytes", insitu.MaxKeyLen)
	}
	if problem == "" {
		return nil
	}
	return &insitu.Error{Code: insitu.InvalidArgument, Name: insitu.Name{Bucket: l.s.bucket},
		Msg: fmt.Sprintf("the filer directory %q is not listed: its key is not a valid insitu key: %s", p, problem)}
}

// object yields the object of entry e under key, or the error of an
// invalid name.
func (l *lister) object(key string, e *entry) error {
	prefix, after := l.s.opts.Prefix, l.s.opts.StartAfter
	if !strings.HasPrefix(key, prefix) || key <= after {
		return nil
	}
	name := insitu.Name{Bucket: l.s.bucket, Key: key}
	if err := name.Validate(); err != nil {
		err = &insitu.Error{Code: insitu.InvalidArgument, Name: insitu.Name{Bucket: l.s.bucket},
			Msg: fmt.Sprintf("the filer path %q is not a valid insitu name: %s", e.FullPath, message(err))}
		if !l.yield(insitu.Object{}, err) {
			l.stopped = true
		}
		return nil
	}
	own, err := l.owner(name, e)
	if err != nil {
		return err
	}
	if !l.yield(insitu.Object{Name: name, Size: int64(e.FileSize), Owner: own, Version: e.version()}, nil) {
		l.stopped = true
	}
	return nil
}

// owner returns the owner of e (see [owner]), reading where its volumes
// are from the master once per listing (and per volume it did not list).
func (l *lister) owner(name insitu.Name, e *entry) (string, error) {
	if len(e.Chunks) == 0 {
		return "", nil
	}
	if l.vols == nil {
		vols, err := l.s.c.locs.snapshot(l.ctx, name)
		if err != nil {
			return "", err
		}
		l.vols = vols
	}
	for _, ch := range e.Chunks {
		vid := ch.volumeID()
		if _, ok := l.vols[vid]; ok || vid == 0 {
			continue
		}
		// A volume grown since the snapshot, or one /vol/status does not
		// show (erasure-coded).
		servers, err := l.s.c.locs.lookup(l.ctx, vid, name, true)
		if err != nil {
			return "", err
		}
		l.vols[vid] = servers
	}
	return owner(name, e.Chunks, func(vid uint32) []string { return l.vols[vid] }), nil
}

// message returns the text of an *insitu.Error without its name and code.
func message(err error) string {
	if e, ok := errors.AsType[*insitu.Error](err); ok {
		return e.Message()
	}
	return err.Error()
}

// Open returns a reader of the object's bytes: bucket/obj.Name.Key (the
// source's bucket: obj.Name.Bucket is not looked at). See [NewSource] for
// where it reads from. A missing object is NotFound, as is a directory.
func (s *Source) Open(ctx context.Context, obj insitu.Object) (io.ReadCloser, error) {
	name := insitu.Name{Bucket: s.bucket, Key: obj.Name.Key}
	p, err := s.c.Path(name)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	e, err := s.c.object(ctx, p, name)
	if err != nil {
		return nil, err
	}
	return s.c.open(ctx, name, p, e)
}

// Stat returns the object of name (of the source's bucket) with its Size
// and Owner, or a NotFound error.
func (s *Source) Stat(ctx context.Context, name insitu.Name) (insitu.Object, error) {
	return s.c.Stat(ctx, insitu.Name{Bucket: s.bucket, Key: name.Key})
}

// Stat returns the object of name with its Size and Owner (see
// [NewSource]), or a NotFound error for a missing object or a directory.
func (c *Client) Stat(ctx context.Context, name insitu.Name) (insitu.Object, error) {
	p, err := c.Path(name)
	if err != nil {
		return insitu.Object{}, err
	}
	if err := ctx.Err(); err != nil {
		return insitu.Object{}, err
	}
	e, err := c.object(ctx, p, name)
	if err != nil {
		return insitu.Object{}, err
	}
	obj := insitu.Object{Name: name, Size: int64(e.FileSize), Version: e.version()}
	if len(e.Chunks) > 0 {
		vols := map[uint32][]string{}
		for _, ch := range e.Chunks {
			vid := ch.volumeID()
			if _, ok := vols[vid]; ok || vid == 0 {
				continue
			}
			if vols[vid], err = c.locs.lookup(ctx, vid, name, false); err != nil {
				return insitu.Object{}, err
			}
		}
		obj.Owner = owner(name, e.Chunks, func(vid uint32) []string { return vols[vid] })
	}
	return obj, nil
}
