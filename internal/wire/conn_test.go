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

// TestDeadlineDialerRead: a read from a peer that never answers fails with
// a timeout instead of blocking.
func TestDeadlineDialerRead(t *testing.T) {
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
			accepted <- c // held open, never written
		}
	}()
	c, err := wire.DeadlineDialer(time.Second, 50*time.Millisecond, time.Second)(t.Context(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	peer := <-accepted
	defer peer.Close()
	if _, err := c.Read(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("reading from a peer that never writes: %v, want a deadline error", err)
	}
}

// TestDeadlineDialerLargeWrite: one write far larger than the peer can
// take within the deadline succeeds while the peer keeps reading: the
// bound is on progress, not on the whole write.
func TestDeadlineDialerLargeWrite(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const size = 64 << 20
	got := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- -1
			return
		}
		defer c.Close()
		var n int64
		buf := make([]byte, 64<<10)
		for n < size {
			m, err := c.Read(buf)
			n += int64(m)
			if err != nil {
				break
			}
			time.Sleep(time.Millisecond) // a slow reader: ~64 MiB/s at most
		}
		got <- n
	}()
	// 1s per 256 KiB is ample, also on a loaded machine (200ms was cut
	// once at a load average of 24); the whole 64 MiB takes a second or more.
	c, err := wire.DeadlineDialer(time.Second, 0, time.Second)(t.Context(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if n, err := c.Write(make([]byte, size)); err != nil || n != size {
		t.Fatalf("Write = %d, %v; want %d, nil", n, err, size)
	}
	if n := <-got; n != size {
		t.Fatalf("the peer read %d bytes, want %d", n, size)
	}
}
