package node_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/wire"
	"github.com/insitu-data/insitu/locality"
	"github.com/insitu-data/insitu/node"
	"github.com/insitu-data/insitu/node/nodetest"
)

// content returns n deterministic pseudo-random bytes derived from seed.
func content(seed string, n int) []byte {
	r := rand.New(rand.NewPCG(xxhash.Sum64String(seed), 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func checksum(b []byte) string { return fmt.Sprintf("%016x", xxhash.Sum64(b)) }

// syncBuffer collects log output from many goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func debugLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// startCluster starts n nodes that stop when the test ends.
func startCluster(t testing.TB, n int, opts *nodetest.Options) *nodetest.Cluster {
	t.Helper()
	c, err := nodetest.Start(context.Background(), n, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

// single is one node behind an httptest server, owning every name.
type single struct {
	node   *node.Node
	srv    *httptest.Server
	secret locality.Secret
	parent string // the store's parent directory, which must stay empty but for the store
}

func startSingle(t *testing.T, opts *node.Options) *single {
	t.Helper()
	parent := t.TempDir()
	m, err := locality.NewMap(1, locality.Node{ID: "solo", URL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	o := node.Options{}
	if opts != nil {
		o = *opts
	}
	if o.Secret == nil {
		o.Secret = locality.Secret("test secret")
	}
	nd, err := node.New(t.Context(), "solo", filepath.Join(parent, "store"), m, &o)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(nd.Handler())
	t.Cleanup(func() {
		srv.Close()
		if err := nd.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return &single{node: nd, srv: srv, secret: o.Secret, parent: parent}
}

func (s *single) addr() string { return strings.TrimPrefix(s.srv.URL, "http://") }

// raw sends the bytes of a request on a new connection and returns the
// response and its body. The request should ask for "Connection: close".
func raw(t *testing.T, addr, request string) (*http.Response, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second)) // a safety net, not a synchronization
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the response to %.60q: %v", request, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, body
}

// errorBody decodes an error response's body.
func errorBody(t *testing.T, body []byte) wire.ErrorBody {
	t.Helper()
	var e wire.ErrorBody
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %q is not JSON: %v", body, err)
	}
	return e
}

// files lists the regular files under dir (relative, slash-separated) with
// their sizes; temporary files included.
func files(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			out[filepath.ToSlash(rel)] = fi.Size()
		}
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return out
}

// nameOwnedBy returns a name of bucket whose owner under m is id, and,
// when other is not nil, whose owner under other is otherID.
func nameOwnedBy(t *testing.T, bucket string, m *locality.Map, id string, other *locality.Map, otherID string) insitu.Name {
	t.Helper()
	for i := range 100_000 {
		name := insitu.Name{Bucket: bucket, Key: fmt.Sprintf("probe/%d.bin", i)}
		if m.Owner(name).ID == id && (other == nil || other.Owner(name).ID == otherID) {
			return name
		}
	}
	t.Fatalf("no name owned by %s", id)
	return insitu.Name{}
}

// readAll reads name through the client.
func readAll(ctx context.Context, c *locality.Client, name insitu.Name) ([]byte, insitu.Object, error) {
	rc, obj, err := c.Get(ctx, name)
	if err != nil {
		return nil, obj, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	return b, obj, err
}
