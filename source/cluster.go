package source

import (
	"context"
	"errors"
	"io"
	"iter"
	"slices"
	"sync"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/locality"
)

// ClusterOptions configure [Cluster]. A nil *ClusterOptions lists every
// object of the bucket.
type ClusterOptions struct {
	// Prefix keeps only keys that start with it. Default "": every key.
	Prefix string
	// StartAfter keeps only keys that sort bytewise after it, to resume an
	// interrupted listing. Default "": from the first key.
	StartAfter string
	// PageSize is how many objects each node sends per listing request.
	// Memory holds at most two pages per node. Default (0):
	// locality.DefaultListLimit; at most locality.MaxListLimit.
	PageSize int
	// Transform, when set, names a chain of transforms that the nodes
	// know (by their names in node.Options.Transforms), run on each
	// object's owner as it is read (locality.Client.GetTransformed): Open
	// then returns the chain's output, verified against the checksum the
	// owner sends after it, and only that output crosses the network. The
	// listing is unchanged but for Size, -1: an output's size is known
	// only at its end. Default: nil, the objects' bytes as stored.
	Transform []string
	// TransformArgs reach every stage of Transform. Default "".
	TransformArgs string
}

// ClusterSource is a bucket spread over the storage nodes of a cluster.
// Make one with [Cluster]. A ClusterSource is safe for concurrent use.
type ClusterSource struct {
	c      *locality.Client
	bucket string
	opts   ClusterOptions
}

// Cluster returns the source of the objects of bucket on the nodes that c
// talks to.
//
// Objects lists every node of the client's map in parallel, page by page,
// and merges the pages into one listing in bytewise key order; each node
// has at most two pages in memory (one being read, the next being
// fetched), whatever the size of the bucket. Each object comes with its
// Size and its Owner, the node that stores it; Path is "" (the bytes are
// on a node, maybe on another machine). An object a node still holds but
// no longer owns under its map (left behind by a map change) is not
// listed: its node would refuse to serve it. A node that has nothing in
// the bucket lists nothing; a node that fails is yielded as an error
// naming it, and the others are still listed. Open reads an object from
// its owner, or with Transform, reads the output of a chain of transforms
// run on its owner.
//
// A nil c, an invalid bucket or a negative PageSize is an InvalidArgument
// error.
func Cluster(c *locality.Client, bucket string, opts *ClusterOptions) (*ClusterSource, error) {
	s := &ClusterSource{c: c, bucket: bucket}
	if opts != nil {
		s.opts = *opts
	}
	switch {
	case c == nil:
		return nil, insitu.Errorf(insitu.InvalidArgument, "source.Cluster: nil client")
	case s.opts.PageSize < 0:
		return nil, insitu.Errorf(insitu.InvalidArgument, "source.Cluster: negative PageSize %d", s.opts.PageSize)
	case len(s.opts.Transform) == 0 && s.opts.TransformArgs != "":
		return nil, insitu.Errorf(insitu.InvalidArgument, "source.Cluster: TransformArgs without a Transform")
	}
	s.opts.Transform = slices.Clone(s.opts.Transform)
	if err := insitu.ValidateBucket(bucket); err != nil {
		return nil, err
	}
	return s, nil
}

// Bucket returns the bucket the source lists.
func (s *ClusterSource) Bucket() string { return s.bucket }

// Open reads obj from its owner under the client's map. An empty bucket in
// obj.Name means the source's bucket.
func (s *ClusterSource) Open(ctx context.Context, obj insitu.Object) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	name := obj.Name
	if name.Bucket == "" {
		name.Bucket = s.bucket
	}
	if len(s.opts.Transform) > 0 {
		rc, _, err := s.c.GetTransformed(ctx, name, s.opts.Transform, s.opts.TransformArgs)
		return rc, err
	}
	rc, _, err := s.c.Get(ctx, name)
	return rc, err
}

