package agent_test

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
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/cluster"
	"github.com/insitu-data/insitu/locality"
	"github.com/insitu-data/insitu/seaweedfs"
	"github.com/insitu-data/insitu/seaweedfs/agent"
	"github.com/insitu-data/insitu/seaweedfs/seaweedfstest"
	"github.com/insitu-data/insitu/sink/sinktest"
	"github.com/insitu-data/insitu/transport"
)

// flip inverts every byte, streaming.
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

// meter counts the bytes through its HTTP client's connections.
type meter struct{ n atomic.Int64 }

type meteredConn struct {
	net.Conn
	m *meter
}

func (c *meteredConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.m.n.Add(int64(n))
	return n, err
}

func (c *meteredConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.m.n.Add(int64(n))
	return n, err
}

func (m *meter) httpClient() *http.Client {
	var d net.Dialer
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &meteredConn{Conn: c, m: m}, nil
	}}}
}

// TestJobsNextToVolumeServers: cluster.Run drives a job over SeaweedFS
// through an agent next to each volume server, as over insitu's nodes, in
// every mode: in-process, and through the transform server next to the
// volume server over ws, hpull and hpush. Each agent does exactly the
// objects of its volume server; outputs are byte for byte the flipped
// inputs, each stored on its input's volume server; with ws and hpull
// each transform server fetches from its own volume server only; and the
// coordinator's connections carry control messages only, hpush included
// (the bytes go from the agent to the transform server next to it).
func TestJobsNextToVolumeServers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a SeaweedFS cluster")
	}
	t.Parallel()
	c := seaweedfstest.Start(t, nil)
	ctx := t.Context()
	secret := locality.Secret("cluster secret of the agents, 32 bytes")
	client, err := seaweedfs.NewClient(c.FilerURL, c.MasterURL, nil)
	if err != nil {
		t.Fatal(err)
	}

	// A transform server and an agent next to each volume server.
	var mu sync.Mutex
	fetched := map[string][]string{} // volume server → hosts its transform server fetched from
	agentURL := map[string]string{}
	transformURL := map[string]string{}
	for _, vs := range c.VolumeServers {
		srv, err := transport.NewServer(flip, &transport.ServerOptions{
			Secret: secret.TransformSecret(vs),
			AllowSource: func(u *url.URL) bool {
				mu.Lock()
				fetched[vs] = append(fetched[vs], u.Host)
				mu.Unlock()
				return transport.LoopbackOnly(u)
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(srv)
		t.Cleanup(func() { hs.Close(); srv.Shutdown(context.Background()) })
		transformURL[vs] = hs.URL
	}
	topo, err := seaweedfs.NewTopology(client, &seaweedfs.TopologyOptions{TransformURL: func(a string) string { return transformURL[a] }})
	if err != nil {
		t.Fatal(err)
	}
	place, err := seaweedfs.NewPlacement(ctx, topo, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, vs := range c.VolumeServers {
		a, err := agent.New(client, &agent.Options{
			Server: vs, Secret: secret, Transforms: map[string]insitu.Transform{"flip": flip},
			TransformURL: transformURL[vs], TransformSecret: secret.TransformSecret(vs), Placement: place,
		})
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(a.Handler())
		t.Cleanup(func() { a.Close(context.Background()); hs.Close() })
		agentURL[vs] = hs.URL
	}
	agents, err := seaweedfs.NewTopology(client, &seaweedfs.TopologyOptions{
		NodeURL:      func(a string) string { return agentURL[a] },
		TransformURL: func(a string) string { return transformURL[a] },
	})
	if err != nil {
		t.Fatal(err)
	}
	m, err := agents.Map(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var coord meter
	lc, err := locality.NewClient(m, &locality.ClientOptions{Secret: secret, HTTPClient: coord.httpClient()})
	if err != nil {
		t.Fatal(err)
	}

	// Inputs: 3 objects of 1 MB on each volume server.
	seed, err := seaweedfs.NewSink(client, nil)
	if err != nil {
		t.Fatal(err)
	}
	const size = 1 << 20
	inputs := map[string][]byte{}
	owner := map[string]string{}
	for i := range 3 * len(c.VolumeServers) {
		vs := c.VolumeServers[i%len(c.VolumeServers)]
		key := fmt.Sprintf("clip-%02d.bin", i)
		inputs[key] = sinktest.Content(key, size)
		owner[key] = vs
		if _, err := seed.PutOn(ctx, vs, insitu.Name{Bucket: "inputs", Key: key}, bytes.NewReader(inputs[key]), size); err != nil {
			t.Fatal(err)
		}
	}

	for i, spec := range []cluster.JobSpec{
		{Transform: "flip"},
		{Server: &cluster.ServerSpec{Mode: transport.WS}},
		{Server: &cluster.ServerSpec{Mode: transport.HPull}},
		{Server: &cluster.ServerSpec{Mode: transport.HPush}},
		{Server: &cluster.ServerSpec{Mode: transport.WS, DirectPut: true}},
	} {
		what := "in-process"
		if spec.Server != nil {
			what = fmt.Sprintf("%s direct-put=%v", spec.Server.Mode, spec.Server.DirectPut)
		}
		spec.ID, spec.Bucket, spec.DstBucket = fmt.Sprintf("job-%d", i), "inputs", fmt.Sprintf("outputs-%d", i)
		mu.Lock()
		fetched = map[string][]string{}
		mu.Unlock()
		before := coord.n.Load()
		rep, err := cluster.Run(ctx, lc, spec, nil)
		if err != nil || rep.Transformed != int64(len(inputs)) || rep.Failed != 0 || len(rep.Nodes) != len(c.VolumeServers) {
			t.Fatalf("%s: %v\n%s", what, err, rep)
		}
		for _, nr := range rep.Nodes {
			if nr.Report.Transformed != 3 {
				t.Errorf("%s: the agent of %s transformed %d, want its 3", what, nr.Node, nr.Report.Transformed)
			}
		}
		// The coordinator sent and received control messages only.
		traffic := coord.n.Load() - before
		t.Logf("%s: the coordinator's traffic: %d bytes for %d objects of %d bytes", what, traffic, len(inputs), size)
		if traffic > 256<<10 {
			t.Errorf("%s: the coordinator's traffic was %d bytes for %d objects of %d: payload passed through it", what, traffic, len(inputs), size)
		}
		outs, err := seaweedfs.NewSource(client, spec.DstBucket, nil)
		if err != nil {
			t.Fatal(err)
		}
		for key, b := range inputs {
			name := insitu.Name{Bucket: spec.DstBucket, Key: key}
			rc, err := outs.Open(ctx, insitu.Object{Name: name})
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			want := bytes.Clone(b)
			for j := range want {
				want[j] = ^want[j]
			}
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s: %s holds %d bytes (%v), want the %d flipped", what, name, len(got), err, len(b))
			}
			chunks, err := client.Chunks(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			for _, ch := range chunks {
				if len(ch.Servers) != 1 || ch.Servers[0] != owner[key] {
					t.Errorf("%s: a chunk of %s is on %v, want on %s, its input's volume server", what, name, ch.Servers, owner[key])
				}
			}
		}
		mu.Lock()
		for vs, hosts := range fetched {
			for _, h := range hosts {
				if h != vs {
					t.Errorf("%s: the transform server next to %s fetched from %s", what, vs, h)
				}
			}
		}
		mu.Unlock()
	}
}

// TestAgentRefuses: bad specs and tokens are refused with codes.
func TestAgentRefuses(t *testing.T) {
	t.Parallel()
	client, err := seaweedfs.NewClient("http://127.0.0.1:1", "http://127.0.0.1:1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := agent.New(client, &agent.Options{}); !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("New without a Server: %v", err)
	}
	a, err := agent.New(client, &agent.Options{Server: "127.0.0.1:1", Secret: locality.Secret("s")})
	if err != nil {
		t.Fatal(err)
	}
	for _, spec := range []cluster.JobSpec{
		{ID: "a", Bucket: "in", DstBucket: "out", Transform: "nope"},
		{ID: "b", Bucket: "in", DstBucket: "out", Server: &cluster.ServerSpec{Mode: transport.WS}}, // no transform server
	} {
		if _, err := a.Start(t.Context(), spec); !errors.Is(err, insitu.InvalidArgument) {
			t.Errorf("Start(%+v): %v, want InvalidArgument", spec, err)
		}
	}
	hs := httptest.NewServer(a.Handler())
	defer hs.Close()
	resp, err := http.Post(hs.URL+"/v1/jobs", "application/json", bytes.NewReader([]byte(`{}`)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("POST /v1/jobs without a token: %s, want 401", resp.Status)
	}
	if _, err := a.Status(t.Context(), "missing", 0); !errors.Is(err, insitu.NotFound) {
		t.Errorf("Status of a missing job: %v", err)
	}
}

// TestAgentForgetsOldJobs: an agent remembers at most MaxEndedJobs ended
// jobs, the oldest forgotten first, as a node does.
func TestAgentForgetsOldJobs(t *testing.T) {
	t.Parallel()
	client, err := seaweedfs.NewClient("http://127.0.0.1:1", "http://127.0.0.1:1", &seaweedfs.Options{Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(client, &agent.Options{Server: "127.0.0.1:1", Transforms: map[string]insitu.Transform{"copy": insitu.Identity}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(context.Background())
	for i := range agent.MaxEndedJobs + 10 {
		id := fmt.Sprintf("j%03d", i)
		if _, err := a.Start(t.Context(), cluster.JobSpec{ID: id, Bucket: "inputs", DstBucket: "outputs", Transform: "copy"}); err != nil {
			t.Fatal(err)
		}
		if st, err := a.Status(t.Context(), id, time.Minute); err != nil || st.State == cluster.JobRunning {
			t.Fatalf("%s: %+v, %v; want it ended (its filer is down)", id, st, err)
		}
	}
	if _, err := a.Start(t.Context(), cluster.JobSpec{ID: "last", Bucket: "inputs", DstBucket: "outputs", Transform: "copy"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Status(t.Context(), "j000", 0); !errors.Is(err, insitu.NotFound) {
		t.Errorf("the oldest job is still known: %v", err)
	}
	if _, err := a.Status(t.Context(), fmt.Sprintf("j%03d", agent.MaxEndedJobs+9), 0); err != nil {
		t.Errorf("the newest ended job is forgotten: %v", err)
	}
	if _, err := a.Start(t.Context(), cluster.JobSpec{Bucket: "inputs", DstBucket: "outputs", Transform: "copy"}); !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("a spec without an id: %v", err)
	}
}
