package nodetest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/atomicfile"
	"github.com/insitu-data/insitu/internal/fserr"
	"github.com/insitu-data/insitu/locality"
	"github.com/insitu-data/insitu/node"
	"github.com/insitu-data/insitu/transport"
)

// Options configure [Start]. A nil *Options means
// every default.
type Options struct {
	// Secret is the cluster secret of every node and of the cluster's
	// client. Default: 32 random bytes.
	Secret locality.Secret
	// Dir holds the nodes' store directories, Dir/<node ID>, which Close
	// keeps. Default: a new temporary directory, which Close removes.
	Dir string
	// MaxObjectSize is every node's Options.MaxObjectSize. Default (0):
	// DefaultMaxObjectSize.
	MaxObjectSize int64
	// Transforms are every node's Options.Transforms: the in-process
	// transforms that jobs may name. Default: none.
	Transforms map[string]insitu.Transform
	// Sidecar, when set, is the transform that a transform server next to
	// each node serves ("sidecar" and "remote" modes): Start starts,
	// for each node, a [transport.Server] of it on its own free port of
	// 127.0.0.1, that allows local-file input from the node's store
	// directory, authenticates with the secret derived for its node
	// ([locality.Secret.TransformSecret]), and puts to and
	// fetches from the nodes of the node's map only; it sets the node's
	// TransformURL in the map to it. Jobs with a [cluster.JobSpec] Server
	// and remote-mode clients ([transport.Cluster]) then reach it.
	// [Cluster.Close] stops them. Default: nil, no transform servers.
	Sidecar insitu.Transform
	// SidecarOptions are the options of every transform server, over
	// which Start sets Roots (the node's store directory), Secret
	// (the node's transform secret, never the cluster's), NodeMap (the node's map) and, when nil, Logger (the
	// cluster's, with a "sidecar" attribute). Default: the defaults of
	// [transport.ServerOptions].
	SidecarOptions *transport.ServerOptions
	// Logger receives the nodes' log lines (each with a "node" attribute)
	// and their HTTP servers' errors. Default: no logging.
	Logger *slog.Logger
	// Placement is the map's placement ([locality.ByKey]: a key has one
	// owner in every bucket); a map of another placement than the
	// default is version 2, made with [locality.Map.WithPlacement].
	// Default: [locality.ByName].
	Placement locality.Placement
	// NodeOptions, when set, is called with each node's ID and options
	// (set from the fields above) before the node is made, and may change
	// them: give one node other transforms or a smaller MaxObjectSize,
	// say. Default: nil.
	NodeOptions func(id string, o *node.Options)
}

// Cluster is a set of storage nodes running in this process, each with its
// own HTTP server on a free port of 127.0.0.1, sharing a map and a secret:
// a real cluster for tests, examples and experiments. Make one with
// [Start] and stop it with [Cluster.Close]. A Cluster is safe for
// concurrent use.
type Cluster struct {
	secret  locality.Secret
	dir     string
	tempDir bool
	m       *locality.Map
	client  *locality.Client
	log     *slog.Logger

	mu      sync.Mutex
	members []*member // in the order of their IDs' numbers: n1, n2, ...
	closed  bool
}

type member struct {
	node    *node.Node
	opts    node.Options // the node's options, for a restart
	srv     *http.Server
	served  chan struct{} // closed when Serve returns
	stopped bool
	old     []*node.Node // the nodes stopped before a restart
	side    *sidecar     // the transform server next to the node, or nil
}

