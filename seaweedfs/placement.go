package seaweedfs

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/locality"
)

// DefaultMapTTL is the default [PlacementOptions.MapTTL].
const DefaultMapTTL = 5 * time.Second

// unknownOwnerRefresh is how often at most an object whose Owner the map
// lacks makes SourceURL read the topology again.
const unknownOwnerRefresh = time.Second

// PlacementOptions configure [NewPlacement]. A nil *PlacementOptions
// means the defaults.
type PlacementOptions struct {
	// MapTTL is how long [Placement.Map] gives the same map: the first
	// SourceURL after it passed reads the topology from the master again,
	// so that a volume server added or gone is followed within about
	// MapTTL. An object whose Owner is not in the map has it read again at
	// once (at most once a second). Default [DefaultMapTTL], 5s.
	MapTTL time.Duration
}

// Placement is where the objects of a SeaweedFS cluster live, for remote
// mode (transport.Placed, which takes any value with these methods): its
// Map is the [Topology]'s, one node per volume server with the transform
// server next to it, and SourceURL gives each object's bytes straight
// from a volume server that holds them. An object goes to the transform
// server next to its Owner (the volume server a [Source] lists it on),
// which fetches it from that volume server over loopback; with a [Sink]
// as the direct sink (an [insitu.NearSink]), its output is stored on that
// same volume server. Make one with [NewPlacement]. A Placement is safe
// for concurrent use.
type Placement struct {
	t    *Topology
	opts PlacementOptions

	m          atomic.Pointer[locality.Map]
	readAt     atomic.Int64 // UnixNano of the last read of the topology
	refreshing atomic.Bool
}

// NewPlacement returns the placement of t's cluster, after a first read of
// the topology (whose errors it returns: see [Topology.Map]). A nil t, a
// negative MapTTL are InvalidArgument errors.
func NewPlacement(ctx context.Context, t *Topology, opts *PlacementOptions) (*Placement, error) {
	if t == nil {
		return nil, insitu.Errorf(insitu.InvalidArgument, "seaweedfs.NewPlacement: nil topology")
	}
	p := &Placement{t: t}
	if opts != nil {
		p.opts = *opts
	}
	switch {
	case p.opts.MapTTL < 0:
		return nil, insitu.Errorf(insitu.InvalidArgument, "seaweedfs.NewPlacement: negative MapTTL")
	case p.opts.MapTTL == 0:
		p.opts.MapTTL = DefaultMapTTL
	}
	if _, err := p.Refresh(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// Map returns the last map read from the topology: one node per volume
// server, its ID the server's address (the Owner of the objects it
// holds). It does not block: [Placement.SourceURL] and
// [Placement.Refresh] read the topology again.
func (p *Placement) Map() *locality.Map { return p.m.Load() }

// Refresh reads the topology from the master now and returns its map,
// which Map gives from then on.
func (p *Placement) Refresh(ctx context.Context) (*locality.Map, error) {
	m, err := p.t.Map(ctx)
	if err != nil {
		return nil, err
	}
	p.m.Store(m)
	p.readAt.Store(time.Now().UnixNano())
	return m, nil
}

// maybeRefresh reads the topology again when the map is older than
// MapTTL, or lacks owner and is older than a second; one call at a time
// does, the others go on with the map they have. A failed read keeps the
// old map: the objects of servers it lists are still where they were.
func (p *Placement) maybeRefresh(ctx context.Context, owner string) {
	age := time.Since(time.Unix(0, p.readAt.Load()))
	stale := age > p.opts.MapTTL
	if !stale && owner != "" && age > unknownOwnerRefresh {
		_, known := p.Map().Node(owner)
		stale = !known
	}
	if !stale || !p.refreshing.CompareAndSwap(false, true) {
		return
	}
	defer p.refreshing.Store(false)
	if _, err := p.Refresh(ctx); err != nil {
		p.t.c.opts.Logger.Debug("seaweedfs: reading the topology again failed; the last map stays", "err", err)
	}
}

// SourceURL returns where a transform server GETs the bytes of obj, and
// no token (SeaweedFS's HTTP reads need none, unless its read JWT is
// configured, which this package does not support). For an object stored
// in one plain chunk (every object up to the filer's chunk size, 4 MiB by
// default, or [SinkOptions.MaxChunkMB]), the URL of that chunk on a volume
// server that holds it, http://<volume server>/<file id>: obj.Owner when
// it holds it, so that the transform server next to it fetches over
// loopback. For any other object (several chunks, a chunk manifest,
// encryption, bytes kept by the filer, empty), the object's URL on the
// filer, which assembles the bytes: correct, but not local.
//
// It reads the object's entry from the filer (and, when it does not
// remember them, its volume's servers from the master), bounded by the
// client's Timeout and ctx; the map too when it is due (see
// [PlacementOptions.MapTTL]). A missing object is NotFound; a chunk whose
// volume the master knows no live server of is Unavailable, as are a
// filer or master that do not answer.
func (p *Placement) SourceURL(ctx context.Context, obj insitu.Object) (url, token string, err error) {
	p.maybeRefresh(ctx, obj.Owner)
	c := p.t.c
	name := obj.Name
	path, err := c.Path(name)
	if err != nil {
		return "", "", err
	}
	e, err := c.object(ctx, path, name)
	if err != nil {
		return "", "", err
	}
	chunks, ok := e.direct()
	if !ok || len(chunks) != 1 {
		if e.isDir() {
			// The filer answers a directory's listing, not its bytes.
			return "", "", &insitu.Error{Code: insitu.Internal, Name: name,
				Msg: "the object is also a directory and is not one plain chunk: a transform server cannot fetch it (the filer would answer its listing)"}
		}
		return c.filerURL(path, nil), "", nil
	}
	ch := chunks[0]
	servers, err := c.locs.lookup(ctx, ch.volumeID(), name, false)
	if err != nil {
		return "", "", err
	}
	if len(servers) == 0 {
		return "", "", &insitu.Error{Code: insitu.Unavailable, Name: name,
			Msg: fmt.Sprintf("chunk %s: the master knows no live volume server that holds volume %d", ch.fileID(), ch.volumeID())}
	}
	server := byWeight(name, servers)[0]
	if slices.Contains(servers, obj.Owner) {
		server = obj.Owner
	}
	return "http://" + server + "/" + ch.fileID(), "", nil
}
