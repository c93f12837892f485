package loader

import (
	"context"
	"iter"
	"slices"
	"strings"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/locality"
	"github.com/insitu-data/insitu/source"
)

// BatchReader is a source that can read many objects in one call, such
// as the bucket of a cluster read with batch GETs ([Cluster]). A [Loader]
// over one reads Options.ReadBatch consecutive samples of its order per
// call.
type BatchReader interface {
	// ReadBatch yields the objects of names in order, as
	// locality.Client.BatchGet does: an entry with an error is about
	// its object alone; an error with a nil entry ends the batch.
	ReadBatch(ctx context.Context, names []insitu.Name) iter.Seq2[*locality.BatchEntry, error]
}

// ClusterSource is the bucket of a storage cluster, as source.Cluster
// lists and opens it, and also a [BatchReader]. Make one with [Cluster].
type ClusterSource struct {
	*source.ClusterSource
	c     *locality.Client
	batch locality.BatchGetOptions
}

// Cluster returns the source of bucket's objects on the nodes of c, as
// source.Cluster(c, bucket, opts) does, which a Loader reads in batches:
// one batch GET per owner for each Options.ReadBatch samples
// (locality.Client.BatchGet), each object read through opts.Transform on
// its owner, so that only the transform's output crosses the network.
// Its errors are those of source.Cluster.
func Cluster(c *locality.Client, bucket string, opts *source.ClusterOptions) (*ClusterSource, error) {
	src, err := source.Cluster(c, bucket, opts)
	if err != nil {
		return nil, err
	}
	s := &ClusterSource{ClusterSource: src, c: c}
	if opts != nil {
		s.batch.Transform = strings.Join(slices.Clone(opts.Transform), ",")
		s.batch.Args = opts.TransformArgs
	}
	return s, nil
}

// ReadBatch reads names with one batch GET per owner, through the
// source's transform; see locality.Client.BatchGet.
func (s *ClusterSource) ReadBatch(ctx context.Context, names []insitu.Name) iter.Seq2[*locality.BatchEntry, error] {
	if slices.ContainsFunc(names, func(n insitu.Name) bool { return n.Bucket == "" }) {
		names = slices.Clone(names)
		for i := range names {
			if names[i].Bucket == "" {
				names[i].Bucket = s.Bucket()
			}
		}
	}
	o := s.batch
	return s.c.BatchGet(ctx, names, &o)
}
