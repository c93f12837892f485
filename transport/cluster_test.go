package transport_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/locality"
	"github.com/insitu-data/insitu/node/nodetest"
	"github.com/insitu-data/insitu/pipeline"
	"github.com/insitu-data/insitu/sink"
	"github.com/insitu-data/insitu/source"
	"github.com/insitu-data/insitu/transport"
)

// meter counts the bytes that go through the connections of its HTTP
// client, both ways: everything the client process sends and receives.
type meter struct{ sent, recv atomic.Int64 }

type meteredConn struct {
	net.Conn
	m *meter
}

func (c *meteredConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.m.recv.Add(int64(n))
	return n, err
}

func (c *meteredConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.m.sent.Add(int64(n))
	return n, err
}

func (m *meter) total() int64 { return m.sent.Load() + m.recv.Load() }

// httpClient returns an HTTP client whose every connection is metered.
func (m *meter) httpClient() *http.Client {
	var d net.Dialer
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &meteredConn{Conn: c, m: m}, nil
		},
		MaxIdleConnsPerHost: 64,
		DisableCompression:  true,
	}}
}

// flip inverts every byte, streaming: the transform the servers run.
var flip = insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := in.Body.Read(buf)
		for i := range buf[:n] {
			buf[i] = ^buf[i]
		}
		if _, werr := out.Write(buf[:n]); werr != nil {
			return werr
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
})

func flipped(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		out[i] = ^c
	}
	return out
}

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 11))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// seed puts count objects of size bytes into bucket, on their owners (not
// through the metered client), and returns them by key.
func seed(t *testing.T, c *nodetest.Cluster, bucket string, count, size int) map[string][]byte {
	t.Helper()
	objs := map[string][]byte{}
	for i := range count {
		key := fmt.Sprintf("obj-%03d.bin", i)
		b := randBytes(uint64(i*size+1), size)
		if _, err := c.Put(t.Context(), insitu.Name{Bucket: bucket, Key: key}, bytes.NewReader(b), int64(len(b))); err != nil {
			t.Fatal(err)
		}
		objs[key] = b
	}
	return objs
}

// checkOnOwners checks that bucket holds the flipped inputs, each exactly
// once and on its owner.
func checkOnOwners(t *testing.T, c *nodetest.Cluster, bucket string, inputs map[string][]byte) {
	t.Helper()
	holders := map[string][]string{}
	for _, nd := range c.Nodes() {
		root := filepath.Join(nd.Dir(), bucket)
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				rel, _ := filepath.Rel(root, p)
				holders[filepath.ToSlash(rel)] = append(holders[filepath.ToSlash(rel)], nd.ID())
			}
			return nil
		})
	}
	if len(holders) != len(inputs) {
		t.Fatalf("%s holds %d objects, want %d", bucket, len(holders), len(inputs))
	}
	for key, in := range inputs {
		name := insitu.Name{Bucket: bucket, Key: key}
		owner := c.Map().Owner(name).ID
		if h := holders[key]; len(h) != 1 || h[0] != owner {
			t.Errorf("%s is on %v, want only on its owner %s", name, h, owner)
			continue
		}
		rc, _, err := c.Client().Get(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || xxhash.Sum64(got) != xxhash.Sum64(flipped(in)) {
			t.Errorf("%s: %d bytes, checksum %016x, want %016x (%v)", name, len(got), xxhash.Sum64(got), xxhash.Sum64(flipped(in)), err)
		}
	}
}

// remoteRun runs bucket "in" → flip on the servers next to the owners →
// bucket out, from a client whose every byte is metered, and returns the
// client's traffic.
func remoteRun(t *testing.T, c *nodetest.Cluster, opts transport.ClusterOptions, out string, direct bool) (*meter, pipeline.Report) {
	t.Helper()
	m := &meter{}
	hc := m.httpClient()
	client, err := locality.NewClient(c.Map(), &locality.ClientOptions{Secret: c.Secret(), HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	opts.HTTPClient = hc
	tr, err := transport.Cluster(client, &opts)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	rename := func(n insitu.Name) (insitu.Name, error) { return insitu.Name{Bucket: out, Key: n.Key}, nil }
	src, err := source.Cluster(client, "in", nil)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := sink.Cluster(client)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := pipeline.Run(t.Context(), src, tr, dst,
		&pipeline.Options{DirectPut: direct, Rename: rename, Workers: 8, Progress: func(pipeline.Stats) {}})
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, rep)
	}
	return m, rep
}

