package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/cluster"
	"github.com/insitu-data/insitu/locality"
	"github.com/insitu-data/insitu/node/nodetest"
	"github.com/insitu-data/insitu/pipeline"
	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: a
// job's coordinator leaves nothing behind once Run returns.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func startCluster(t *testing.T, n int, opts *nodetest.Options) *nodetest.Cluster {
	t.Helper()
	c, err := nodetest.Start(t.Context(), n, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// seed puts n small objects into bucket and returns how many each node
// owns.
func seed(t *testing.T, c *nodetest.Cluster, bucket string, n int) map[string]int64 {
	t.Helper()
	owned := map[string]int64{}
	for i := range n {
		name := insitu.Name{Bucket: bucket, Key: fmt.Sprintf("obj-%03d", i)}
		if _, err := c.Put(t.Context(), name, strings.NewReader(name.Key), -1); err != nil {
			t.Fatal(err)
		}
		owned[c.Map().Owner(name).ID]++
	}
	return owned
}

// progressRecorder keeps the last stats a Run's Progress got.
type progressRecorder struct {
	mu    sync.Mutex
	last  pipeline.Stats
	calls int
}

func (p *progressRecorder) progress(s pipeline.Stats) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.last, p.calls = s, p.calls+1
}

// A node that cannot start the job (its transform server is down) has the
// objects it owns counted as failed, in the report and in the final
// progress, which agree.
func TestRunNodeThatDoesNotStart(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3, &nodetest.Options{Sidecar: insitu.Identity})
	owned := seed(t, c, "in", 30)
	if owned["n2"] == 0 {
		t.Fatal("n2 owns no inputs")
	}
	stopNow, cancel := context.WithCancel(t.Context())
	cancel()
	if err := c.StopSidecar(stopNow, "n2"); err != nil {
		t.Fatal(err)
	}

	var p progressRecorder
	rep, err := cluster.Run(t.Context(), c.Client(),
		cluster.JobSpec{Bucket: "in", DstBucket: "out", Server: &cluster.ServerSpec{}, ContinueOnError: true},
		&cluster.Options{Progress: p.progress, ProgressInterval: 10 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "n2") {
		t.Fatalf("Run = %v, want an error naming n2", err)
	}
	if rep.Listed != 30 || rep.Failed != owned["n2"] || rep.Transformed != 30-owned["n2"] {
		t.Fatalf("report (n2 owns %d):\n%s", owned["n2"], rep)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.last
	if !s.Final || !s.ListingDone || s.Listed != rep.Listed || s.Failed != rep.Failed || s.Transformed != rep.Transformed {
		t.Fatalf("final progress %+v disagrees with the report:\n%s", s, rep)
	}
	if !strings.HasPrefix(s.Line(), "30/30 objects") {
		t.Errorf("final progress line %q", s.Line())
	}
}

// Without ContinueOnError, the first failure on one node stops the job on
// every node, and Run returns it.
func TestRunStopsAtFirstFailure(t *testing.T) {
	t.Parallel()
	fail := insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		if in.Name.Key == "obj-007" {
			return insitu.Errorf(insitu.InvalidArgument, "cannot transform this one")
		}
		_, err := io.Copy(out, in.Body)
		return err
	})
	c := startCluster(t, 3, &nodetest.Options{Transforms: map[string]insitu.Transform{"fail7": fail}})
	seed(t, c, "in", 20)
	rep, err := cluster.Run(t.Context(), c.Client(), cluster.JobSpec{Bucket: "in", DstBucket: "out", Transform: "fail7", Workers: 1}, nil)
	var e *insitu.Error
	if !errors.Is(err, insitu.InvalidArgument) || !errors.As(err, &e) || e.Name.Key != "obj-007" {
		t.Fatalf("Run = %v, want obj-007's InvalidArgument", err)
	}
	if rep.Listed != rep.Transformed+rep.Skipped+rep.Failed || rep.Failed == 0 {
		t.Fatalf("counts do not add up:\n%s", rep)
	}
}

// deleteCounter counts the DELETE requests that pass through it.
type deleteCounter struct {
	rt      http.RoundTripper
	deletes atomic.Int64
}

func (d *deleteCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodDelete {
		d.deletes.Add(1)
		return nil, errors.New("no DELETE expected")
	}
	return d.rt.RoundTrip(r)
}

// A job that ends well on every node is not aborted afterwards: Run sends
// no DELETE (one that failed made a finished run an error).
func TestRunCompletedSendsNoAbort(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 2, &nodetest.Options{Transforms: map[string]insitu.Transform{"identity": insitu.Identity}})
	seed(t, c, "in", 10)
	dc := &deleteCounter{rt: http.DefaultTransport.(*http.Transport).Clone()}
	defer dc.rt.(*http.Transport).CloseIdleConnections()
	client, err := locality.NewClient(c.Map(), &locality.ClientOptions{Secret: c.Secret(), HTTPClient: &http.Client{Transport: dc}})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := cluster.Run(t.Context(), client, cluster.JobSpec{Bucket: "in", DstBucket: "out", Transform: "identity"}, nil)
	if err != nil || rep.Transformed != 10 || rep.Failed != 0 {
		t.Fatalf("Run = %v\n%s", err, rep)
	}
	if n := dc.deletes.Load(); n != 0 {
		t.Fatalf("a completed job was aborted: %d DELETE requests", n)
	}
}

// TestRunPlacementByKey: on a cluster whose map places by key, a job that
// keeps its inputs' keys stores every output on the node that holds its
// input: each node's listing of the destination has exactly the keys of
// its listing of the source, and every output holds its input's bytes.
func TestRunPlacementByKey(t *testing.T) {
	c := startCluster(t, 3, &nodetest.Options{Placement: locality.ByKey,
		Transforms: map[string]insitu.Transform{"identity": insitu.Identity}})
	for _, nd := range c.Map().Nodes() {
		if p := c.Node(nd.ID).Map().Placement(); p != locality.ByKey {
			t.Fatalf("node %s places by %q, want %q", nd.ID, p, locality.ByKey)
		}
	}
	const n = 60
	owned := seed(t, c, "in", n)
	if len(owned) != 3 {
		t.Fatalf("the inputs are on %d nodes; want 3 (%v)", len(owned), owned)
	}
	rep, err := cluster.Run(t.Context(), c.Client(), cluster.JobSpec{Bucket: "in", DstBucket: "out", Transform: "identity"}, nil)
	if err != nil || rep.Transformed != n || rep.Failed != 0 {
		t.Fatalf("Run: %v, %v; want %d transformed", rep, err, n)
	}
	keys := func(nd locality.Node, bucket string) []string {
		var out []string
		for obj, err := range c.Client().ListAll(t.Context(), nd, bucket, nil) {
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, obj.Name.Key)
		}
		return out
	}
	total := 0
	for _, nd := range c.Map().Nodes() {
		in, out := keys(nd, "in"), keys(nd, "out")
		if strings.Join(in, ",") != strings.Join(out, ",") {
			t.Errorf("node %s holds inputs %q and outputs %q; want the same keys", nd.ID, in, out)
		}
		total += len(out)
	}
	if total != n {
		t.Errorf("the nodes hold %d outputs; want %d", total, n)
	}
	for i := range n {
		key := fmt.Sprintf("obj-%03d", i)
		rc, _, err := c.Client().Get(t.Context(), insitu.Name{Bucket: "out", Key: key})
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || string(b) != key {
			t.Fatalf("out/%s = %q, %v; want %q", key, b, err, key)
		}
	}
}
