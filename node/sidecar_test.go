package node_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/cluster"
	"github.com/insitu-data/insitu/locality"
	"github.com/insitu-data/insitu/node/nodetest"
	"github.com/insitu-data/insitu/pipeline"
	"github.com/insitu-data/insitu/sink"
	"github.com/insitu-data/insitu/source"
	"github.com/insitu-data/insitu/transport"
)

// xorT XORs every input byte with the number in the first field of the
// job's args (default 0x5a), streaming. The rest of the args is a label
// that probe records; it does not change the output.
var xorT = insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
	key := byte(0x5a)
	if f := strings.Fields(in.Args); len(f) > 0 {
		n, err := strconv.Atoi(f[0])
		if err != nil {
			return insitu.Errorf(insitu.InvalidArgument, "args %q: want a number first", in.Args)
		}
		key = byte(n)
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := in.Body.Read(buf)
		for i := range buf[:n] {
			buf[i] ^= key
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
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
})

// probe wraps a transform and records, per label (the args after the
// first field), how many inputs came with a local path and how many
// without.
type probe struct {
	t       insitu.Transform
	mu      sync.Mutex
	withP   map[string]int
	without map[string]int
	dirs    []string // the node store directories a path must be under
}

func newProbe(t insitu.Transform) *probe {
	return &probe{t: t, withP: map[string]int{}, without: map[string]int{}}
}

func (p *probe) Transform(ctx context.Context, in *insitu.Input, out io.Writer) error {
	_, label, _ := strings.Cut(in.Args, " ")
	p.mu.Lock()
	if in.Path != "" {
		p.withP[label]++
		// The server may hand over a path that names its open file
		// (/proc/<pid>/fd/<n>): where it leads is what counts.
		real, err := filepath.EvalSymlinks(in.Path)
		inside := false
		for _, d := range p.dirs {
			if err == nil && strings.HasPrefix(real, d+string(filepath.Separator)) {
				inside = true
			}
		}
		if !inside {
			p.withP[label+" outside"]++
		}
	} else {
		p.without[label]++
	}
	p.mu.Unlock()
	return p.t.Transform(ctx, in, out)
}

func (p *probe) counts(label string) (with, without, outside int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.withP[label], p.without[label], p.withP[label+" outside"]
}

// reqCounter counts the requests of an HTTP client by method.
type reqCounter struct {
	rt         http.RoundTripper
	gets, puts atomic.Int64
}

func (c *reqCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	switch r.Method {
	case http.MethodGet:
		c.gets.Add(1)
	case http.MethodPut:
		c.puts.Add(1)
	}
	return c.rt.RoundTrip(r)
}

// reference runs t in-process over the local folder in and returns the
// outputs, key → bytes.
func reference(t *testing.T, in string, tr insitu.Transform, args string, rename func(insitu.Name) (insitu.Name, error)) map[string][]byte {
	t.Helper()
	dir := t.TempDir()
	src, err := source.Dir(in, nil)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := sink.Dir(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pipeline.Run(t.Context(), src, tr, dst,
		&pipeline.Options{Args: args, Rename: rename}); err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for k := range files(t, dir) {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(k)))
		if err != nil {
			t.Fatal(err)
		}
		out[k] = b
	}
	return out
}

// checkOutputs checks that bucket holds exactly want, each object once and
// on its owner, with the same bytes.
func checkOutputs(t *testing.T, c *nodetest.Cluster, bucket string, want map[string][]byte) {
	t.Helper()
	outs := outputsByNode(t, c, bucket)
	if len(outs) != len(want) {
		t.Errorf("%s: %d outputs, want %d", bucket, len(outs), len(want))
	}
	for k, holders := range outs {
		name := insitu.Name{Bucket: bucket, Key: k}
		if owner := c.Map().Owner(name).ID; len(holders) != 1 || holders[0] != owner {
			t.Errorf("%s is on %v, want only on its owner %s", name, holders, owner)
			continue
		}
		got, _, err := readAll(t.Context(), c.Client(), name)
		if err != nil {
			t.Fatal(err)
		}
		if w, ok := want[k]; !ok || checksum(got) != checksum(w) {
			t.Errorf("%s: checksum %s, in-process %s (present %v)", name, checksum(got), checksum(w), ok)
		}
	}
}

