package transport

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/locality"
)

// ClusterOptions configure [Cluster] and [Placed]. The zero value (or
// nil) gives the defaults each field documents.
type ClusterOptions struct {
	// Mode is the transport to each transform server. With [WS] (the
	// default) and [HPull] the client sends only a control message per
	// object, naming the object's URL on its owner node, and the server
	// fetches the bytes from there (on loopback when it runs next to the
	// node). With [HPush] the client sends the bytes itself, which it
	// must first read from the owner, so the payload passes through the
	// client, unless LocalPath is set.
	Mode Mode
	// LocalPath, when set, gives the path of an object's file on its
	// owner's disk (obj.Owner is set): the transform server next to the
	// owner then reads that file (local-file input, which its
	// ServerOptions.Roots must allow) instead of fetching the bytes over
	// HTTP. The LocalPath method of an embedded cluster (package
	// node/nodetest) is this function for its nodes. Default: nil, the
	// server fetches the object from its owner's object URL.
	LocalPath func(obj insitu.Object) (string, error)
	// Pool is [DialOptions.Pool] of the client of each transform server.
	// Default: DialOptions' default.
	Pool int
	// Timeout is [DialOptions.Timeout]: the time limit of one object, end
	// to end. Default: DialOptions' default, [DefaultTimeout].
	Timeout time.Duration
	// IOTimeout is [DialOptions.IOTimeout]: the bound on each dial, each
	// frame's write and each wait for a sign of life from a server.
	// Default: DialOptions' default, [DefaultIOTimeout].
	IOTimeout time.Duration
	// HTTPClient makes every request to the transform servers and the
	// WebSocket handshakes. Default: a client of each server's own (see
	// [DialOptions.HTTPClient]).
	HTTPClient *http.Client
	// Window is [DialOptions.Window]. Default: 256 KiB.
	Window int
	// Secret is the secret of every transform server, which [Placed]
	// authenticates with ([DialOptions.Secret]). [Cluster] ignores it and
	// uses, for the server next to each node, the one derived from its
	// client's cluster secret and the node's ID
	// ([locality.Secret.TransformSecret]). Default: none, for servers
	// without a secret.
	Secret locality.Secret
	// Logger receives the clients' log records. Default: none (a
	// discarding logger).
	Logger *slog.Logger
}

// Placement is where the objects of a store live and where the transform
// server next to each is, for [Placed]: an insitu cluster (through its
// node client, as [Cluster] does) or another store whose nodes hold
// objects (package seaweedfs). Its methods are called for every object,
// concurrently.
type Placement interface {
	// Map returns the store's nodes as a cluster map: an object goes to
	// the TransformURL of the node whose ID is its Owner, or, when the
	// map has no node of that ID, of the map's owner of its name
	// (Map.Owner). Map must not block on the network: it returns what
	// the placement knows now.
	Map() *locality.Map
	// SourceURL returns the URL a transform server GETs obj's bytes from
	// (the object on the node that holds it, so that the server next to
	// that node fetches over loopback), and the bearer token to send
	// there ("" for none). It is called for each object whose bytes the
	// server fetches ([WS] and [HPull] without a local path), before the
	// request is sent, with the object's context; an error fails the
	// object with the error's code.
	SourceURL(ctx context.Context, obj insitu.Object) (url, token string, err error)
}

// nodePlacement is the Placement of an insitu cluster: its node client's
// map, and each object at its URL on its owner, with a read token of it.
type nodePlacement struct{ c *locality.Client }

func (p nodePlacement) Map() *locality.Map { return p.c.Map() }

func (p nodePlacement) SourceURL(_ context.Context, obj insitu.Object) (string, string, error) {
	owner, err := ownerIn(p.c.Map(), obj)
	if err != nil {
		return "", "", err
	}
	return locality.ObjectURL(owner, obj.Name), p.c.ObjectToken(locality.Read, obj.Name), nil
}

// ClusterTransform runs a transform on the transform servers next to the
// nodes of a store ("remote mode"): each object goes to the server next
// to its owner (the TransformURL of the owner's entry in the map), which
// reads the bytes from the owner itself — over loopback, or from the
// owner's disk — so that the caller sends and receives only control
// messages. With [ClusterTransform.TransformTo] the server also puts the
// output straight to its destination, so that neither the input nor the
// output passes through the caller: pipeline.Run does that with
// Options.DirectPut and a direct sink ([insitu.DirectSink]) such as
// sink.Cluster, which puts each output to the node that owns its name,
// or a SeaweedFS sink, which keeps it on the volume server of its input.
//
// Make one with [Cluster] (an insitu cluster) or [Placed] (any
// [Placement]); close it with [ClusterTransform.Close]. It keeps one
// pooled [Client] per transform server, dialed on first use. It is safe
// for concurrent use.
type ClusterTransform struct {
	p    Placement
	opts ClusterOptions
	// secretFor, when set, gives the secret of the transform server next
	// to a node, by the node's ID; else every server's is opts.Secret.
	secretFor func(node string) locality.Secret

	mu      sync.Mutex
	clients map[string]*clusterClient // by transform server URL and node ID
	closed  bool

	// The source URLs resolved for the objects in flight, by object,
	// for the clients' DialOptions.SourceURL (which has no context):
	// route resolves each with the object's context first.
	srcMu sync.Mutex
	srcs  map[insitu.Object]*resolvedSource
}

