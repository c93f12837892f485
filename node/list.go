package node

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/atomicfile"
	"github.com/insitu-data/insitu/internal/fserr"
	"github.com/insitu-data/insitu/locality"
)

// scanChunk is how many directory entries a listing reads at a time.
const scanChunk = 256

// List returns one page of the objects of bucket stored on this node, in
// bytewise key order ("a-b" before "a/b"), each with its size, its
// version (size and modification time in nanoseconds, "<size>-<ns>") and
// its owner under the node's map (objects left on the node by a map
// change are listed with their new owner). A bucket the node has never
// stored anything in is NotFound.
//
// Only regular files are objects: symbolic links (wherever they point),
// other special files, temporary files and files or directories whose
// names are not valid UTF-8 (no key can name them) are not listed, and a
// bucket directory that is a link is no bucket.
//
// Memory is bounded by the page size, whatever the size of a directory: a
// directory is read in chunks, keeping only the smallest entries that can
// make the page, and read again only when a page needs more of it.
func (n *Node) List(ctx context.Context, bucket string, opts *locality.ListOptions) (*locality.ListPage, error) {
	if err := n.enter(); err != nil {
		return nil, err
	}
	defer n.leave()
	return n.list(ctx, n.Map(), bucket, opts)
}

func (n *Node) list(ctx context.Context, m *locality.Map, bucket string, opts *locality.ListOptions) (*locality.ListPage, error) {
	if err := insitu.ValidateBucket(bucket); err != nil {
		return nil, err
	}
	var o locality.ListOptions
	if opts != nil {
		o = *opts
	}
	switch {
	case o.Limit < 0:
		return nil, insitu.Errorf(insitu.InvalidArgument, "negative listing limit %d", o.Limit)
	case o.Limit == 0:
		o.Limit = locality.DefaultListLimit
	case o.Limit > locality.MaxListLimit:
		o.Limit = locality.MaxListLimit
	}
	start, err := checkPrefix(bucket, o.Prefix)
	if err != nil {
		return nil, err
	}
	fi, err := n.root.Lstat(bucket)
	if err != nil || !fi.IsDir() {
		return nil, &insitu.Error{Code: insitu.NotFound, Name: insitu.Name{Bucket: bucket}, Msg: "node " + n.id + " has no such bucket"}
	}
	l := &lister{n: n, m: m, bucket: bucket, prefix: o.Prefix, after: o.After, limit: o.Limit}
	if err := l.walk(ctx, start); err != nil {
		return nil, err
	}
	page := &locality.ListPage{Node: n.id, MapVersion: m.Version(), Objects: l.out}
	if len(l.out) > o.Limit {
		page.Objects = l.out[:o.Limit]
		page.Next = page.Objects[o.Limit-1].Name.Key
	}
	if page.Objects == nil {
		page.Objects = []insitu.Object{}
	}
	return page, nil
}

// checkPrefix checks a listing prefix of bucket and returns the directory
// a listing starts from: the prefix up to its last "/", "" when it has
// none. Those directories are walked into, so they must be a valid key.
func checkPrefix(bucket, prefix string) (start string, err error) {
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		start = prefix[:i+1]
		if err := checkName(insitu.Name{Bucket: bucket, Key: prefix[:i]}); err != nil {
			return "", insitu.Errorf(insitu.InvalidArgument, "bad listing prefix %q: %w", prefix, err)
		}
	}
	if strings.IndexByte(prefix, 0) >= 0 {
		return "", insitu.Errorf(insitu.InvalidArgument, "bad listing prefix %q: a NUL byte", prefix)
	}
	return start, nil
}

// lister gathers one page: limit+1 objects, the extra one telling that
// there is a next page.
type lister struct {
	n      *Node
	m      *locality.Map
	bucket string
	prefix string
	after  string
	limit  int
	out    []insitu.Object
}

func (l *lister) full() bool { return len(l.out) > l.limit }

// candidate is a directory entry that may hold keys of the page. Its sort
// key is its name, plus "/" for a directory, so that sorting candidates
// sorts the keys under them bytewise.
type candidate struct {
	sortKey string
	dir     bool
	info    fs.FileInfo // an object's, as the directory's read found it
}

