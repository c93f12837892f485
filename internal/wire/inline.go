package wire

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// InlineMax is the largest request body an [InlineTransport] sends itself;
// a larger one goes to its fallback.
const InlineMax = 64 << 10

// inlineIdleMax is how many idle connections an InlineTransport keeps to
// each address, as the node clients' http.Transports do.
const inlineIdleMax = 64

// maxAnswer bounds the bytes of an answer's status line and header, as
// net/http's MaxResponseHeaderBytes does.
const maxAnswer = 1 << 20

// maxInlineBody is the most of an answer's body an InlineTransport reads
// into memory; a longer answer is an error. Small-request answers here are
// JSON of a few hundred bytes.
const maxInlineBody = 1 << 20

// InlineTransport is an http.RoundTripper for small puts between nodes: a
// PUT with a body of at most [InlineMax] bytes that can be sent again
// (GetBody set), to a plain-http address without a proxy and
// without Expect, is written, and its answer read, on the caller's
// goroutine, over HTTP/1.1 connections it keeps alive between requests;
// every other request goes to its fallback http.Transport. Through an
// http.Transport a request is handed to the connection's writing goroutine
// and its answer back from the reading one: two goroutine wake-ups each
// way, which, on a node whose CPUs are busy with other puts' fsyncs, cost
// as much time as a small put's own work on its owner (docs/BENCHMARKS.md,
// "Small objects"). Here the caller writes the request, in one write (a
// request in two parts makes the owner's reader wait again for the
// second), blocks in the read of the answer, and is woken once, by the
// network poller.
//
// The answer comes back with its body already read (at most 1 MiB; its
// header at most 1 MiB too). A connection idle for the fallback's
// IdleConnTimeout, or for the read bound if that is shorter, is closed; an
// idle one is looked at before it is used again (a peek that does not
// wait), and one that the peer closed meanwhile is dropped, with every
// other idle one to that address when it was closed before its time (a
// restart). A request is sent once more, on a new connection, only when
// writing it to a kept-alive connection failed: as with net/http, a
// request that may have reached the peer whole is never sent twice.
//
// Bounds: a dial takes at most dial; writing the request at most write;
// the answer's header, and its body, each at most read. The request's
// context interrupts either. It is safe for concurrent use.
type InlineTransport struct {
	fallback    *http.Transport
	dialer      net.Dialer
	read, write time.Duration
	idleTimeout time.Duration

	mu    sync.Mutex
	idle  map[string][]*inlineConn // by host:port, the most recently used last
	sweep *time.Timer              // closes the connections idle too long; nil when none is
}

// NewInlineTransport returns an InlineTransport that sends what it does
// not send itself through fallback, and dials with the bound dial. read
// and write must be above 0.
func NewInlineTransport(fallback *http.Transport, dial, read, write time.Duration) *InlineTransport {
	return &InlineTransport{
		fallback:    fallback,
		dialer:      net.Dialer{Timeout: dial},
		read:        read,
		write:       write,
		idleTimeout: min(cmp.Or(fallback.IdleConnTimeout, 90*time.Second), read),
	}
}

// inlineConn is one kept-alive connection with its buffers.
type inlineConn struct {
	conn      net.Conn
	lr        limitedReader // under br: counts an answer's bytes
	br        *bufio.Reader
	bw        *bufio.Writer // sized to the largest request yet; nil before the first
	idleSince time.Time
}

// limitedReader reads a connection and fails once more than n bytes were
// asked of it since n was set.
type limitedReader struct {
	c net.Conn
	n int64
}

var errAnswerTooLong = errors.New("wire: the answer is too long")

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errAnswerTooLong
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.c.Read(p)
	l.n -= int64(n)
	return n, err
}

// headerRoom is what a connection's write buffer holds beyond a
// request's body: its request line and headers.
const headerRoom = 4 << 10

