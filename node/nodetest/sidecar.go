package nodetest

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/transport"
)

// sidecar is the transform server next to a node of an embedded cluster:
// a [transport.Server] behind its own HTTP server on 127.0.0.1.
type sidecar struct {
	newHandler func() (*transport.Server, error)
	log        *slog.Logger
	addr       string

	mu      sync.Mutex
	h       *transport.Server
	srv     *http.Server
	ln      *trackingListener
	served  chan struct{}
	stopped bool
}

// serve starts a new transform server on ln; on error it closes ln.
func (s *sidecar) serve(ln net.Listener) error {
	h, err := s.newHandler()
	if err != nil {
		ln.Close()
		return err
	}
	tl := &trackingListener{Listener: ln, conns: make(map[*trackedConn]struct{})}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: headerTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	served := make(chan struct{})
	s.mu.Lock()
	s.h, s.srv, s.ln, s.served, s.stopped = h, srv, tl, served, false
	s.mu.Unlock()
	go func() {
		defer close(served)
		_ = srv.Serve(tl) // http.ErrServerClosed once stopped
	}()
	return nil
}

// stop stops the server: gracefully (objects in flight finish, new ones
// are refused) until ctx ends, then at once. A ctx that is already done
// stops it at once, as a crash would: every connection is cut, WebSocket
// ones included, and the objects in flight are canceled.
func (s *sidecar) stop(ctx context.Context) error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return nil
	}
	s.stopped = true
	h, srv, ln, served := s.h, s.srv, s.ln, s.served
	s.mu.Unlock()

	crash := ctx.Err() != nil
	var err error
	if !crash {
		err = errors.Join(h.Shutdown(ctx), srv.Shutdown(ctx))
	}
	if crash || err != nil {
		srv.Close()
		ln.closeConns()
		// Cancel what is left; its connections are gone already.
		canceled, cancel := context.WithCancel(context.Background())
		cancel()
		_ = h.Shutdown(canceled)
	}
	<-served
	return err
}

// trackingListener keeps the connections it accepted until they close, so
// that a crash can cut them all, hijacked (WebSocket) ones included, which
// http.Server.Close leaves alone.
type trackingListener struct {
	net.Listener
	mu    sync.Mutex
	conns map[*trackedConn]struct{}
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, l: l}
	l.mu.Lock()
	l.conns[tc] = struct{}{}
	l.mu.Unlock()
	return tc, nil
}

func (l *trackingListener) closeConns() {
	l.mu.Lock()
	conns := make([]*trackedConn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

type trackedConn struct {
	net.Conn
	l *trackingListener
}

func (c *trackedConn) Close() error {
	c.l.mu.Lock()
	delete(c.l.conns, c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}

// sidecarOf returns the sidecar of node id.
func (c *Cluster) sidecarOf(id string) (*sidecar, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, insitu.Errorf(insitu.InvalidArgument, "node: the cluster is closed")
	}
	for _, mb := range c.members {
		if mb.node.ID() == id {
			if mb.side == nil {
				return nil, insitu.Errorf(insitu.InvalidArgument, "node: the cluster has no transform servers (Options.Sidecar is nil)")
			}
			return mb.side, nil
		}
	}
	return nil, insitu.Errorf(insitu.NotFound, "node: no node %q", id)
}

// StopSidecar stops the transform server next to node id: it refuses new
// objects and lets those in flight finish until ctx ends, then cuts its
// connections; a ctx that is already done stops it at once, as a crash
// would, so that the objects in flight fail at their clients with
// [insitu.Unavailable]. [Cluster.RestartSidecar] brings it back. A cluster
// without sidecars is an InvalidArgument error.
func (c *Cluster) StopSidecar(ctx context.Context, id string) error {
	s, err := c.sidecarOf(id)
	if err != nil {
		return err
	}
	return s.stop(ctx)
}

// RestartSidecar serves a transform server stopped by [Cluster.StopSidecar]
// again, new, on the same address; a running one is left as it is.
func (c *Cluster) RestartSidecar(ctx context.Context, id string) error {
	s, err := c.sidecarOf(id)
	if err != nil {
		return err
	}
	s.mu.Lock()
	stopped := s.stopped
	s.mu.Unlock()
	if !stopped {
		return nil
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.addr)
	if err != nil {
		return insitu.Errorf(insitu.Unavailable, "node: listening on %s again: %w", s.addr, err)
	}
	return s.serve(ln)
}

// LocalPath returns the file of obj on its owner's disk: the path that
// the transform server next to the owner reads in local-file mode. The
// owner is obj.Owner, or the map's owner of obj.Name when that is empty.
// It is the [transport.Options] LocalPath of a remote-mode client
// of this cluster. An owner not in the cluster is a NotFound error; an
// invalid name is InvalidArgument.
func (c *Cluster) LocalPath(obj insitu.Object) (string, error) {
	id := obj.Owner
	if id == "" {
		id = c.m.Owner(obj.Name).ID
	}
	nd := c.Node(id)
	if nd == nil {
		return "", insitu.Errorf(insitu.NotFound, "node: no node %q in the cluster", id)
	}
	p := nd.Path(obj.Name)
	if p == "" {
		return "", &insitu.Error{Code: insitu.InvalidArgument, Name: obj.Name, Msg: "not a name a node can store"}
	}
	return p, nil
}