// Start starts n nodes, with IDs n1 … nN, on free ports of
// 127.0.0.1, and returns once they all accept requests. Their map (version
// 1) lists them all; their secret authenticates every request. With
// Options.Sidecar it also starts a transform server next to each
// node, whose URL is the node's TransformURL in the map. ctx bounds the
// start only: the nodes run until [Cluster.Close].
//
// No request can hold a connection for ever: each HTTP server gives a
// request's headers 10 seconds to arrive and closes a kept-alive
// connection idle for 2 minutes, and each node bounds the bodies it reads
// and the responses it writes (node.Options.ProgressTimeout and
// ProgressBytes, which Options.NodeOptions may set).
//
// The nodes share this process's runtime: its GOMAXPROCS Ps, where nodes
// run as processes have that many each. A goroutine in an fsync holds
// its P until the runtime takes it back, and with every P so held nothing
// runs the goroutines that the network made ready; a job of many small
// objects whose outputs travel between the nodes then waits on that, and
// runs faster with GOMAXPROCS above the CPU count (1.35x its floor rather
// than 1.53–1.65x with twice the Ps, docs/BENCHMARKS.md, "Small
// objects"). Setting it is the program's choice, not this package's.
func Start(ctx context.Context, n int, opts *Options) (c *Cluster, err error) {
	if n < 1 {
		return nil, insitu.Errorf(insitu.InvalidArgument, "node: a cluster needs at least one node, not %d", n)
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	c = &Cluster{secret: o.Secret, dir: o.Dir, log: o.Logger}
	if len(c.secret) == 0 {
		c.secret = make(locality.Secret, 32)
		_, _ = rand.Read(c.secret) // crypto/rand.Read never fails
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.dir == "" {
		if c.dir, err = os.MkdirTemp("", "insitu-cluster-"); err != nil {
			return nil, insitu.Errorf(insitu.Unavailable, "node: cluster directory: %w", err)
		}
		c.tempDir = true
	}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()

	var lc net.ListenConfig
	lns := make([]net.Listener, 0, n)
	defer func() {
		if err != nil {
			for _, ln := range lns {
				ln.Close()
			}
		}
	}()
	var sideLns []net.Listener // the transform servers'
	defer func() {
		if err != nil {
			for _, ln := range sideLns {
				ln.Close()
			}
		}
	}()
	nodes := make([]locality.Node, n)
	for i := range nodes {
		ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
		if err != nil {
			return nil, insitu.Errorf(insitu.Unavailable, "node: listening on 127.0.0.1: %w", err)
		}
		lns = append(lns, ln)
		nodes[i] = locality.Node{ID: fmt.Sprintf("n%d", i+1), URL: "http://" + ln.Addr().String()}
		if o.Sidecar != nil {
			sln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
			if err != nil {
				return nil, insitu.Errorf(insitu.Unavailable, "node: listening on 127.0.0.1: %w", err)
			}
			sideLns = append(sideLns, sln)
			nodes[i].TransformURL = "http://" + sln.Addr().String()
		}
	}
	if c.m, err = locality.NewMap(1, nodes...); err != nil {
		return nil, err
	}
	if o.Placement != locality.ByName {
		if c.m, err = c.m.WithPlacement(o.Placement); err != nil {
			return nil, err
		}
	}
	if c.client, err = locality.NewClient(c.m, &locality.ClientOptions{Secret: c.secret}); err != nil {
		return nil, err
	}
	started := 0
	defer func() {
		if err != nil {
			lns = lns[started:] // the servers close the others
		}
	}()
	for i, ln := range lns {
		nopts := node.Options{
			Secret:        c.secret,
			MaxObjectSize: o.MaxObjectSize,
			Transforms:    o.Transforms,
			Logger:        c.log,
		}
		if o.NodeOptions != nil {
			o.NodeOptions(nodes[i].ID, &nopts)
		}
		nd, err := node.New(ctx, nodes[i].ID, filepath.Join(c.dir, nodes[i].ID), c.m, &nopts)
		if err != nil {
			return nil, err
		}
		mb := &member{node: nd, opts: nopts, srv: c.server(nd), served: make(chan struct{})}
		go func() {
			defer close(mb.served)
			_ = mb.srv.Serve(ln) // returns http.ErrServerClosed on Shutdown or Close
		}()
		c.mu.Lock()
		c.members = append(c.members, mb)
		c.mu.Unlock()
		started++
		if o.Sidecar != nil {
			sln := sideLns[0]
			sideLns = sideLns[1:]
			if mb.side, err = c.startSidecar(nd, o.Sidecar, o.SidecarOptions, sln); err != nil {
				return nil, err
			}
		}
	}
	for _, nd := range nodes {
		if err := c.client.Health(ctx, nd); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// startSidecar serves the transform server next to nd on ln; on error it
// closes ln.
func (c *Cluster) startSidecar(nd *node.Node, t insitu.Transform, tmpl *transport.ServerOptions, ln net.Listener) (*sidecar, error) {
	var o transport.ServerOptions
	if tmpl != nil {
		o = *tmpl
	}
	o.Roots = []string{nd.Dir()}
	o.Secret = c.secret.TransformSecret(nd.ID()) // never the cluster secret: see locality.Secret
	id := nd.ID()
	o.NodeMap = func() *locality.Map { return c.Node(id).Map() } // the node's, after a restart too
	log := c.log.With("sidecar", nd.ID())
	if o.Logger == nil {
		o.Logger = log
	}
	s := &sidecar{
		newHandler: func() (*transport.Server, error) { return transport.NewServer(t, &o) },
		log:        log,
		addr:       ln.Addr().String(),
	}
	if err := s.serve(ln); err != nil {
		return nil, err
	}
	return s, nil
}

// Map returns the cluster's map.
func (c *Cluster) Map() *locality.Map { return c.m }

// Secret returns the cluster secret.
func (c *Cluster) Secret() locality.Secret { return c.secret }

// Client returns a client of the cluster, with its map and secret.
func (c *Cluster) Client() *locality.Client { return c.client }

// Dir returns the directory that holds the nodes' store directories.
func (c *Cluster) Dir() string { return c.dir }

// Nodes returns the nodes, n1 first. A node stopped by [Cluster.StopNode]
// is shut down; [Cluster.RestartNode] makes a new one in its place.
func (c *Cluster) Nodes() []*node.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*node.Node, len(c.members))
	for i, mb := range c.members {
		out[i] = mb.node
	}
	return out
}

// Node returns the node with the given ID, or nil.
func (c *Cluster) Node(id string) *node.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, mb := range c.members {
		if mb.node.ID() == id {
			return mb.node
		}
	}
	return nil
}

// Put stores r under name on its owner, as [locality.Client.Put] does.
func (c *Cluster) Put(ctx context.Context, name insitu.Name, r io.Reader, size int64) (insitu.PutResult, error) {
	return c.client.Put(ctx, name, r, size)
}

// SeedDir puts every regular file under dir into bucket, each on its
// owner, with its path relative to dir ("/"-separated) as its key, and
// returns how many objects it stored. It stops at the first error.
func (c *Cluster) SeedDir(ctx context.Context, bucket, dir string) (int, error) {
	if err := insitu.ValidateBucket(bucket); err != nil {
		return 0, err
	}
	count := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return &insitu.Error{Code: fserr.Code(err), Msg: "seeding", Err: err}
		}
		if !d.Type().IsRegular() || atomicfile.IsTemp(d.Name()) {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return insitu.Errorf(insitu.Internal, "seeding %s: %w", p, err)
		}
		f, err := os.Open(p)
		if err != nil {
			return &insitu.Error{Code: fserr.Code(err), Msg: "seeding", Err: err}
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return &insitu.Error{Code: fserr.Code(err), Msg: "seeding", Err: err}
		}
		name := insitu.Name{Bucket: bucket, Key: filepath.ToSlash(rel)}
		if _, err := c.client.Put(ctx, name, f, fi.Size()); err != nil {
			return err
		}
		count++
		return nil
	})
	return count, err
}

