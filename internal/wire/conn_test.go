package wire_test

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/insitu-data/insitu/internal/wire"
)

// TestWriteDeadlineDialer: a write to a peer that never reads fails with
// a timeout once the socket buffers are full, instead of blocking.
func TestWriteDeadlineDialer(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c // held open, never read
		}
	}()
	c, err := wire.WriteDeadlineDialer(time.Second, 50*time.Millisecond)(t.Context(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	peer := <-accepted
	defer peer.Close()
	buf := make([]byte, 1<<20)
	var werr error
	for i := 0; i < 1024 && werr == nil; i++ { // at most 1 GiB: far beyond any socket buffer
		_, werr = c.Write(buf)
	}
	if !errors.Is(werr, os.ErrDeadlineExceeded) {
		t.Fatalf("writing to a peer that never reads: %v, want a deadline error", werr)
	}
}
