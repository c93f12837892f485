package transport_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/insitu-data/insitu/locality"
	"github.com/insitu-data/insitu/transport"
	"github.com/insitu-data/insitu/transport/transporttest"
)

// TestRunServer runs the wire-level suite against NewServer's handler:
// with a secret, local-file roots and a size limit, and with the defaults.
func TestRunServer(t *testing.T) {
	t.Run("configured", func(t *testing.T) {
		secret := locality.Secret("the wire suite's secret")
		root := t.TempDir()
		const limit = 4 << 20
		url := serveWire(t, &transport.ServerOptions{Secret: secret, Roots: []string{root}, MaxObjectSize: limit})
		transporttest.RunServer(t, url, &transporttest.WireOptions{Token: secret.AdminToken(time.Now().Add(time.Hour)), Root: root, MaxObjectSize: limit})
	})
	t.Run("defaults", func(t *testing.T) {
		transporttest.RunServer(t, serveWire(t, nil), nil)
	})
}

// serveWire serves transporttest.Conformance on 127.0.0.1.
func serveWire(t *testing.T, opts *transport.ServerOptions) string {
	s, err := transport.NewServer(transporttest.Conformance, opts)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	t.Cleanup(func() {
		s.Shutdown(context.Background())
		hs.Close()
	})
	return hs.URL
}
