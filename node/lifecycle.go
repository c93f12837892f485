package node

import (
	"context"
	"errors"
	"sync"

	"github.com/insitu-data/insitu"
)

// tracker counts the work in flight that a node owns (requests, calls of
// its methods, running jobs) and, once the node is shutting down, refuses
// new work and tells when the last of it has returned.
type tracker struct {
	mu      sync.Mutex
	closing bool
	n       int
	idle    chan struct{} // made by close; closed when n is 0
}

// enter counts one more piece of work, unless the node is shutting down.
func (t *tracker) enter() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closing {
		return false
	}
	t.n++
	return true
}

// add counts one more piece of work, shutting down or not; the caller
// holds one already, so the count cannot have reached 0.
func (t *tracker) add() {
	t.mu.Lock()
	t.n++
	t.mu.Unlock()
}

func (t *tracker) leave() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n--
	if t.n == 0 && t.closing {
		close(t.idle)
	}
}

// close refuses new work from now on; it is idempotent.
func (t *tracker) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closing {
		return
	}
	t.closing = true
	t.idle = make(chan struct{})
	if t.n == 0 {
		close(t.idle)
	}
}

func (t *tracker) isClosing() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closing
}

// wait waits, after close, until no work is left or ctx ends.
func (t *tracker) wait(ctx context.Context) error {
	t.mu.Lock()
	idle := t.idle
	t.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// enter counts a call or request in flight, or refuses it with
// Unavailable once the node is shutting down; leave ends it.
func (n *Node) enter() error {
	if !n.life.enter() {
		return n.shutDownError()
	}
	return nil
}

func (n *Node) leave() { n.life.leave() }

func (n *Node) shutDownError() error {
	return insitu.Errorf(insitu.Unavailable, "node %s is shut down", n.id)
}

// Shutdown shuts the node down, as [http.Server.Shutdown] does a server.
// At once it refuses new work: every request to [Node.Handler] (health
// included) and every call of Put, Stat, Open, Delete, List and StartJob
// then fails with [insitu.Unavailable] (HTTP 503), which clients retry
// elsewhere or later. It aborts every running job, and waits until the
// jobs have stopped and the requests and calls in flight have returned,
// or until ctx ends. Then it closes the node's pooled clients of
// transform servers and releases the store directory. When ctx ends
// first, it does this at once, so that what is still running fails soon
// (a job in flight on a transform server loses its connection; a write to
// the store is not committed and leaves a temporary file, which the next
// New over the store removes), and it returns ctx's error.
//
// Shutdown does not stop the HTTP server that serves the node's Handler:
// shut that down too (before, or at the same time, so that its requests
// in flight can finish). The store's files stay as they are: a node made
// by New over the same directory serves them again.
//
// After Shutdown, ID, Dir, Path, Map, SetMap, JobStatus and AbortJob still
// work (the statuses of the node's jobs stay readable), and Shutdown may
// be called again: it then waits, until its ctx ends, for whatever the
// first call left running.
func (n *Node) Shutdown(ctx context.Context) error {
	n.life.close()
	n.stopBg()
	n.abortJobs()
	err := n.life.wait(ctx)
	n.release.Do(func() {
		n.jobs.sidecars.closeAll()
		n.hc.CloseIdleConnections()
		n.files.Close()
		n.rootErr = n.root.Close()
	})
	if err == nil {
		// Connections that went idle while the last jobs ended.
		n.hc.CloseIdleConnections()
	}
	return errors.Join(err, n.rootErr)
}

// abortJobs aborts every running job, without waiting.
func (n *Node) abortJobs() {
	n.jobs.mu.Lock()
	defer n.jobs.mu.Unlock()
	for _, j := range n.jobs.byID {
		select {
		case <-j.run.Done():
		default:
			j.aborted.Store(true)
			j.run.Abort()
		}
	}
}
