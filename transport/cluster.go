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

// ClusterOptions configure [Cluster]. The zero value (or nil) gives the
// defaults each field documents.
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
	// Logger receives the clients' log records. Default: none (a
	// discarding logger).
	Logger *slog.Logger
}

// ClusterTransform runs a transform on the transform servers next to the
// storage nodes of a cluster ("remote mode"): each object goes to the
// server next to its owner (the TransformURL of the owner's entry in the
// cluster map), which reads the bytes from the owner itself — over
// loopback, or from the owner's disk — so that the caller sends and
// receives only control messages. With [ClusterTransform.TransformTo]
// the server also puts the output straight to the node that owns the
// output's name, so that neither the input nor the output passes through
// the caller: pipeline.Run does that with Options.DirectPut and
// sink.Cluster (an [insitu.DirectSink]).
//
// Make one with [Cluster]; close it with [ClusterTransform.Close]. It
// keeps one pooled [Client] per transform server, dialed on first use. It
// is safe for concurrent use.
type ClusterTransform struct {
	c    *locality.Client
	opts ClusterOptions

	mu      sync.Mutex
	clients map[string]*clusterClient // by transform server URL
	closed  bool
}

type clusterClient struct {
	mu sync.Mutex
	c  *Client
}

var _ insitu.DirectTransform = (*ClusterTransform)(nil)

// Cluster returns the transform that the transform servers next to the
// nodes of c's cluster run (see [ClusterTransform]). It follows c's map
// (source.Cluster refreshes it at each listing) and authenticates with
// c's secret: to the transform servers with tokens of the secret derived
// from it ([locality.Secret.TransformSecret]), and each request carries a
// token that lets the server read that one input from its owner
// ([locality.Client.ObjectToken]); never the cluster secret's own
// administrative tokens.
// A nil client or an unknown mode is an [insitu.InvalidArgument] error.
func Cluster(c *locality.Client, opts *ClusterOptions) (*ClusterTransform, error) {
	if c == nil {
		return nil, insitu.Errorf(insitu.InvalidArgument, "transport.Cluster: nil client")
	}
	t := &ClusterTransform{c: c, clients: make(map[string]*clusterClient)}
	if opts != nil {
		t.opts = *opts
	}
	if int(t.opts.Mode) >= len(modeNames) {
		return nil, insitu.Errorf(insitu.InvalidArgument, "transport.Cluster: unknown transport mode %d", uint8(t.opts.Mode))
	}
	return t, nil
}

// Mode returns the transport to the servers.
func (t *ClusterTransform) Mode() Mode { return t.opts.Mode }

// Transform has the server next to in's owner transform it and writes the
// output to out: the input does not pass through the caller (but with
// HPush and no LocalPath), the output does.
func (t *ClusterTransform) Transform(ctx context.Context, in *insitu.Input, out io.Writer) error {
	c, rin, err := t.route(ctx, in)
	if err != nil {
		return err
	}
	return c.Transform(ctx, rin, out)
}

// TransformTo has the server next to in's owner transform it and put the
// output to dst itself, and returns what dst stored. Only control messages
// pass through the caller (but with HPush and no LocalPath, which sends
// the input).
func (t *ClusterTransform) TransformTo(ctx context.Context, in *insitu.Input, dst insitu.Destination) (insitu.PutResult, error) {
	c, rin, err := t.route(ctx, in)
	if err != nil {
		return insitu.PutResult{}, err
	}
	return c.TransformTo(ctx, rin, dst)
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

// owner returns the node that owns obj: obj.Owner when the map has it,
// else the map's owner of its name.
func (t *ClusterTransform) owner(obj insitu.Object) (locality.Node, error) {
	m := t.c.Map()
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
// its file on the owner's disk.
func (t *ClusterTransform) route(ctx context.Context, in *insitu.Input) (*Client, *insitu.Input, error) {
	owner, err := t.owner(in.Object)
	if err != nil {
		return nil, nil, insitu.WithName(err, in.Name)
	}
	if owner.TransformURL == "" {
		return nil, nil, insitu.WithName(insitu.Errorf(insitu.InvalidArgument,
			"node %s, the owner, has no transform server (its map entry has no transform_url)", owner.ID), in.Name)
	}
	rin := *in
	rin.Owner = owner.ID
	rin.Path = ""
	if t.opts.LocalPath != nil {
		p, err := t.opts.LocalPath(rin.Object)
		if err != nil {
			return nil, nil, insitu.WithName(err, in.Name)
		}
		rin.Path = p
	}
	c, err := t.client(ctx, owner.TransformURL)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		return nil, nil, insitu.WithName(err, in.Name)
	}
	return c, &rin, nil
}

// client returns the client of the server at u, dialing it on first use.
// A failed dial is not kept: the next call dials again.
func (t *ClusterTransform) client(ctx context.Context, u string) (*Client, error) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil, errClientClosed
	}
	cc := t.clients[u]
	if cc == nil {
		cc = &clusterClient{}
		t.clients[u] = cc
	}
	t.mu.Unlock()

	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.c != nil {
		return cc.c, nil
	}
	c, err := Dial(ctx, u, &DialOptions{
		Mode:       t.opts.Mode,
		Pool:       t.opts.Pool,
		Secret:     t.c.Secret().TransformSecret(),
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

// sourceURL is the DialOptions.SourceURL of every client: the object's URL
// on its owner and a token that allows reading that object only.
func (t *ClusterTransform) sourceURL(obj insitu.Object) (string, string, error) {
	owner, err := t.owner(obj)
	if err != nil {
		return "", "", err
	}
	return locality.ObjectURL(owner, obj.Name), t.c.ObjectToken(locality.Read, obj.Name), nil
}
