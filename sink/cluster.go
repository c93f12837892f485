package sink

import (
	"context"
	"io"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/locality"
)

// ClusterSink stores outputs on the storage nodes of a cluster by direct
// put: each output goes in one PUT straight to the node that owns its name
// under the client's map, never relayed through another node. A node that
// answers NotOwner makes the client bring the maps up to date and send
// again once (see [locality.Client]). Make one with [Cluster]. A
// ClusterSink is safe for concurrent use.
//
// It is an [insitu.DirectSink]: [ClusterSink.Destination] tells a
// transform that can deliver its output itself where to PUT it.
type ClusterSink struct {
	c *locality.Client
}

// Cluster returns the sink that puts outputs onto the nodes c talks to.
// Names must have a bucket: a node stores objects in buckets. A nil c is
// an InvalidArgument error.
func Cluster(c *locality.Client) (*ClusterSink, error) {
	if c == nil {
		return nil, insitu.Errorf(insitu.InvalidArgument, "sink.Cluster: nil client")
	}
	return &ClusterSink{c: c}, nil
}

// Client returns the sink's client.
func (s *ClusterSink) Client() *locality.Client { return s.c }

// Put stores r under name on its owner, atomically (see [insitu.Sink]),
// and returns the size, XXH64 checksum and owner that the node reports.
func (s *ClusterSink) Put(ctx context.Context, name insitu.Name, r io.Reader, size int64) (insitu.PutResult, error) {
	if err := ctx.Err(); err != nil {
		return insitu.PutResult{}, err
	}
	return s.c.Put(ctx, name, r, size)
}

// PutOrigin is [ClusterSink.Put], with origin recorded with the object on
// its owner (the PUT's Insitu-Origin header), atomically with the bytes:
// see [locality.Client.PutOrigin].
func (s *ClusterSink) PutOrigin(ctx context.Context, name insitu.Name, r io.Reader, size int64, origin insitu.Origin) (insitu.PutResult, error) {
	if err := ctx.Err(); err != nil {
		return insitu.PutResult{}, err
	}
	return s.c.PutOrigin(ctx, name, r, size, origin)
}

// Stat describes name's object on its owner (a HEAD request): name, size,
// owner and Origin (the origin recorded with it, "" for none). A missing
// object is NotFound.
func (s *ClusterSink) Stat(ctx context.Context, name insitu.Name) (insitu.Object, error) {
	if err := ctx.Err(); err != nil {
		return insitu.Object{}, err
	}
	return s.c.Head(ctx, name)
}

// Destination returns where to PUT name directly: the object URL on its
// owner under the client's current map, and a token that allows one PUT
// of name and nothing else, for the client's TokenTTL (see
// [locality.Client.ObjectToken]). The PUT is the node API's (see package node): one
// request with the bytes, answering {"size", "checksum", "owner"}. A
// NotOwner answer (HTTP 409) means the map changed: call
// [locality.Client.RefreshMap] (or fall back to Put, which does) and ask
// again. Whoever puts there sends the Destination's Origin, which the
// runner sets, as the request header Insitu-Origin: the node records it
// as PutOrigin does.
func (s *ClusterSink) Destination(ctx context.Context, name insitu.Name) (insitu.Destination, error) {
	if err := ctx.Err(); err != nil {
		return insitu.Destination{}, err
	}
	_, u, err := s.c.OwnerURL(name)
	if err != nil {
		return insitu.Destination{}, err
	}
	return insitu.Destination{Name: name, URL: u, Token: s.c.ObjectToken(locality.Write, name)}, nil
}

var (
	_ insitu.DirectSink = (*ClusterSink)(nil)
	_ insitu.OriginSink = (*ClusterSink)(nil)
)