// StopNode stops the node id: it shuts the node down ([node.Node.Shutdown]:
// its jobs are aborted) and stops its HTTP server, letting requests in
// flight finish until ctx ends and then cutting them off; a canceled ctx
// stops the node at once, as a crash would. The node's store stays, and
// [Cluster.RestartNode] brings it back.
func (c *Cluster) StopNode(ctx context.Context, id string) error {
	c.mu.Lock()
	var mb *member
	for _, m := range c.members {
		if m.node.ID() == id {
			mb = m
		}
	}
	if mb == nil || mb.stopped {
		c.mu.Unlock()
		return insitu.Errorf(insitu.NotFound, "node: no running node %q", id)
	}
	mb.stopped = true
	nd := mb.node
	c.mu.Unlock()
	// The server and the node wind down together: the node's jobs stop
	// while the server's requests finish.
	shut := make(chan error, 1)
	go func() { shut <- nd.Shutdown(ctx) }()
	err := mb.stop(ctx)
	// The cluster's client would otherwise send its next request to the
	// node on a connection that the stopped server closed, which it may
	// not have noticed yet.
	c.client.Close()
	serr := <-shut
	if cerr := ctx.Err(); cerr != nil && errors.Is(serr, cerr) {
		serr = nil // the stop was forced, as asked
	}
	return errors.Join(err, serr)
}

