package wire

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestInlineCloseIdle: the sweep closes the connections idle for the idle
// timeout or longer, keeps the others, and stops once none is idle.
func TestInlineCloseIdle(t *testing.T) {
	tr := NewInlineTransport(&http.Transport{}, time.Second, time.Hour, time.Hour)
	defer tr.CloseIdleConnections()
	if tr.idleTimeout != 90*time.Second {
		t.Fatalf("idle timeout %v, want the default 90s", tr.idleTimeout)
	}
	conn := func() (*inlineConn, net.Conn) {
		a, b := net.Pipe()
		t.Cleanup(func() { a.Close(); b.Close() })
		return &inlineConn{conn: a, br: bufio.NewReader(a), bw: bufio.NewWriter(a)}, b
	}
	old, oldPeer := conn()
	fresh, _ := conn()
	tr.put("n1:80", old)
	tr.put("n1:80", fresh)
	other, otherPeer := conn()
	tr.put("n2:80", other)
	tr.mu.Lock()
	old.idleSince = time.Now().Add(-2 * time.Hour)
	other.idleSince = time.Now().Add(-2 * time.Hour)
	tr.mu.Unlock()
	tr.closeIdle()
	for _, peer := range []net.Conn{oldPeer, otherPeer} {
		if _, err := peer.Read(make([]byte, 1)); err == nil {
			t.Error("a connection idle too long is still open")
		}
	}
	tr.mu.Lock()
	n1, n2, sweep := tr.idle["n1:80"], tr.idle["n2:80"], tr.sweep
	tr.mu.Unlock()
	if len(n1) != 1 || n1[0] != fresh || n2 != nil {
		t.Errorf("idle after the sweep: n1 %v, n2 %v; want only the fresh one", n1, n2)
	}
	if sweep == nil {
		t.Error("no sweep left for the connection still idle")
	}
	tr.mu.Lock()
	fresh.idleSince = time.Now().Add(-2 * time.Hour)
	tr.mu.Unlock()
	tr.closeIdle()
	tr.mu.Lock()
	left, sweep := len(tr.idle), tr.sweep
	tr.mu.Unlock()
	if left != 0 || sweep != nil {
		t.Errorf("after the last sweep: %d addresses idle, sweep %v; want none", left, sweep)
	}
}

// TestInlineIdleTimeoutFollowsRead: connections idle longer than the read
// bound are closed, as the deadline dialer's are.
func TestInlineIdleTimeoutFollowsRead(t *testing.T) {
	tr := NewInlineTransport(&http.Transport{IdleConnTimeout: time.Minute}, time.Second, 5*time.Second, time.Hour)
	if tr.idleTimeout != 5*time.Second {
		t.Errorf("idle timeout %v, want the read bound 5s", tr.idleTimeout)
	}
}

// countingConn counts the writes to a connection.
type countingConn struct {
	net.Conn
	writes int
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes++
	return c.Conn.Write(p)
}

// opaqueReader is a body whose type Request.Write does not know.
type opaqueReader struct{ r io.Reader }

func (o opaqueReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// TestInlineOneWrite: a request goes to the connection in one write,
// whatever its size up to InlineMax and whatever its body's type, and
// arrives whole.
func TestInlineOneWrite(t *testing.T) {
	tr := NewInlineTransport(&http.Transport{}, time.Second, 10*time.Second, 10*time.Second)
	defer tr.CloseIdleConnections()
	for _, size := range []int{1, 4 << 10, 20 << 10, InlineMax} {
		for _, opaque := range []bool{false, true} {
			a, b := net.Pipe()
			cc := &countingConn{Conn: a}
			c := &inlineConn{conn: cc, lr: limitedReader{c: cc}, bw: bufio.NewWriterSize(cc, 4<<10)}
			c.br = bufio.NewReader(&c.lr)
			data := bytes.Repeat([]byte{'x'}, size)
			data[size-1] = 'y'
			var body io.Reader = bytes.NewReader(data)
			if opaque {
				body = opaqueReader{body}
			}
			req, err := http.NewRequest(http.MethodPut, "http://n1:80/v1/objects/b/k", body)
			if err != nil {
				t.Fatal(err)
			}
			req.ContentLength = int64(size)
			got := make(chan []byte, 1)
			go func() {
				r, err := http.ReadRequest(bufio.NewReader(b))
				if err != nil {
					got <- nil
					return
				}
				p, _ := io.ReadAll(r.Body)
				got <- p
				io.WriteString(b, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}()
			resp, _, err := tr.exchange(context.Background(), "n1:80", c, req)
			if err != nil {
				t.Fatalf("%d bytes (opaque %v): %v", size, opaque, err)
			}
			if p := <-got; !bytes.Equal(p, data) {
				t.Errorf("%d bytes (opaque %v): the node read %d bytes, not the body", size, opaque, len(p))
			}
			if resp.StatusCode != http.StatusOK {
				t.Errorf("%d bytes (opaque %v): status %d", size, opaque, resp.StatusCode)
			}
			if cc.writes != 1 {
				t.Errorf("%d bytes (opaque %v): the request took %d writes, want 1", size, opaque, cc.writes)
			}
			tr.CloseIdleConnections()
			a.Close()
			b.Close()
		}
	}
}
