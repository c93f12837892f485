package wire

import (
	"context"
	"net"
	"time"
)

// writeChunk is the most a bounded connection writes under one deadline:
// a large write is split so that the bound is on progress, not on the
// time a whole write of any size takes.
const writeChunk = 256 << 10

// WriteDeadlineDialer returns a dial function for an http.Transport that
// dials TCP connections, each dial bounded by dial, on which every write
// must progress: each 256 KiB (or less) must be taken by the peer within
// write. A peer that stops reading fails the write, and the request,
// instead of holding it (and the goroutine and the slot behind it) for
// ever.
func WriteDeadlineDialer(dial, write time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return DeadlineDialer(dial, 0, write)
}

// DeadlineDialer is [WriteDeadlineDialer] with reads bounded too: each
// read must return within read (0: reads are not bounded), so that a peer
// that stops answering, mid-response or before it, fails the request. An
// idle keep-alive connection is closed after read, which costs only a new
// dial; read must exceed the longest a peer may legitimately think before
// it answers (a long poll, say).
func DeadlineDialer(dial, read, write time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	dialer := net.Dialer{Timeout: dial}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &deadlineConn{Conn: c, read: read, write: write}, nil
	}
}

// deadlineConn sets a deadline before each read (when read > 0) and before
// each piece of at most writeChunk bytes of a write.
type deadlineConn struct {
	net.Conn
	read, write time.Duration
}

func (c *deadlineConn) Read(p []byte) (int, error) {
	if c.read > 0 {
		if err := c.Conn.SetReadDeadline(time.Now().Add(c.read)); err != nil {
			return 0, err
		}
	}
	return c.Conn.Read(p)
}

func (c *deadlineConn) Write(p []byte) (int, error) {
	var n int
	for len(p) > 0 {
		chunk := p[:min(len(p), writeChunk)]
		if err := c.Conn.SetWriteDeadline(time.Now().Add(c.write)); err != nil {
			return n, err
		}
		m, err := c.Conn.Write(chunk)
		n += m
		if err != nil {
			return n, err
		}
		p = p[m:]
	}
	return n, nil
}