// Objects lists the bucket across the nodes; see [Cluster]. Each call
// refreshes the client's map from the nodes first (so a node added since
// is listed), then lists afresh. Breaking out of the loop stops every
// request and leaves no goroutine behind.
func (s *ClusterSource) Objects(ctx context.Context) iter.Seq2[insitu.Object, error] {
	return func(yield func(insitu.Object, error) bool) {
		if err := ctx.Err(); err != nil {
			yield(insitu.Object{}, err)
			return
		}
		// A map that cannot be refreshed (every node down) is listed as
		// it is; the listing then says which nodes failed.
		_, _ = s.c.RefreshMap(ctx)

		ctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		defer func() {
			cancel()
			wg.Wait()
		}()
		m := s.c.Map()
		var cursors []*cursor
		for _, n := range m.Nodes() {
			cur := &cursor{s: s, node: n}
			cur.fetch(ctx, &wg, s.opts.StartAfter)
			cursors = append(cursors, cur)
		}
		// Load every node's first page, then merge.
		live := cursors[:0]
		for _, cur := range cursors {
			ok, err := cur.load(ctx, &wg)
			if err != nil {
				if ctx.Err() != nil {
					yield(insitu.Object{}, ctx.Err())
					return
				}
				if !yield(insitu.Object{}, err) {
					return
				}
				continue
			}
			if ok {
				live = append(live, cur)
			}
		}
		last := ""
		for len(live) > 0 {
			best := 0
			for i := 1; i < len(live); i++ {
				if live[i].key() < live[best].key() {
					best = i
				}
			}
			cur := live[best]
			obj := cur.page.Objects[cur.i]
			if len(s.opts.Transform) > 0 {
				obj.Size = -1 // the output's
			}
			if obj.Name.Key != last { // two nodes that both claim a key: the first wins
				last = obj.Name.Key
				if !yield(obj, nil) {
					return
				}
			}
			ok, err := cur.next(ctx, &wg)
			if err != nil {
				if ctx.Err() != nil {
					yield(insitu.Object{}, ctx.Err())
					return
				}
				if !yield(insitu.Object{}, err) {
					return
				}
			}
			if !ok {
				live = append(live[:best], live[best+1:]...)
			}
		}
	}
}

// cursor walks one node's listing: the current page, and the next one
// being fetched in the background.
type cursor struct {
	s       *ClusterSource
	node    locality.Node
	page    *locality.ListPage // only the objects the node owns
	i       int
	pending chan pageResult // the fetch in flight, or nil
}

type pageResult struct {
	page *locality.ListPage
	err  error
}

func (c *cursor) key() string { return c.page.Objects[c.i].Name.Key }

// fetch starts fetching the page after the key after.
func (c *cursor) fetch(ctx context.Context, wg *sync.WaitGroup, after string) {
	ch := make(chan pageResult, 1) // never blocks the fetcher
	c.pending = ch
	opts := &locality.ListOptions{Prefix: c.s.opts.Prefix, After: after, Limit: c.s.opts.PageSize}
	wg.Go(func() {
		page, err := c.s.c.List(ctx, c.node, c.s.bucket, opts)
		ch <- pageResult{page, err}
	})
}

// load waits for the fetch in flight and makes its page current, starting
// the fetch of the page after it. It reports whether the cursor has an
// object; a node without the bucket has none.
func (c *cursor) load(ctx context.Context, wg *sync.WaitGroup) (bool, error) {
	for c.pending != nil {
		r := <-c.pending
		c.pending = nil
		if r.err != nil {
			if errors.Is(r.err, insitu.NotFound) {
				return false, nil
			}
			return false, r.err
		}
		if r.page.Next != "" {
			c.fetch(ctx, wg, r.page.Next)
		}
		owned := r.page.Objects[:0]
		for _, o := range r.page.Objects {
			if o.Owner == c.node.ID {
				owned = append(owned, o)
			}
		}
		r.page.Objects = owned
		if len(owned) > 0 {
			c.page, c.i = r.page, 0
			return true, nil
		}
	}
	return false, nil
}

// next moves to the next object, loading the next page when needed, and
// reports whether there is one.
func (c *cursor) next(ctx context.Context, wg *sync.WaitGroup) (bool, error) {
	c.i++
	if c.i < len(c.page.Objects) {
		return true, nil
	}
	c.page = nil
	return c.load(ctx, wg)
}