// TestClusterRemoteModePayloadBypassesClient: in remote mode the client
// sends each object's transform server only a control message; the server
// reads the bytes from the owner (on loopback, or from its disk) and puts
// the output to the output's owner. The client's traffic, counted on its
// own connections, stays small and the same whether the objects are 16 KiB
// or 1 MiB, while every output is right and on its owner.
//
// The bound: a listing entry (~100 bytes), a request naming the source
// and the destination with their tokens (~600 bytes over ws, ~1 KiB of
// HTTP headers over hpull) and a put result (~200 bytes) come to well
// under 4 KiB per object, a quarter of the smallest payload; so even one
// 16 KiB object passing through the client would show. Connection set-up
// (map refresh, WebSocket handshakes) is bounded by 64 KiB in all. And the
// traffic of the 1 MiB run may exceed that of the 16 KiB run by at most
// 1 KiB per object: noise, where one object passing through would add
// 1 MiB.
func TestClusterRemoteModePayloadBypassesClient(t *testing.T) {
	if testing.Short() {
		t.Skip("three nodes and their transform servers, 270 objects in eight runs: skipped under -short (TestClusterTransformRouting covers remote mode)")
	}
	c, err := nodetest.Start(t.Context(), 3, &nodetest.Options{Sidecar: flip})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const count = 30
	const perObject, setup = 4 << 10, 64 << 10
	for _, tc := range []struct {
		name string
		opts transport.ClusterOptions
	}{
		{"ws", transport.ClusterOptions{Mode: transport.WS}},
		{"hpull", transport.ClusterOptions{Mode: transport.HPull}},
		{"ws-local-file", transport.ClusterOptions{Mode: transport.WS, LocalPath: c.LocalPath}},
		{"hpush-local-file", transport.ClusterOptions{Mode: transport.HPush, LocalPath: c.LocalPath}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			traffic := map[int]int64{}
			for _, size := range []int{16 << 10, 1 << 20} {
				clearBucket(t, c, "in")
				inputs := seed(t, c, "in", count, size)
				out := fmt.Sprintf("out-%s-%d", tc.name, size)
				m, rep := remoteRun(t, c, tc.opts, out, true)
				if rep.Transformed != count || rep.Failed != 0 || rep.BytesOut != int64(count*size) {
					t.Fatalf("%d-byte objects: report\n%s", size, rep)
				}
				checkOnOwners(t, c, out, inputs)
				traffic[size] = m.total()
				t.Logf("%d objects of %d bytes: the client sent %d and received %d bytes", count, size, m.sent.Load(), m.recv.Load())
				if limit := int64(count*perObject + setup); m.total() > limit {
					t.Errorf("%d-byte objects: the client's traffic is %d bytes, over %d: payload passed through it", size, m.total(), limit)
				}
			}
			if d := traffic[1<<20] - traffic[16<<10]; d > count*1024 {
				t.Errorf("the client's traffic grew by %d bytes with the object size (%d → %d); it must not depend on it", d, traffic[16<<10], traffic[1<<20])
			}
		})
	}

	// The meter sees payload when it does pass through the client: with
	// hpush and no local path the client reads each input from its owner
	// and sends it; without direct put the output comes back to it.
	t.Run("control", func(t *testing.T) {
		clearBucket(t, c, "in")
		inputs := seed(t, c, "in", count, 16<<10)
		m, _ := remoteRun(t, c, transport.ClusterOptions{Mode: transport.HPush}, "out-control-push", true)
		if payload := int64(2 * count * 16 << 10); m.total() < payload {
			t.Errorf("hpush: the client's traffic is %d bytes, under the %d of payload it carries", m.total(), payload)
		}
		checkOnOwners(t, c, "out-control-push", inputs)
		m, _ = remoteRun(t, c, transport.ClusterOptions{Mode: transport.HPull}, "out-control-back", false)
		if payload := int64(2 * count * 16 << 10); m.total() < payload {
			t.Errorf("hpull without direct put: the client's traffic is %d bytes, under the %d of payload it carries", m.total(), payload)
		}
		checkOnOwners(t, c, "out-control-back", inputs)
	})
}

// clearBucket deletes every object of bucket.
func clearBucket(t *testing.T, c *nodetest.Cluster, bucket string) {
	t.Helper()
	var names []insitu.Name
	src, err := source.Cluster(c.Client(), bucket, nil)
	if err != nil {
		t.Fatal(err)
	}
	for obj, err := range src.Objects(t.Context()) {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, obj.Name)
	}
	for _, n := range names {
		if err := c.Client().Delete(t.Context(), n); err != nil {
			t.Fatal(err)
		}
	}
}

// TestClusterTransformRouting: objects go to the server next to their
// owner; a node without a transform server is an InvalidArgument error;
// a closed ClusterTransform refuses work.
func TestClusterTransformRouting(t *testing.T) {
	// Each server says which node it is next to: whose store the file it
	// opened is in (Input.Path names the open file; it resolves to where
	// the file is).
	c, err := nodetest.Start(t.Context(), 3, &nodetest.Options{Sidecar: insitu.TransformFunc(
		func(_ context.Context, in *insitu.Input, out io.Writer) error {
			p, err := filepath.EvalSymlinks(in.Path)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(out, "%s on %s", in.Name.Key, filepath.Base(filepath.Dir(filepath.Dir(p))))
			return err
		})})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tr, err := transport.Cluster(c.Client(), &transport.ClusterOptions{Mode: transport.HPush, LocalPath: c.LocalPath})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 12 {
		name := insitu.Name{Bucket: "in", Key: fmt.Sprintf("k%d", i)}
		if _, err := c.Put(t.Context(), name, strings.NewReader("x"), 1); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := tr.Transform(t.Context(), &insitu.Input{Object: insitu.Object{Name: name, Size: 1}}, &out); err != nil {
			t.Fatal(err)
		}
		if want := name.Key + " on " + c.Map().Owner(name).ID; out.String() != want {
			t.Errorf("output %q, want %q", out.String(), want)
		}
	}
	tr.Close()
	err = tr.Transform(t.Context(), &insitu.Input{Object: insitu.Object{Name: insitu.Name{Bucket: "in", Key: "k0"}}}, io.Discard)
	if !errors.Is(err, insitu.Canceled) {
		t.Errorf("after Close: %v", err)
	}

	plain, err := nodetest.Start(t.Context(), 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	tr2, err := transport.Cluster(plain.Client(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tr2.Close()
	_, err = tr2.TransformTo(t.Context(), &insitu.Input{Object: insitu.Object{Name: insitu.Name{Bucket: "in", Key: "k"}}},
		insitu.Destination{URL: "http://127.0.0.1:1/v1/objects/out/k"})
	if !errors.Is(err, insitu.InvalidArgument) || !strings.Contains(err.Error(), "no transform server") {
		t.Errorf("a node without a transform server: %v", err)
	}
	if _, err := transport.Cluster(nil, nil); !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("Cluster(nil): %v", err)
	}
}