// RestartNode serves a node stopped by [Cluster.StopNode] again, on the
// same address, with the same store and options (and the map the stopped
// node last had): a new [node.Node], which [Cluster.Node] returns from
// then on. ctx bounds the restart.
func (c *Cluster) RestartNode(ctx context.Context, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var mb *member
	for _, m := range c.members {
		if m.node.ID() == id {
			mb = m
		}
	}
	switch {
	case c.closed:
		return insitu.Errorf(insitu.InvalidArgument, "node: the cluster is closed")
	case mb == nil:
		return insitu.Errorf(insitu.NotFound, "node: no node %q", id)
	case !mb.stopped:
		return insitu.Errorf(insitu.InvalidArgument, "node: node %q is running", id)
	}
	entry, _ := c.m.Node(id)
	u, err := url.Parse(entry.URL)
	if err != nil {
		return insitu.Errorf(insitu.Internal, "node: %w", err)
	}
	opts := mb.opts
	nd, err := node.New(ctx, id, mb.node.Dir(), mb.node.Map(), &opts)
	if err != nil {
		return err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", u.Host)
	if err != nil {
		_ = nd.Shutdown(ctx)
		return insitu.Errorf(insitu.Unavailable, "node: listening on %s again: %w", u.Host, err)
	}
	mb.old = append(mb.old, mb.node)
	mb.node = nd
	mb.srv = c.server(nd)
	mb.served = make(chan struct{})
	mb.stopped = false
	srv, served := mb.srv, mb.served
	go func() {
		defer close(served)
		_ = srv.Serve(ln)
	}()
	return nil
}

// The bounds of the HTTP servers that Start starts, for the nodes and
// their transform servers: the headers of a request must arrive within
// headerTimeout, and a kept-alive connection is closed after idleTimeout
// without a request. A node's handler bounds the bodies and responses
// itself (node.Options.ProgressTimeout).
const (
	headerTimeout = 10 * time.Second
	idleTimeout   = 2 * time.Minute
)

// server returns the HTTP server of a member node.
func (c *Cluster) server(nd *node.Node) *http.Server {
	return &http.Server{
		Handler:           nd.Handler(),
		ReadHeaderTimeout: headerTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          slog.NewLogLogger(c.log.With("node", nd.ID()).Handler(), slog.LevelWarn),
	}
}

func (mb *member) stop(ctx context.Context) error {
	err := mb.srv.Shutdown(ctx)
	if err != nil {
		err = mb.srv.Close()
	}
	<-mb.served
	return err
}

// Close stops every node at once, as a crash would: it cuts the
// connections of their HTTP servers and of the transform servers next to
// them, so the requests in flight fail, then shuts the nodes down
// ([node.Node.Shutdown]: their jobs are aborted), waits for what the nodes
// still run to return, and removes the cluster's directory if Start made
// it. Close is idempotent. To let requests in flight finish first, stop
// the nodes with [Cluster.StopNode] before.
func (c *Cluster) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	members := c.members
	c.mu.Unlock()

	now, cancel := context.WithCancel(context.Background())
	cancel()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, mb := range members {
		wg.Go(func() {
			var err error
			c.mu.Lock()
			running := !mb.stopped
			mb.stopped = true
			nodes := append(slices.Clone(mb.old), mb.node)
			c.mu.Unlock()
			if running {
				_ = mb.srv.Close() // its Serve returns http.ErrServerClosed
				<-mb.served
			}
			if mb.side != nil {
				err = mb.side.stop(now)
			}
			// Shutdown waits for the jobs (aborted) and the requests (cut
			// off) to return, which they do soon; it forces nothing.
			for _, nd := range nodes {
				err = errors.Join(err, nd.Shutdown(context.Background()))
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("node %s: %w", mb.node.ID(), err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if c.client != nil {
		c.client.Close()
	}
	if c.tempDir && strings.Contains(filepath.Base(c.dir), "insitu-cluster-") {
		errs = append(errs, os.RemoveAll(c.dir))
	}
	return errors.Join(errs...)
}
