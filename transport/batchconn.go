package transport

import (
	"context"
	"net"
	"sync"
	"time"
)

// batchConn gathers the writes to a connection and sends them with as few
// system calls as it can: Write copies p into a buffer and a flusher
// goroutine writes out whatever has gathered since its last write.
//
// The WebSocket library writes a client's (masked) frames in 4 KiB pieces,
// one system call each; on loopback those calls dominate the cost of a
// large object. Write returns before the bytes are on the wire; an error
// shows at a later Write (and in the reads, as the connection dies).
type batchConn struct {
	net.Conn

	mu     sync.Mutex
	buf    []byte // gathered, not yet handed to the flusher
	err    error
	closed bool
	wake   chan struct{} // the flusher has work
	space  chan struct{} // the buffer was taken
	done   chan struct{} // the flusher ended
}

// batchLimit bounds the bytes gathered; Write waits when it is reached.
const batchLimit = 256 << 10

func newBatchConn(c net.Conn) *batchConn {
	b := &batchConn{Conn: c, wake: make(chan struct{}, 1), space: make(chan struct{}, 1), done: make(chan struct{})}
	go b.flusher()
	return b
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	for b.err == nil && len(b.buf) > 0 && len(b.buf)+len(p) > batchLimit {
		b.mu.Unlock()
		select {
		case <-b.space:
		case <-b.done:
		}
		b.mu.Lock()
	}
	if b.err != nil {
		err := b.err
		b.mu.Unlock()
		return 0, err
	}
	b.buf = append(b.buf, p...)
	b.mu.Unlock()
	signal(b.wake)
	return len(p), nil
}

func (b *batchConn) flusher() {
	defer close(b.done)
	var spare []byte
	for {
		<-b.wake
		b.mu.Lock()
		batch := b.buf
		b.buf = spare[:0]
		closed := b.closed
		b.mu.Unlock()
		signal(b.space)
		if len(batch) > 0 {
			if _, err := b.Conn.Write(batch); err != nil {
				b.mu.Lock()
				if b.err == nil {
					b.err = err
				}
				b.mu.Unlock()
				b.Conn.Close()
				return
			}
		}
		spare = batch
		if closed {
			return
		}
	}
}

// Close closes the connection at once: what has gathered and not been
// written yet is dropped, and a flusher blocked on a peer that does not
// read is released, so that Close never waits on the peer. Nothing is
// lost that matters: the WebSocket library closes the connection after
// the close handshake, whose reply from the peer shows that every frame
// sent before it arrived, or to abandon a connection (CloseNow).
func (b *batchConn) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	if b.err == nil {
		b.err = net.ErrClosed
	}
	b.buf = nil
	b.mu.Unlock()
	err := b.Conn.Close()
	signal(b.wake)
	<-b.done
	return err
}

// batchDialer dials TCP connections that gather their writes. The
// caller's context and timeout bound the dial.
func batchDialer(timeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return newBatchConn(c), nil
	}
}