// resolvedSource is the source URL and token of the objects in flight
// that are equal to one key.
type resolvedSource struct {
	url, token string
	refs       int
}

type clusterClient struct {
	mu sync.Mutex
	c  *Client
}

var _ insitu.DirectTransform = (*ClusterTransform)(nil)

// Cluster returns the transform that the transform servers next to the
// nodes of c's cluster run (see [ClusterTransform]): [Placed] over the
// cluster's nodes. It follows c's map (source.Cluster refreshes it at each
// listing) and authenticates with c's secret: to the transform servers
// with tokens of the secret derived from it for each server's node
// ([locality.Secret.TransformSecret]; opts.Secret is ignored), and each
// request carries a token that lets the server read that one input from
// its owner ([locality.Client.ObjectToken]); never the cluster secret's
// own administrative tokens.
// A nil client or an unknown mode is an [insitu.InvalidArgument] error.
func Cluster(c *locality.Client, opts *ClusterOptions) (*ClusterTransform, error) {
	if c == nil {
		return nil, insitu.Errorf(insitu.InvalidArgument, "transport.Cluster: nil client")
	}
	var o ClusterOptions
	if opts != nil {
		o = *opts
	}
	t, err := placed("transport.Cluster", nodePlacement{c}, &o)
	if err != nil {
		return nil, err
	}
	t.secretFor = c.Secret().TransformSecret
	return t, nil
}

// Placed returns the transform that the transform servers next to the
// nodes of p run (see [ClusterTransform]): each object goes to the server
// at the TransformURL of its owner in p.Map(), which fetches the bytes
// from p.SourceURL (in [WS] and [HPull]; from a local path with
// ClusterOptions.LocalPath; the caller sends them in [HPush] without
// one). The clients authenticate to the servers with
// ClusterOptions.Secret.
// A nil p or an unknown mode is an [insitu.InvalidArgument] error.
func Placed(p Placement, opts *ClusterOptions) (*ClusterTransform, error) {
	if p == nil {
		return nil, insitu.Errorf(insitu.InvalidArgument, "transport.Placed: nil placement")
	}
	return placed("transport.Placed", p, opts)
}

func placed(fn string, p Placement, opts *ClusterOptions) (*ClusterTransform, error) {
	t := &ClusterTransform{p: p, clients: make(map[string]*clusterClient), srcs: make(map[insitu.Object]*resolvedSource)}
	if opts != nil {
		t.opts = *opts
	}
	if int(t.opts.Mode) >= len(modeNames) {
		return nil, insitu.Errorf(insitu.InvalidArgument, "%s: unknown transport mode %d", fn, uint8(t.opts.Mode))
	}
	return t, nil
}

// Mode returns the transport to the servers.
func (t *ClusterTransform) Mode() Mode { return t.opts.Mode }

// Transform has the server next to in's owner transform it and writes the
// output to out: the input does not pass through the caller (but with
// HPush and no LocalPath), the output does.
func (t *ClusterTransform) Transform(ctx context.Context, in *insitu.Input, out io.Writer) error {
	c, rin, release, err := t.route(ctx, in)
	if err != nil {
		return err
	}
	defer release()
	return c.Transform(ctx, rin, out)
}

// TransformTo has the server next to in's owner transform it and put the
// output to dst itself, and returns what dst stored. Only control messages
// pass through the caller (but with HPush and no LocalPath, which sends
// the input).
//
// The result's Name is dst.Name when the destination's answer did not
// name the object (a SeaweedFS filer's does not).
func (t *ClusterTransform) TransformTo(ctx context.Context, in *insitu.Input, dst insitu.Destination) (insitu.PutResult, error) {
	c, rin, release, err := t.route(ctx, in)
	if err != nil {
		return insitu.PutResult{}, err
	}
	defer release()
	res, err := c.TransformTo(ctx, rin, dst)
	if err == nil && res.Name == (insitu.Name{}) {
		res.Name = dst.Name
	}
	return res, err
}

// Close closes the clients of every server. Calls after Close fail with
// [insitu.Canceled].
func (t *ClusterTransform) Close() error {
	t.mu.Lock()
	t.closed = true
	clients := t.clients
	t.clients = make(map[string]*clusterClient)
	t.mu.Unlock()
	for _, cc := range clients {
		cc.mu.Lock()
		if cc.c != nil {
			cc.c.Close()
		}
		cc.mu.Unlock()
	}
	return nil
}