// TestSidecarJobEveryCombination runs the same job through the transform
// servers next to the nodes over every transport, with local-file input on
// and off and direct put on and off, and checks that each gives the
// outputs of the transform run in-process, each on its owner.
func TestSidecarJobEveryCombination(t *testing.T) {
	t.Parallel()
	p := newProbe(xorT)
	httpc := &reqCounter{rt: http.DefaultTransport.(*http.Transport).Clone()}
	c := startCluster(t, 3, &nodetest.Options{
		Sidecar:        p,
		SidecarOptions: &transport.ServerOptions{HTTPClient: &http.Client{Transport: httpc}},
	})
	for _, nd := range c.Nodes() {
		dir, err := filepath.EvalSymlinks(nd.Dir())
		if err != nil {
			t.Fatal(err)
		}
		p.dirs = append(p.dirs, dir)
	}
	in := seedJobInputs(t, c, "in", 20)
	const total = 24
	rename := pipeline.ReplaceExt(".txt", ".x")
	want := reference(t, in, xorT, "7 reference", rename)
	if len(want) != total {
		t.Fatalf("in-process run made %d outputs", len(want))
	}

	for _, mode := range transport.Modes() {
		for _, local := range []bool{false, true} {
			for _, direct := range []bool{false, true} {
				label := fmt.Sprintf("%s-local%v-direct%v", mode, local, direct)
				t.Run(label, func(t *testing.T) {
					gets, puts := httpc.gets.Load(), httpc.puts.Load()
					spec := cluster.JobSpec{Bucket: "in", DstBucket: "out-" + strings.ToLower(label), Args: "7 " + label,
						Server:  &cluster.ServerSpec{Mode: mode, LocalFile: local, DirectPut: direct},
						Rename:  &cluster.RenameExt{From: ".txt", To: ".x"},
						Workers: 4}
					rep, err := cluster.Run(t.Context(), c.Client(), spec, &cluster.Options{})
					if err != nil || rep.Transformed != total || rep.Failed != 0 {
						t.Fatalf("RunCluster: %v\n%s", err, rep)
					}
					checkOutputs(t, c, spec.DstBucket, want)

					// How the inputs travelled.
					with, without, outside := p.counts(label)
					fetched := httpc.gets.Load() - gets
					switch {
					case outside != 0:
						t.Errorf("%d inputs had a path outside the node stores", outside)
					case local && (with != total || without != 0):
						t.Errorf("local file: %d inputs with a path, %d without; want all with", with, without)
					case !local && (with != 0 || without != total):
						t.Errorf("no local file: %d inputs with a path, %d without; want none with", with, without)
					case mode == transport.HPull && !local && fetched != total:
						t.Errorf("hpull: the servers fetched %d inputs from the nodes, want %d", fetched, total)
					case (mode != transport.HPull || local) && fetched != 0:
						// ws and hpush send the bytes themselves (or the path).
						t.Errorf("%s: the servers fetched %d inputs, want none: the node sends them", mode, fetched)
					}
					// Direct put: the servers put every output; else none.
					if put := httpc.puts.Load() - puts; direct && put != total || !direct && put != 0 {
						t.Errorf("the servers made %d direct puts, want %d", put, map[bool]int{true: total}[direct])
					}
					if rep.BytesOut == 0 || rep.BytesIn == 0 {
						t.Errorf("bytes in %d, out %d", rep.BytesIn, rep.BytesOut)
					}
				})
			}
		}
	}
}

