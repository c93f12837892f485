package wire

import (
	"bufio"
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