// oneWrite is a connection's write buffer under another type: a
// [http.Request.Write] to a [bufio.Writer] flushes the headers before a
// body it does not know to be in memory.
type oneWrite struct{ *bufio.Writer }

// aLongTimeAgo is a deadline in the past: set, it interrupts a blocked
// read or write at once.
var aLongTimeAgo = time.Unix(1, 0)

// inline reports whether t sends req itself.
func (t *InlineTransport) inline(req *http.Request) bool {
	if req.Method != http.MethodPut || req.URL.Scheme != "http" || req.GetBody == nil || req.ContentLength <= 0 || req.ContentLength > InlineMax ||
		req.Header.Get("Expect") != "" || len(req.TransferEncoding) > 0 || req.Trailer != nil {
		return false
	}
	if t.fallback.Proxy != nil {
		if u, err := t.fallback.Proxy(req); u != nil || err != nil {
			return false
		}
	}
	return true
}

// RoundTrip sends req, itself or through the fallback (see
// [InlineTransport]).
func (t *InlineTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.inline(req) {
		return t.fallback.RoundTrip(req)
	}
	defer req.Body.Close()
	ctx := req.Context()
	addr := req.URL.Host
	if req.URL.Port() == "" {
		addr = net.JoinHostPort(req.URL.Hostname(), "80")
	}
	out, fresh := req, false
	for {
		c, reused, err := t.get(ctx, addr, fresh)
		if err != nil {
			return nil, err
		}
		resp, written, err := t.exchange(ctx, addr, c, out)
		if err == nil {
			return resp, nil
		}
		c.conn.Close()
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		// Writing to a kept-alive connection the peer closed after it
		// was looked at: the peer has not had the whole request.
		if !reused || written || fresh || !staleConn(err) {
			return nil, err
		}
		body, berr := req.GetBody()
		if berr != nil {
			return nil, err
		}
		out = req.Clone(ctx)
		out.Body = body
		defer body.Close()
		fresh = true
	}
}

// CloseIdleConnections closes the idle connections, the fallback's too;
// connections in use are kept, and new ones made and kept as before.
func (t *InlineTransport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	if t.sweep != nil {
		t.sweep.Stop()
		t.sweep = nil
	}
	t.mu.Unlock()
	for _, list := range idle {
		for _, c := range list {
			c.conn.Close()
		}
	}
	t.fallback.CloseIdleConnections()
}

// get returns an idle connection to addr that the peer has not closed, or
// dials a new one (always, when fresh).
func (t *InlineTransport) get(ctx context.Context, addr string, fresh bool) (c *inlineConn, reused bool, err error) {
	for !fresh {
		t.mu.Lock()
		list := t.idle[addr]
		if len(list) == 0 {
			t.mu.Unlock()
			break
		}
		c = list[len(list)-1]
		list[len(list)-1] = nil
		t.idle[addr] = list[:len(list)-1]
		t.mu.Unlock()
		if peerOpen(c.conn) {
			return c, true, nil
		}
		c.conn.Close()
		if time.Since(c.idleSince) < t.idleTimeout/2 {
			// Closed before its time: the peer restarted, and closed
			// the others too.
			t.closeIdleTo(addr)
		}
	}
	conn, err := t.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, false, err
	}
	c = &inlineConn{conn: conn, lr: limitedReader{c: conn}} // bw: at the first request
	c.br = bufio.NewReaderSize(&c.lr, 4<<10)
	return c, false, nil
}

// closeIdleTo closes the idle connections to addr.
func (t *InlineTransport) closeIdleTo(addr string) {
	t.mu.Lock()
	list := t.idle[addr]
	delete(t.idle, addr)
	t.mu.Unlock()
	for _, c := range list {
		c.conn.Close()
	}
}