// TestSidecarTransformError: a server's transform error reaches the
// node's report with its code and message, over every transport, and the
// other objects are done.
func TestSidecarTransformError(t *testing.T) {
	t.Parallel()
	failing := insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		if strings.HasSuffix(in.Name.Key, "f-003.txt") || strings.HasSuffix(in.Name.Key, "f-011.txt") {
			return insitu.Errorf(insitu.InvalidArgument, "not a text we like")
		}
		return xorT.Transform(ctx, in, out)
	})
	c := startCluster(t, 3, &nodetest.Options{Sidecar: failing})
	seedJobInputs(t, c, "in", 20)
	for _, mode := range transport.Modes() {
		for _, direct := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s-direct%v", mode, direct), func(t *testing.T) {
				spec := cluster.JobSpec{Bucket: "in", DstBucket: fmt.Sprintf("out-%s-%v", mode, direct), ContinueOnError: true,
					Server: &cluster.ServerSpec{Mode: mode, DirectPut: direct}}
				rep, err := cluster.Run(t.Context(), c.Client(), spec, &cluster.Options{})
				if err != nil {
					t.Fatalf("RunCluster: %v", err)
				}
				if rep.Transformed != 22 || rep.Failed != 2 || len(rep.Failures) != 2 {
					t.Fatalf("report:\n%s", rep)
				}
				for _, f := range rep.Failures {
					if f.Code != insitu.InvalidArgument || !strings.Contains(f.Message, "not a text we like") ||
						!strings.HasPrefix(f.Name.Key, "docs/f-0") {
						t.Errorf("failure %v, want the transform's InvalidArgument and message", f)
					}
				}
				if outs := outputsByNode(t, c, spec.DstBucket); len(outs) != 22 {
					t.Errorf("%d outputs, want 22", len(outs))
				}
			})
		}
	}
	// Without ContinueOnError the job stops at the first and says why. (The
	// objects that the stop cancels on the other nodes fail too.)
	spec := cluster.JobSpec{Bucket: "in", DstBucket: "stops", Server: &cluster.ServerSpec{Mode: transport.WS}}
	rep, err := cluster.Run(t.Context(), c.Client(), spec, &cluster.Options{})
	if err == nil {
		t.Fatalf("RunCluster succeeded:\n%s", rep)
	}
	found := false
	for _, f := range rep.Failures {
		found = found || f.Code == insitu.InvalidArgument && strings.Contains(f.Message, "not a text we like")
	}
	if !found {
		t.Fatalf("RunCluster = %v; the report has not the transform's error:\n%s", err, rep)
	}
}

// gatedOn blocks the objects owned by node id under *m, signalling each on
// entered, until their context ends (the transform server dies) — while
// open is false; once open, it lets everything through to xorT.
type gatedOn struct {
	id      string
	m       atomic.Pointer[locality.Map]
	open    atomic.Bool
	entered chan string
	calls   sync.Map // key → *atomic.Int32
}

func (g *gatedOn) Transform(ctx context.Context, in *insitu.Input, out io.Writer) error {
	n, _ := g.calls.LoadOrStore(in.Name.Key, new(atomic.Int32))
	n.(*atomic.Int32).Add(1)
	if m := g.m.Load(); m != nil && !g.open.Load() && m.Owner(in.Name).ID == g.id {
		select {
		case g.entered <- in.Name.Key:
		default:
		}
		<-ctx.Done()
		return ctx.Err()
	}
	return xorT.Transform(ctx, in, out)
}