// ownerIn returns the node of m that owns obj: obj.Owner when m has it,
// else m's owner of its name.
func ownerIn(m *locality.Map, obj insitu.Object) (locality.Node, error) {
	if n, ok := m.Node(obj.Owner); ok {
		return n, nil
	}
	if m.Len() == 0 {
		return locality.Node{}, insitu.Errorf(insitu.Unavailable, "the cluster map has no nodes")
	}
	return m.Owner(obj.Name), nil
}

// route returns the client of the server next to in's owner and the input
// to send it: in with its Owner resolved and, with LocalPath, the path of
// its file on the owner's disk. When the server is to fetch the bytes
// instead, it resolves their source URL (before it looks up the owner, so
// that a placement that refreshes its map then is followed at once) and
// holds it for the client until release is called.
func (t *ClusterTransform) route(ctx context.Context, in *insitu.Input) (*Client, *insitu.Input, func(), error) {
	fail := func(err error) (*Client, *insitu.Input, func(), error) {
		if ctx.Err() != nil {
			return nil, nil, nil, ctx.Err()
		}
		return nil, nil, nil, insitu.WithName(err, in.Name)
	}
	cp := *in
	rin := &cp
	rin.Path = ""
	var src *resolvedSource
	resolve := func() error {
		if t.opts.Mode == HPush || rin.Path != "" {
			return nil // the bytes travel, or the server reads the file
		}
		u, tok, err := t.p.SourceURL(ctx, in.Object)
		if err != nil {
			return err
		}
		src = &resolvedSource{url: u, token: tok}
		return nil
	}
	if t.opts.LocalPath == nil {
		if err := resolve(); err != nil {
			return fail(err)
		}
	}
	owner, err := ownerIn(t.p.Map(), in.Object)
	if err != nil {
		return fail(err)
	}
	if owner.TransformURL == "" {
		return fail(insitu.Errorf(insitu.InvalidArgument,
			"node %s, the owner, has no transform server (its map entry has no transform_url)", owner.ID))
	}
	rin.Owner = owner.ID
	if t.opts.LocalPath != nil {
		p, err := t.opts.LocalPath(rin.Object)
		if err != nil {
			return fail(err)
		}
		rin.Path = p
		if err := resolve(); err != nil {
			return fail(err)
		}
	}
	c, err := t.client(ctx, owner)
	if err != nil {
		return fail(err)
	}
	release := func() {}
	if src != nil {
		release = t.holdSource(rin.Object, src.url, src.token)
	}
	return c, rin, release, nil
}

// holdSource keeps the source URL and token of obj for the client's
// SourceURL callback until the returned release is called. Objects in
// flight that are equal share an entry (they are the same object, at one
// URL).
func (t *ClusterTransform) holdSource(obj insitu.Object, u, tok string) func() {
	t.srcMu.Lock()
	rs := t.srcs[obj]
	if rs == nil {
		rs = &resolvedSource{}
		t.srcs[obj] = rs
	}
	rs.url, rs.token = u, tok
	rs.refs++
	t.srcMu.Unlock()
	return func() {
		t.srcMu.Lock()
		if rs.refs--; rs.refs == 0 {
			delete(t.srcs, obj)
		}
		t.srcMu.Unlock()
	}
}

// client returns the client of the transform server next to owner,
// dialing it on first use. A failed dial is not kept: the next call dials
// again.
func (t *ClusterTransform) client(ctx context.Context, owner locality.Node) (*Client, error) {
	u := owner.TransformURL
	key := u + "\x00" + owner.ID // the secret depends on the node
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil, errClientClosed
	}
	cc := t.clients[key]
	if cc == nil {
		cc = &clusterClient{}
		t.clients[key] = cc
	}
	t.mu.Unlock()

	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.c != nil {
		return cc.c, nil
	}
	secret := t.opts.Secret
	if t.secretFor != nil {
		secret = t.secretFor(owner.ID)
	}
	c, err := Dial(ctx, u, &DialOptions{
		Mode:       t.opts.Mode,
		Pool:       t.opts.Pool,
		Secret:     secret,
		Timeout:    t.opts.Timeout,
		IOTimeout:  t.opts.IOTimeout,
		LocalFile:  t.opts.LocalPath != nil,
		SourceURL:  t.sourceURL,
		HTTPClient: t.opts.HTTPClient,
		Window:     t.opts.Window,
		Logger:     t.opts.Logger,
	})
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	closed := t.closed
	t.mu.Unlock()
	if closed { // Close ran while dialing
		c.Close()
		return nil, errClientClosed
	}
	cc.c = c
	return c, nil
}

// sourceURL is the DialOptions.SourceURL of every client: the URL and
// token that route resolved for the object with the object's context.
func (t *ClusterTransform) sourceURL(obj insitu.Object) (string, string, error) {
	t.srcMu.Lock()
	defer t.srcMu.Unlock()
	rs := t.srcs[obj]
	if rs == nil {
		return "", "", insitu.Errorf(insitu.Internal, "transport: no source URL was resolved for the object")
	}
	return rs.url, rs.token, nil
}