// put keeps c as an idle connection to addr, or closes it when there are
// enough.
func (t *InlineTransport) put(addr string, c *inlineConn) {
	t.mu.Lock()
	if len(t.idle[addr]) < inlineIdleMax {
		if t.idle == nil {
			t.idle = make(map[string][]*inlineConn)
		}
		c.idleSince = time.Now()
		t.idle[addr] = append(t.idle[addr], c)
		if t.sweep == nil {
			t.sweep = time.AfterFunc(t.idleTimeout, t.closeIdle)
		}
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	c.conn.Close()
}

// closeIdle closes the connections idle for idleTimeout or longer (the
// oldest are first in each list), and runs again when the oldest of those
// left will have been idle so long.
func (t *InlineTransport) closeIdle() {
	var old []*inlineConn
	t.mu.Lock()
	now := time.Now()
	cutoff := now.Add(-t.idleTimeout)
	var oldest time.Time
	for addr, list := range t.idle {
		k := 0
		for k < len(list) && !list[k].idleSince.After(cutoff) {
			k++
		}
		old = append(old, list[:k]...)
		if k == len(list) {
			delete(t.idle, addr)
			continue
		}
		t.idle[addr] = append(list[:0], list[k:]...)
		clear(list[len(list)-k:])
		if first := list[0].idleSince; oldest.IsZero() || first.Before(oldest) {
			oldest = first
		}
	}
	t.sweep = nil
	if !oldest.IsZero() {
		t.sweep = time.AfterFunc(oldest.Add(t.idleTimeout).Sub(now), t.closeIdle)
	}
	t.mu.Unlock()
	for _, c := range old {
		c.conn.Close()
	}
}

// exchange writes req on c and reads the answer. written tells whether
// the whole request was handed to the connection. On success c is back
// with the idle connections, or closed.
func (t *InlineTransport) exchange(ctx context.Context, addr string, c *inlineConn, req *http.Request) (resp *http.Response, written bool, err error) {
	stop := context.AfterFunc(ctx, func() { _ = c.conn.SetDeadline(aLongTimeAgo) })
	defer stop()
	// Each deadline is set before the context is looked at: either the
	// look sees the end, or the end's past deadline replaces this one.
	if err := c.conn.SetWriteDeadline(time.Now().Add(t.write)); err != nil {
		return nil, false, err
	}
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	// The whole request in one write: written in two, its second part
	// waits for this goroutine to be run again, and the node's reader
	// with it.
	if need := int(req.ContentLength) + headerRoom; c.bw == nil || c.bw.Size() < need {
		c.bw = bufio.NewWriterSize(c.conn, need)
	}
	if err := req.Write(oneWrite{c.bw}); err != nil {
		return nil, false, err
	}
	if err := c.bw.Flush(); err != nil {
		return nil, false, err
	}
	if err := c.conn.SetReadDeadline(time.Now().Add(t.read)); err != nil {
		return nil, true, err
	}
	if err := ctx.Err(); err != nil {
		return nil, true, err
	}
	c.lr.n = maxAnswer
	resp, err = http.ReadResponse(c.br, req)
	if err != nil {
		return nil, true, err
	}
	if err := c.conn.SetReadDeadline(time.Now().Add(t.read)); err != nil {
		return nil, true, err
	}
	if err := ctx.Err(); err != nil {
		return nil, true, err
	}
	c.lr.n = maxInlineBody + maxAnswer // the body, and chunk headers if any
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxInlineBody+1))
	switch {
	case err != nil:
		return nil, true, err
	case len(data) > maxInlineBody:
		return nil, true, errAnswerTooLong
	}
	resp.Body = io.NopCloser(bytes.NewReader(data))
	resp.ContentLength = int64(len(data))
	// Reuse the connection only at the end of a whole answer, read within
	// the context.
	if !stop() || resp.Close || req.Close || c.br.Buffered() != 0 {
		c.conn.Close()
		return resp, true, nil
	}
	t.put(addr, c)
	return resp, true, nil
}

// staleConn reports whether err is how a write to a connection that the
// peer has closed fails.
func staleConn(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