// TestSidecarKilledMidJob: a transform server killed while objects are in
// flight on it fails them with Unavailable; the runner's retries resend
// them once it is back, and the job completes with every output right. A
// job without retries counts them failed, with the code.
func TestSidecarKilledMidJob(t *testing.T) {
	t.Parallel()
	for _, mode := range transport.Modes() {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			g := &gatedOn{id: "n2", entered: make(chan string, 1)}
			var logs syncBuffer
			c := startCluster(t, 3, &nodetest.Options{Sidecar: g, Logger: debugLogger(&logs)})
			g.m.Store(c.Map())
			in := seedJobInputs(t, c, "in", 30)
			const total = 34
			want := reference(t, in, xorT, "", nil)

			spec := cluster.JobSpec{Bucket: "in", DstBucket: "out", Retries: 6, Workers: 2,
				Server: &cluster.ServerSpec{Mode: mode, DirectPut: mode == transport.HPull}}
			done := make(chan error, 1)
			var rep cluster.Report
			go func() {
				var err error
				rep, err = cluster.Run(t.Context(), c.Client(), spec, &cluster.Options{})
				done <- err
			}()
			key := <-g.entered // an object of n2 is in its transform server
			g.open.Store(true)
			crash, cancel := context.WithCancel(t.Context())
			cancel()
			if err := c.StopSidecar(crash, "n2"); err != nil {
				t.Fatal(err)
			}
			if err := c.RestartSidecar(t.Context(), "n2"); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil || rep.Transformed != total || rep.Failed != 0 {
				t.Fatalf("RunCluster: %v\n%s", err, rep)
			}
			checkOutputs(t, c, "out", want)
			if n, _ := g.calls.Load(key); n.(*atomic.Int32).Load() < 2 {
				t.Errorf("%s was transformed %d times, want a retry", key, n.(*atomic.Int32).Load())
			}
			if l := logs.String(); !strings.Contains(l, "retrying") || !strings.Contains(l, "unavailable") {
				t.Errorf("no retry after an Unavailable failure in the node's log:\n%.3000s", l)
			}
		})
	}

	t.Run("no retries", func(t *testing.T) {
		t.Parallel()
		g := &gatedOn{id: "n2", entered: make(chan string, 1)}
		c := startCluster(t, 3, &nodetest.Options{Sidecar: g})
		g.m.Store(c.Map())
		seedJobInputs(t, c, "in", 30)
		const total = 34
		owned := len(files(t, filepath.Join(c.Node("n2").Dir(), "in")))
		spec := cluster.JobSpec{Bucket: "in", DstBucket: "out", Retries: -1, ContinueOnError: true, Workers: 2,
			Server: &cluster.ServerSpec{Mode: transport.WS}}
		done := make(chan error, 1)
		var rep cluster.Report
		go func() {
			var err error
			rep, err = cluster.Run(t.Context(), c.Client(), spec, &cluster.Options{})
			done <- err
		}()
		<-g.entered
		crash, cancel := context.WithCancel(t.Context())
		cancel()
		if err := c.StopSidecar(crash, "n2"); err != nil { // and it stays down
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatalf("RunCluster: %v\n%s", err, rep)
		}
		if rep.Failed != int64(owned) || rep.Transformed != int64(total-owned) {
			t.Fatalf("n2 owns %d; report:\n%s", owned, rep)
		}
		for _, f := range rep.Failures {
			if f.Code != insitu.Unavailable {
				t.Errorf("failure %v, want Unavailable", f)
			}
		}
	})
}