// walk adds the keys under rel ("" or a key prefix ending in "/") to the
// page, in order, until the page is full.
func (l *lister) walk(ctx context.Context, rel string) error {
	lower := "" // candidates already handled sort at or before it
	for !l.full() {
		cands, more, err := l.scan(ctx, rel, lower, l.limit+1-len(l.out))
		if err != nil {
			return err
		}
		for _, c := range cands {
			if l.full() {
				return nil
			}
			if c.dir {
				if err := l.walk(ctx, rel+c.sortKey); err != nil {
					return err
				}
				continue
			}
			name := insitu.Name{Bucket: l.bucket, Key: rel + c.sortKey}
			l.out = append(l.out, insitu.Object{Name: name, Size: c.info.Size(), Owner: l.m.Owner(name).ID, Version: atomicfile.Version(c.info)})
		}
		if !more || len(cands) == 0 {
			return nil
		}
		lower = cands[len(cands)-1].sortKey
	}
	return nil
}

// scan reads the directory rel and returns, sorted, its k smallest
// entries that sort after lower and may hold keys of the page, and
// whether it left out any such entry.
func (l *lister) scan(ctx context.Context, rel, lower string, k int) ([]candidate, bool, error) {
	d, err := l.n.root.Open(filepath.FromSlash(l.bucket + "/" + rel))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || rel != "" && isNotDir(err) {
			return nil, false, nil // a prefix directory that does not exist
		}
		return nil, false, &insitu.Error{Code: fserr.Code(err), Name: insitu.Name{Bucket: l.bucket}, Msg: "listing " + rel, Err: err}
	}
	defer d.Close()
	var (
		cands []candidate
		more  bool
		ceil  string // when more: every kept candidate sorts before it
	)
	trim := func() {
		slices.SortFunc(cands, func(a, b candidate) int { return strings.Compare(a.sortKey, b.sortKey) })
		if len(cands) > k {
			more = true
			ceil = cands[k].sortKey
			cands = cands[:k]
		}
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, false, err
		}
		ents, err := d.ReadDir(scanChunk)
		for _, e := range ents {
			c, ok := l.candidate(rel, e)
			if !ok || lower != "" && c.sortKey <= lower {
				continue
			}
			if more && c.sortKey >= ceil {
				continue // would not make the cut anyway
			}
			cands = append(cands, c)
			if len(cands) >= 2*k+scanChunk {
				trim()
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, false, &insitu.Error{Code: fserr.Code(err), Name: insitu.Name{Bucket: l.bucket}, Msg: "listing " + rel, Err: err}
		}
	}
	trim()
	return cands, more, nil
}

// candidate returns the entry e of directory rel as a candidate, if it is
// an object or a directory that may hold keys of the page.
func (l *lister) candidate(rel string, e fs.DirEntry) (candidate, bool) {
	name := e.Name()
	if atomicfile.IsTemp(name) || !utf8.ValidString(name) {
		// A name that is not valid UTF-8 cannot be (part of) a key.
		return candidate{}, false
	}
	switch t := e.Type(); {
	case t.IsDir():
		full := rel + name + "/"
		ok := (strings.HasPrefix(full, l.prefix) || strings.HasPrefix(l.prefix, full)) &&
			(full > l.after || strings.HasPrefix(l.after, full))
		return candidate{sortKey: name + "/", dir: true}, ok
	case t.IsRegular():
		full := rel + name
		if !strings.HasPrefix(full, l.prefix) || full <= l.after || len(full) > insitu.MaxKeyLen {
			return candidate{}, false
		}
		// A directory opened through the store's root (as every listing
		// opens one) stats each entry as it reads it, with fstatat on the
		// directory's descriptor, not following links: e.Info is that,
		// without opening the path again from the root (4 system calls
		// an object fewer).
		fi, err := e.Info()
		if err != nil || !fi.Mode().IsRegular() {
			return candidate{}, false // removed, or swapped for something else, since the read
		}
		return candidate{sortKey: name, info: fi}, true
	}
	return candidate{}, false // symbolic links and other special files are not objects
}

func isNotDir(err error) bool { return errors.Is(err, syscall.ENOTDIR) }
