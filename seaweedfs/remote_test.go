package seaweedfs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/locality"
	"github.com/insitu-data/insitu/pipeline"
	"github.com/insitu-data/insitu/seaweedfs"
	"github.com/insitu-data/insitu/seaweedfs/seaweedfstest"
	"github.com/insitu-data/insitu/sink/sinktest"
	"github.com/insitu-data/insitu/transport"
)

// meter counts the bytes through the connections of its HTTP client,
// both ways.
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

// httpClient returns an HTTP client whose every connection (the WebSocket
// handshakes' too) is metered.
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

// flip inverts every byte, streaming: what the transform servers run.
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

// sidecars are transform servers running flip, one next to each volume
// server of a cluster, each recording the hosts it fetched inputs from.
type sidecars struct {
	urls    map[string]string // volume server → its transform server's URL
	mu      sync.Mutex
	fetched map[string][]string // volume server → the hosts its transform server fetched from
}

func startSidecars(t *testing.T, c *seaweedfstest.Cluster, secret locality.Secret) *sidecars {
	t.Helper()
	s := &sidecars{urls: map[string]string{}, fetched: map[string][]string{}}
	for _, vs := range c.VolumeServers {
		srv, err := transport.NewServer(flip, &transport.ServerOptions{
			Secret: secret,
			AllowSource: func(u *url.URL) bool {
				s.mu.Lock()
				s.fetched[vs] = append(s.fetched[vs], u.Host)
				s.mu.Unlock()
				return transport.LoopbackOnly(u)
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(srv)
		t.Cleanup(func() {
			hs.Close()
			srv.Shutdown(context.Background())
		})
		s.urls[vs] = hs.URL
	}
	return s
}

func (s *sidecars) take() map[string][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.fetched
	s.fetched = map[string][]string{}
	return f
}

// Remote mode on SeaweedFS, proved by bytes: the caller (pipeline.Run
// over a seaweedfs Source, transport.Placed over a seaweedfs Placement,
// and a seaweedfs Sink with direct put) sends each object to the
// transform server next to the volume server that holds it; over ws and
// hpull that server fetches the bytes from its own volume server only,
// and puts the output through the filer pinned to that same volume
// server; the caller's own connections, to the transform servers and to
// SeaweedFS, carry a small number of bytes per object, the same for
// 100 KB and 3 MB objects. Every output is byte for byte the flipped
// input, and every chunk of it is on its input's volume server (by the
// filer's metadata and the master's lookup, not through the package).
// hpush, which sends the bytes from the caller (SeaweedFS has no file
// path of an object to send instead), is the control: its outputs are
// local too, but the payload passes through the caller, and the meter
// sees it.
//
// The bounds per object: on the transform-server side a request naming
// the source and the destination and a put result (~1 KiB with HTTP
// headers); on the SeaweedFS side the object's entry in the listing, its
// metadata for its source URL, and the check that the output's path is
// not a directory (~2 KiB). 8 KiB each is a fraction of the smallest
// payload; set-up (topology, listing pages, handshakes) is within 64 KiB.
// And the 3 MB run's traffic may exceed the 100 KB run's by at most
// 256 bytes per object, where one object passing through would add 3 MB.
func TestRemoteModeLocality(t *testing.T) {
	t.Parallel()
	c := shared(t)
	ctx := t.Context()
	secret := locality.Secret("transform-servers-secret-0123456789")
	cars := startSidecars(t, c, secret)
	root := newRoot(t)
	seedClient := newClient(t, c, &seaweedfs.Options{Root: root})
	seedSink, err := seaweedfs.NewSink(seedClient, nil)
	if err != nil {
		t.Fatal(err)
	}
	const perVolume = 3
	const perObject, setup = 8 << 10, 64 << 10
	for _, mode := range []transport.Mode{transport.WS, transport.HPull, transport.HPush} {
		t.Run(mode.String(), func(t *testing.T) {
			traffic := map[int][2]int64{} // size → transport, seaweedfs
			for _, size := range []int{100_000, 3_000_000} {
				in := fmt.Sprintf("in-%s-%d", mode, size)
				out := fmt.Sprintf("out-%s-%d", mode, size)
				inputs := map[string][]byte{}
				owner := map[string]string{}
				for i := range perVolume * len(c.VolumeServers) {
					vs := c.VolumeServers[i%len(c.VolumeServers)]
					key := fmt.Sprintf("obj-%02d.bin", i)
					inputs[key] = sinktest.Content(in+key, size)
					owner[key] = vs
					if _, err := seedSink.PutOn(ctx, vs, insitu.Name{Bucket: in, Key: key}, bytes.NewReader(inputs[key]), int64(size)); err != nil {
						t.Fatal(err)
					}
				}
				cars.take()

				// The caller: everything it sends or receives goes through
				// the two meters.
				var mT, mS meter
				client := newClient(t, c, &seaweedfs.Options{Root: root, HTTPClient: mS.httpClient()})
				topo, err := seaweedfs.NewTopology(client, &seaweedfs.TopologyOptions{
					TransformURL: func(addr string) string { return cars.urls[addr] },
				})
				if err != nil {
					t.Fatal(err)
				}
				place, err := seaweedfs.NewPlacement(ctx, topo, nil)
				if err != nil {
					t.Fatal(err)
				}
				ct, err := transport.Placed(place, &transport.ClusterOptions{Mode: mode, Secret: secret, HTTPClient: mT.httpClient()})
				if err != nil {
					t.Fatal(err)
				}
				src, _ := seaweedfs.NewSource(client, in, nil)
				dst, _ := seaweedfs.NewSink(client, nil)
				rep, err := pipeline.Run(ctx, src, ct, dst, &pipeline.Options{
					DirectPut: true, Workers: 6,
					Rename: func(n insitu.Name) (insitu.Name, error) { return insitu.Name{Bucket: out, Key: n.Key}, nil },
				})
				ct.Close()
				if err != nil || rep.Transformed != int64(len(inputs)) || rep.BytesOut != int64(len(inputs)*size) {
					t.Fatalf("Run: %v\n%s", err, rep)
				}
				traffic[size] = [2]int64{mT.total(), mS.total()}
				t.Logf("%d objects of %d bytes: the caller's traffic: %d bytes with the transform servers, %d with SeaweedFS",
					len(inputs), size, mT.total(), mS.total())

				// Outputs: byte-exact, every chunk on the input's volume server.
				for key, b := range inputs {
					p := root + "/" + out + "/" + key
					got, err := filerRead(t, c, p)
					if err != nil || !bytes.Equal(got, flipped(b)) {
						t.Errorf("%s: %d bytes, %v; want the %d flipped", p, len(got), err, len(b))
						continue
					}
					for j, s := range serversOf(t, c, p) {
						if !slices.Equal(s, []string{owner[key]}) {
							t.Errorf("%s: chunk %d on %q, want only on %s, its input's volume server", p, j, s, owner[key])
						}
					}
				}
				// Fetches: each transform server from its own volume server only.
				fetched := cars.take()
				n := 0
				for vs, hosts := range fetched {
					n += len(hosts)
					for _, h := range hosts {
						if h != vs {
							t.Errorf("the transform server next to %s fetched from %s", vs, h)
						}
					}
				}
				if want := len(inputs); mode == transport.HPush {
					if n != 0 {
						t.Errorf("hpush: the transform servers fetched %d inputs; the caller sends them", n)
					}
				} else if n != want {
					t.Errorf("%d fetches, want %d (one per object)", n, want)
				}

				if mode == transport.HPush {
					// The control: the payload passes through the caller.
					if payload := int64(len(inputs) * size); mT.total() < payload || mS.total() < payload {
						t.Errorf("hpush: the caller's traffic is %d bytes with the transform servers and %d with SeaweedFS, under the %d of payload it carries",
							mT.total(), mS.total(), payload)
					}
					continue
				}
				limit := int64(len(inputs)*perObject + setup)
				for i, m := range []*meter{&mT, &mS} {
					if m.total() > limit {
						t.Errorf("%d-byte objects: the caller's traffic with %s is %d bytes, over %d: payload passed through it",
							size, []string{"the transform servers", "SeaweedFS"}[i], m.total(), limit)
					}
				}
			}
			if mode == transport.HPush {
				return
			}
			objects := int64(perVolume * len(c.VolumeServers))
			for i, what := range []string{"the transform servers", "SeaweedFS"} {
				small, large := traffic[100_000][i], traffic[3_000_000][i]
				// Control traffic varies by a request or two (a retried
				// lookup, a new connection's headers on a loaded machine);
				// payload would add the difference in object sizes, 2.9 MB
				// an object.
				if large-small > objects*1024 {
					t.Errorf("the caller's traffic with %s grew with the object size (%d → %d bytes); it must not depend on it", what, small, large)
				}
			}
		})
	}
}

// SourceURL gives a one-chunk object's chunk on the volume server that
// holds it (up to the filer's chunk size, or a Sink's MaxChunkMB), and the
// filer URL of any other object; a missing object is NotFound. The map is
// the topology's, with the transform servers' URLs.
func TestPlacementSourceURL(t *testing.T) {
	t.Parallel()
	c := shared(t)
	ctx := t.Context()
	client := newClient(t, c, nil)
	topo, err := seaweedfs.NewTopology(client, &seaweedfs.TopologyOptions{
		TransformURL: func(addr string) string { return "http://transform-of-" + addr },
	})
	if err != nil {
		t.Fatal(err)
	}
	place, err := seaweedfs.NewPlacement(ctx, topo, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := place.Map()
	if m.Len() != len(c.VolumeServers) {
		t.Fatalf("map of %d nodes, want %d", m.Len(), len(c.VolumeServers))
	}
	for _, vs := range c.VolumeServers {
		n, ok := m.Node(vs)
		if !ok || n.TransformURL != "http://transform-of-"+vs {
			t.Errorf("node %s: %+v, %v", vs, n, ok)
		}
	}
	if again, err := place.Refresh(ctx); err != nil || again != m {
		t.Errorf("Refresh of an unchanged topology: %v, %v; want the same map", again, err)
	}

	big, err := seaweedfs.NewSink(client, &seaweedfs.SinkOptions{MaxChunkMB: 8})
	if err != nil {
		t.Fatal(err)
	}
	small, _ := seaweedfs.NewSink(client, nil)
	vs := c.VolumeServers[1]
	put := func(s *seaweedfs.Sink, key string, n int) insitu.Object {
		name := insitu.Name{Bucket: "urls", Key: key}
		if _, err := s.PutOn(ctx, vs, name, bytes.NewReader(sinktest.Content(key, n)), int64(n)); err != nil {
			t.Fatal(err)
		}
		obj, err := client.Stat(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return obj
	}
	filer := c.FilerURL + client.Root() + "/urls/"
	for _, tc := range []struct {
		obj    insitu.Object
		prefix string
	}{
		{put(small, "one.bin", 1000), "http://" + vs + "/"},
		{put(big, "six-mb.bin", 6<<20), "http://" + vs + "/"}, // one chunk of up to 8 MiB
		{put(small, "six-mb-chunked.bin", 6<<20), filer + "six-mb-chunked.bin"},
		{put(small, "empty.bin", 0), filer + "empty.bin"},
	} {
		u, tok, err := place.SourceURL(ctx, tc.obj)
		if err != nil || tok != "" || !strings.HasPrefix(u, tc.prefix) {
			t.Errorf("SourceURL(%s) = %q, %q, %v; want %s...", tc.obj.Name, u, tok, err, tc.prefix)
			continue
		}
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !bytes.Equal(b, sinktest.Content(tc.obj.Name.Key, int(tc.obj.Size))) {
			t.Errorf("GET %s: %d bytes, want the %d put", u, len(b), tc.obj.Size)
		}
	}
	if _, _, err := place.SourceURL(ctx, insitu.Object{Name: insitu.Name{Bucket: "urls", Key: "missing"}}); !errors.Is(err, insitu.NotFound) {
		t.Errorf("SourceURL of a missing object: %v", err)
	}
	if _, err := seaweedfs.NewPlacement(ctx, nil, nil); !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("NewPlacement(nil): %v", err)
	}
	if _, err := seaweedfs.NewSink(client, &seaweedfs.SinkOptions{MaxChunkMB: -1}); !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("MaxChunkMB -1: %v", err)
	}
}

// Destination is the filer URL of the name pinned by Pin; DestinationNear
// pins to the input's owner unless Pin names a server; both check the
// name as Put does. A PUT to the destination stores the object there.
func TestSinkDestination(t *testing.T) {
	t.Parallel()
	c := shared(t)
	ctx := t.Context()
	client := newClient(t, c, nil)
	vs := c.VolumeServers
	plain, _ := seaweedfs.NewSink(client, nil)
	pinned, _ := seaweedfs.NewSink(client, &seaweedfs.SinkOptions{
		Pin: func(n insitu.Name) string {
			if strings.HasPrefix(n.Key, "pinned/") {
				return vs[2]
			}
			return ""
		},
		MaxChunkMB: 16,
	})
	name := func(k string) insitu.Name { return insitu.Name{Bucket: "dests", Key: k} }
	near := insitu.Object{Name: insitu.Name{Bucket: "in", Key: "x"}, Owner: vs[0]}
	for _, tc := range []struct {
		s      *seaweedfs.Sink
		near   bool
		key    string
		server string // "" when unpinned
		query  string
	}{
		{plain, false, "a.bin", "", ""},
		{plain, true, "b.bin", vs[0], ""},
		{pinned, true, "pinned/c.bin", vs[2], "maxMB=16"},
		{pinned, true, "d.bin", vs[0], "maxMB=16"},
		{pinned, false, "e.bin", "", "maxMB=16"},
	} {
		var d insitu.Destination
		var err error
		if tc.near {
			d, err = tc.s.DestinationNear(ctx, name(tc.key), near)
		} else {
			d, err = tc.s.Destination(ctx, name(tc.key))
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.key, err)
		}
		u, _ := url.Parse(d.URL)
		if d.Name != name(tc.key) || d.Token != "" || u.Path != client.Root()+"/dests/"+tc.key ||
			u.Query().Get("dataNode") != tc.server || !strings.Contains(u.RawQuery, tc.query) {
			t.Errorf("%s: %+v; want pinned to %q", tc.key, d, tc.server)
		}
		// A PUT there stores the object, on the server pinned.
		b := sinktest.Content(tc.key, 5000)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPut, d.URL, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("PUT %s: %s", d.URL, resp.Status)
		}
		p := client.Root() + "/dests/" + tc.key
		if got, err := filerRead(t, c, p); err != nil || !bytes.Equal(got, b) {
			t.Errorf("%s: %d bytes, %v", p, len(got), err)
		}
		if s := serversOf(t, c, p); tc.server != "" && !slices.Equal(s[0], []string{tc.server}) {
			t.Errorf("%s: stored on %q, want %s", p, s, tc.server)
		}
	}
	filerMkdir(t, c, client.Root()+"/dests/dir")
	for _, tc := range []struct {
		name insitu.Name
		near insitu.Object
	}{
		{name("dir"), near},                                   // a directory
		{insitu.Name{Key: "no-bucket"}, near},                 // no bucket
		{name("../x"), near},                                  // invalid
		{name("ok"), insitu.Object{Owner: "not a host:port"}}, // a bad owner
	} {
		if _, err := plain.DestinationNear(ctx, tc.name, tc.near); !errors.Is(err, insitu.InvalidArgument) {
			t.Errorf("DestinationNear(%q, owner %q): %v, want InvalidArgument", tc.name, tc.near.Owner, err)
		}
	}
}
