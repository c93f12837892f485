package node

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/transport"
)

// TestPoolRetire: a retired client is closed once its last holder lets
// it go, not before, and the next acquire of its key dials a new one.
func TestPoolRetire(t *testing.T) {
	t.Parallel()
	srv, err := transport.NewServer(insitu.Identity, nil)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer srv.Shutdown(context.Background())
	dials := 0
	dial := func(ctx context.Context) (*transport.Client, error) {
		dials++
		return transport.Dial(ctx, hs.URL, &transport.DialOptions{Mode: transport.HPush})
	}
	var p sidecarPool
	defer p.closeAll()
	key := sidecarKey{url: hs.URL, mode: transport.HPush}
	c1, release, err := p.acquire(t.Context(), key, dial)
	if err != nil {
		t.Fatal(err)
	}
	use := func(c *transport.Client) error {
		in := &insitu.Input{Object: insitu.Object{Name: insitu.Name{Bucket: "b", Key: "k"}, Size: 2}, Body: strings.NewReader("hi")}
		return c.Transform(t.Context(), in, io.Discard)
	}
	p.retire(key)
	if err := use(c1); err != nil {
		t.Fatalf("a retired client still held: %v, want it working", err)
	}
	release()
	if err := use(c1); !errors.Is(err, insitu.Canceled) {
		t.Fatalf("a retired client let go: %v, want it closed", err)
	}
	c2, release2, err := p.acquire(t.Context(), key, dial)
	if err != nil {
		t.Fatal(err)
	}
	defer release2()
	if c2 == c1 || dials != 2 {
		t.Fatalf("after a retire: the same client (%v) or %d dials, want a new one", c2 == c1, dials)
	}
	if err := use(c2); err != nil {
		t.Fatal(err)
	}
}
