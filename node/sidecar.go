package node

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/cluster"
	"github.com/insitu-data/insitu/locality"
	"github.com/insitu-data/insitu/transport"
)

// sidecarKey identifies a pooled client: the server and how it is reached.
type sidecarKey struct {
	url       string
	mode      transport.Mode
	localFile bool
}

// sidecarPool holds a node's clients of the transform servers its jobs
// use ("sidecar" mode): one per server URL and way of reaching it, dialed
// by the first job that needs it and shared by the jobs after it, and
// closed when the node shuts down.
type sidecarPool struct {
	mu      sync.Mutex
	clients map[sidecarKey]*sidecarClient
	closed  bool // by closeAll: no more clients
}

type sidecarClient struct {
	dial    sync.Mutex // held while dialing
	c       *transport.Client
	refs    int  // jobs holding the client
	retired bool // out of the pool: close when refs reach 0
}

// acquire returns the pooled client of key, dialing it with dial when
// there is none yet, and the function that gives it back.
func (p *sidecarPool) acquire(ctx context.Context, key sidecarKey, dial func(context.Context) (*transport.Client, error)) (*transport.Client, func(), error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, nil, errPoolClosed
	}
	if p.clients == nil {
		p.clients = make(map[sidecarKey]*sidecarClient)
	}
	sc := p.clients[key]
	if sc == nil {
		sc = &sidecarClient{}
		p.clients[key] = sc
	}
	sc.refs++
	p.mu.Unlock()

	sc.dial.Lock()
	defer sc.dial.Unlock()
	p.mu.Lock()
	c := sc.c
	p.mu.Unlock()
	if c == nil {
		var err error
		if c, err = dial(ctx); err != nil {
			p.release(sc)
			return nil, nil, err
		}
		p.mu.Lock()
		closed := p.closed
		if !closed {
			sc.c = c
		}
		p.mu.Unlock()
		if closed {
			c.Close()
			p.release(sc)
			return nil, nil, errPoolClosed
		}
	}
	var once sync.Once
	return c, func() { once.Do(func() { p.release(sc) }) }, nil
}

func (p *sidecarPool) release(sc *sidecarClient) {
	p.mu.Lock()
	sc.refs--
	var c *transport.Client
	if sc.refs == 0 && sc.retired {
		c, sc.c = sc.c, nil
	}
	p.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

// retire takes key's client out of the pool: it is closed once the jobs
// and reads holding it let it go, and the next acquire dials anew.
func (p *sidecarPool) retire(key sidecarKey) {
	p.mu.Lock()
	sc := p.clients[key]
	var c *transport.Client
	if sc != nil {
		delete(p.clients, key)
		sc.retired = true
		if sc.refs == 0 {
			c, sc.c = sc.c, nil
		}
	}
	p.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

var errPoolClosed = insitu.Errorf(insitu.Unavailable, "the node is shut down")

// closeAll closes every client, whether jobs hold it or not (their
// objects in flight fail), and the pool: a later acquire fails.
func (p *sidecarPool) closeAll() {
	p.mu.Lock()
	p.closed = true
	var all []*transport.Client
	for k, sc := range p.clients {
		delete(p.clients, k)
		sc.retired = true
		if sc.c != nil {
			all = append(all, sc.c)
			sc.c = nil
		}
	}
	p.mu.Unlock()
	for _, c := range all {
		c.Close()
	}
}

// sidecarTransform returns the transform of a job with a server spec: the
// pooled client of the transform server at the TransformURL of this node's
// entry in its map, and the function that gives it back when the job ends.
// A node without a transform server is an InvalidArgument error; a server
// that cannot be reached is Unavailable. ctx and the node's DialTimeout
// bound the dial.
func (n *Node) sidecarTransform(ctx context.Context, spec *cluster.ServerSpec) (insitu.Transform, func(), error) {
	t, release, err := n.serverTransform(ctx, *spec, "")
	if err != nil && insitu.CodeOf(err) == insitu.InvalidArgument {
		err = fmt.Errorf("job spec: server: %w", err)
	}
	return t, release, err
}

// serverTransform returns the node's pooled client of the transform
// server at base ("" for the one at the TransformURL of this node's
// entry in its map), reached as spec says, and the function that gives
// it back.
func (n *Node) serverTransform(ctx context.Context, spec cluster.ServerSpec, base string) (insitu.Transform, func(), error) {
	mode := spec.Mode
	u, err := n.serverURL(base)
	if err != nil {
		return nil, nil, err
	}
	key := sidecarKey{url: u, mode: mode, localFile: spec.LocalFile}
	dial := func(ctx context.Context) (*transport.Client, error) {
		opts := &transport.DialOptions{
			Mode:      mode,
			Secret:    n.secret.TransformSecret(n.id),
			LocalFile: spec.LocalFile,
			Logger:    n.log,
		}
		if mode == transport.HPull {
			// The server fetches each input from this node, on loopback.
			opts.SourceURL = n.sourceURL
		}
		return transport.Dial(ctx, u, opts)
	}
	ctx, cancel := context.WithTimeout(ctx, n.dialTimeout)
	defer cancel()
	c, release, err := n.jobs.sidecars.acquire(ctx, key, dial)
	if err != nil {
		return nil, nil, err
	}
	return c, release, nil
}

// sourceURL is where a transform server fetches an input of this node's
// jobs: the object's URL on this node, with a token that allows reading
// that object only, for locality.DefaultTokenTTL.
func (n *Node) sourceURL(obj insitu.Object) (string, string, error) {
	self, ok := n.Map().Node(n.id)
	if !ok {
		return "", "", insitu.Errorf(insitu.Unavailable, "node %s is not in its own cluster map", n.id)
	}
	return locality.ObjectURL(self, obj.Name), n.secret.ObjectToken(locality.Read, obj.Name, time.Now().Add(locality.DefaultTokenTTL)), nil
}
