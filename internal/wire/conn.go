package wire

import (
	"context"
	"net"
	"time"
)

// WriteDeadlineDialer returns a dial function for an http.Transport that
// dials TCP connections, each dial bounded by dial, on which every write
// must complete within write: a peer that stops reading fails the write,
// and the request, instead of holding it (and the goroutine and the slot
// behind it) for ever.
func WriteDeadlineDialer(dial, write time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	dialer := net.Dialer{Timeout: dial}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &writeDeadlineConn{Conn: c, d: write}, nil
	}
}

// writeDeadlineConn sets a deadline of d from now before each write.
type writeDeadlineConn struct {
	net.Conn
	d time.Duration
}

func (c *writeDeadlineConn) Write(p []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.d)); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}