// TestSidecarRefused: a server job on nodes without a transform server is
// refused before anything runs; a transform server refuses a destination
// or a source that is not a node of its map, saying so.
func TestSidecarRefused(t *testing.T) {
	t.Parallel()
	plain := startCluster(t, 2, nil)
	seedJobInputs(t, plain, "in", 3)
	_, err := cluster.Run(t.Context(), plain.Client(), cluster.JobSpec{ID: "nosidecar", Bucket: "in", DstBucket: "out",
		Server: &cluster.ServerSpec{}}, &cluster.Options{})
	if !errors.Is(err, insitu.InvalidArgument) || !strings.Contains(err.Error(), "no transform server") {
		t.Fatalf("RunCluster without transform servers = %v", err)
	}
	if err := plain.StopSidecar(t.Context(), "n1"); !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("StopSidecar without sidecars = %v", err)
	}

	c := startCluster(t, 2, &nodetest.Options{Sidecar: insitu.Identity})
	other := startCluster(t, 1, nil) // a node that is not in c's map
	n1, _ := c.Map().Node("n1")
	outsider := other.Map().Nodes()[0]
	name := insitu.Name{Bucket: "in", Key: "k"}
	for _, mode := range transport.Modes() {
		cl, err := transport.Dial(t.Context(), n1.TransformURL, &transport.DialOptions{Mode: mode, Secret: c.Secret().TransformSecret("n1"),
			SourceURL: func(insitu.Object) (string, string, error) {
				return locality.ObjectURL(outsider, name), "", nil
			}})
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		in := &insitu.Input{Object: insitu.Object{Name: name, Size: 1}, Body: strings.NewReader("x")}
		dst := insitu.Destination{Name: name, URL: locality.ObjectURL(outsider, name), Token: c.Client().ObjectToken(locality.Write, name)}
		_, err = cl.TransformTo(t.Context(), in, dst)
		what := "direct-put destination"
		if mode != transport.HPush {
			what = "source" // checked first
		}
		if !errors.Is(err, insitu.InvalidArgument) || !strings.Contains(err.Error(), what) ||
			!strings.Contains(err.Error(), "not an object URL of a node of the cluster map") {
			t.Errorf("%s: a destination outside the map: %v", mode, err)
		}
		if outs := outputsByNode(t, other, "in"); len(outs) != 0 {
			t.Errorf("%s: the outsider got %v", mode, outs)
		}
	}
	// A node of the map is accepted.
	cl, err := transport.Dial(t.Context(), n1.TransformURL, &transport.DialOptions{Mode: transport.HPush, Secret: c.Secret().TransformSecret("n1")})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	owner := c.Map().Owner(name)
	res, err := cl.TransformTo(t.Context(), &insitu.Input{Object: insitu.Object{Name: name, Size: 1}, Body: strings.NewReader("x")},
		insitu.Destination{Name: name, URL: locality.ObjectURL(owner, name), Token: c.Client().ObjectToken(locality.Write, name)})
	if err != nil || res.Owner != owner.ID || res.Size != 1 {
		t.Fatalf("a direct put to the owner: %+v, %v", res, err)
	}
	if got, _, err := readAll(t.Context(), c.Client(), name); err != nil || !bytes.Equal(got, []byte("x")) {
		t.Fatalf("stored %q, %v", got, err)
	}
}

// TestSidecarDownAtStart: a node whose transform server is down fails to
// start its part of the job, with Unavailable, named in the report; its
// objects count as failed, so that listed = transformed + skipped +
// failed holds for the cluster; the others do theirs, and a rerun with
// SkipExisting does the rest once it is back.
func TestSidecarDownAtStart(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3, &nodetest.Options{Sidecar: xorT})
	in := seedJobInputs(t, c, "in", 20)
	if err := c.StopSidecar(t.Context(), "n3"); err != nil {
		t.Fatal(err)
	}
	owned := int64(len(files(t, filepath.Join(c.Node("n3").Dir(), "in"))))
	spec := cluster.JobSpec{ID: "first", Bucket: "in", DstBucket: "out", ContinueOnError: true, Server: &cluster.ServerSpec{Mode: transport.WS}}
	rep, err := cluster.Run(t.Context(), c.Client(), spec, &cluster.Options{})
	if !errors.Is(err, insitu.Unavailable) || !strings.Contains(err.Error(), "n3") {
		t.Fatalf("RunCluster = %v, want Unavailable naming n3\n%s", err, rep)
	}
	if rep.Listed != 24 || rep.Transformed != 24-owned || rep.Failed != owned {
		t.Fatalf("n3 owns %d:\n%s", owned, rep)
	}
	checkCounts(t, rep)
	for _, nr := range rep.Nodes {
		if (nr.Node == "n3") != (nr.Err != "") || nr.Node == "n3" && (nr.Report.Failed != owned || !strings.Contains(nr.Err, "unavailable")) {
			t.Errorf("node %s: %+v", nr.Node, nr)
		}
	}
	if err := c.RestartSidecar(t.Context(), "n3"); err != nil {
		t.Fatal(err)
	}
	spec.ID, spec.SkipExisting = "again", true
	rep, err = cluster.Run(t.Context(), c.Client(), spec, &cluster.Options{})
	if err != nil || rep.Transformed != owned || rep.Skipped != 24-owned {
		t.Fatalf("rerun: %v\n%s", err, rep)
	}
	checkOutputs(t, c, "out", reference(t, in, xorT, "", nil))
}
