package node_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/cluster"
	"github.com/insitu-data/insitu/internal/testutil"
	"github.com/insitu-data/insitu/node"
	"github.com/insitu-data/insitu/node/nodetest"
	"github.com/insitu-data/insitu/pipeline"
	"github.com/insitu-data/insitu/sink"
	"github.com/insitu-data/insitu/source"
)

// xxh64 is the ais-etl hashing transformer: the XXH64 of the input, seeded
// by the job's args, as 16 hex digits. It insists on local-file input, as
// node jobs provide.
var xxh64 = insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
	if in.Path == "" {
		return insitu.Errorf(insitu.InvalidArgument, "no local path: the job did not read from local disk")
	}
	var seed uint64
	if in.Args != "" {
		if _, err := fmt.Sscan(in.Args, &seed); err != nil {
			return insitu.Errorf(insitu.InvalidArgument, "args %q: want a seed", in.Args)
		}
	}
	f, err := os.Open(in.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := xxhash.NewWithSeed(seed)
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "%016x", h.Sum64())
	return err
})

// seedJobInputs writes the test data files and n generated text files into
// a local folder and seeds them into bucket on their owners; it returns the
// folder.
func seedJobInputs(t *testing.T, c *nodetest.Cluster, bucket string, n int) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"test-text.txt", "test-image.jpg", "test-audio-flac.flac", "test-audio-wav.wav"} {
		b, err := os.ReadFile(testutil.Testdata(t, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "docs"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		p := filepath.Join(dir, "docs", fmt.Sprintf("f-%03d.txt", i))
		if err := os.WriteFile(p, content(p, 1000+37*i), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := c.SeedDir(t.Context(), bucket, dir); err != nil || got != n+4 {
		t.Fatalf("SeedDir = %d, %v", got, err)
	}
	return dir
}

// outputsByNode walks every node's store of bucket and returns key → the
// IDs of the nodes that hold it, failing on any temporary file left.
func outputsByNode(t *testing.T, c *nodetest.Cluster, bucket string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, nd := range c.Nodes() {
		for k := range files(t, filepath.Join(nd.Dir(), bucket)) {
			if strings.Contains(k, ".insitu-tmp-") {
				t.Errorf("node %s: temporary file left: %s", nd.ID(), k)
			}
			out[k] = append(out[k], nd.ID())
		}
	}
	return out
}

func TestJobRunsOnEveryNode(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3, &nodetest.Options{Transforms: map[string]insitu.Transform{"xxh64": xxh64}})
	in := seedJobInputs(t, c, "in", 60)
	spec := cluster.JobSpec{Bucket: "in", DstBucket: "out", Transform: "xxh64", Args: "42",
		Rename: &cluster.RenameExt{From: ".txt", To: ".xxh"}, Workers: 3}
	rep, err := cluster.Run(t.Context(), c.Client(), spec, &cluster.Options{})
	if err != nil {
		t.Fatalf("RunCluster: %v\n%s", err, rep)
	}
	if rep.Listed != 64 || rep.Transformed != 64 || rep.Failed != 0 || len(rep.Nodes) != 3 {
		t.Fatalf("report:\n%s", rep)
	}
	// Each node did exactly its own objects.
	for _, nr := range rep.Nodes {
		owned := 0
		for _, o := range files(t, filepath.Join(c.Node(nr.Node).Dir(), "in")) {
			_ = o
			owned++
		}
		if nr.Report.Listed != int64(owned) || nr.Report.Transformed != int64(owned) || nr.Err != "" {
			t.Errorf("node %s: %+v, owns %d inputs", nr.Node, nr, owned)
		}
	}
	// Every output exists exactly once, on its owner.
	outs := outputsByNode(t, c, "out")
	if len(outs) != 64 {
		t.Fatalf("%d outputs, want 64", len(outs))
	}
	for k, holders := range outs {
		owner := c.Map().Owner(insitu.Name{Bucket: "out", Key: k}).ID
		if len(holders) != 1 || holders[0] != owner {
			t.Errorf("%s is on %v, want only on its owner %s", k, holders, owner)
		}
	}
	// The outputs are those of the same transform run in-process.
	local := t.TempDir()
	src, err := source.Dir(in, nil)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := sink.Dir(local, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pipeline.Run(t.Context(), src, xxh64, dst,
		&pipeline.Options{Args: "42", Rename: pipeline.ReplaceExt(".txt", ".xxh")}); err != nil {
		t.Fatal(err)
	}
	for k := range outs {
		got, _, err := readAll(t.Context(), c.Client(), insitu.Name{Bucket: "out", Key: k})
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join(local, k))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: cluster output %q, in-process %q (%v)", k, got, want, err)
		}
	}
	// Known answers of ais-etl's XXH64 transformer, seed 42.
	for k, want := range map[string]string{"test-text.xxh": "e31ae61f6b8c93a9", "test-image.jpg.xxh": "822f702067e280e9"} {
		got, _, err := readAll(t.Context(), c.Client(), insitu.Name{Bucket: "out", Key: k})
		if err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %s", k, got, err, want)
		}
	}
}

func TestJobSpecRefusedBeforeAnythingRuns(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3, &nodetest.Options{Transforms: map[string]insitu.Transform{"xxh64": xxh64}})
	seedJobInputs(t, c, "in", 5)
	for name, spec := range map[string]cluster.JobSpec{
		"unknown transform": {Bucket: "in", DstBucket: "out", Transform: "nope"},
		"bucket":            {Bucket: "../in", DstBucket: "out", Transform: "xxh64"},
		"rename":            {Bucket: "in", DstBucket: "out", Transform: "xxh64", Rename: &cluster.RenameExt{From: "flac", To: ".wav"}},
		"workers":           {Bucket: "in", DstBucket: "out", Transform: "xxh64", Workers: -1},
	} {
		spec.ID = "refused"
		_, err := cluster.Run(t.Context(), c.Client(), spec, &cluster.Options{})
		if !errors.Is(err, insitu.InvalidArgument) || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: err = %v, want InvalidArgument naming it", name, err)
		}
		for _, nd := range c.Nodes() {
			if _, err := nd.JobStatus(t.Context(), "refused", 0); !errors.Is(err, insitu.NotFound) {
				t.Errorf("%s: node %s has the job: %v", name, nd.ID(), err)
			}
		}
	}
	if outs := outputsByNode(t, c, "out"); len(outs) != 0 {
		t.Fatalf("a refused job wrote %v", outs)
	}
}

// gate blocks the objects whose local file is under a directory named by
// one of the node IDs, until release is closed or the context ends; it
// signals each blocked object on entered. Other objects pass unchanged.
func gate(entered chan<- string, release <-chan struct{}, nodes ...string) insitu.Transform {
	return insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		for _, id := range nodes {
			if in.Owner == id {
				select {
				case entered <- in.Name.Key:
				default:
				}
				select {
				case <-release:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		}
		_, err := io.Copy(out, in.Body)
		return err
	})
}

func TestAbortStopsOneJobOnly(t *testing.T) {
	t.Parallel()
	entered := make(chan string, 1)
	never := make(chan struct{})
	c := startCluster(t, 3, &nodetest.Options{Transforms: map[string]insitu.Transform{
		"stuck":    gate(entered, never, "n1", "n2", "n3"),
		"identity": insitu.Identity,
	}})
	seedJobInputs(t, c, "in", 30)
	opts := &cluster.Options{}

	ctx, cancel := context.WithCancel(t.Context())
	type result struct {
		rep cluster.Report
		err error
	}
	stuck := make(chan result, 1)
	go func() {
		rep, err := cluster.Run(ctx, c.Client(), cluster.JobSpec{ID: "stuck", Bucket: "in", DstBucket: "never", Transform: "stuck"}, opts)
		stuck <- result{rep, err}
	}()
	<-entered // the stuck job is running

	rep, err := cluster.Run(t.Context(), c.Client(), cluster.JobSpec{ID: "copy", Bucket: "in", DstBucket: "copy", Transform: "identity"}, opts)
	if err != nil || rep.Transformed != 34 {
		t.Fatalf("the other job: %v\n%s", err, rep)
	}

	cancel()
	res := <-stuck
	if !errors.Is(res.err, context.Canceled) {
		t.Fatalf("aborted job returned %v", res.err)
	}
	for _, nd := range c.Nodes() {
		st, err := nd.JobStatus(t.Context(), "stuck", 0)
		if err != nil || st.State != cluster.JobAborted {
			t.Errorf("node %s: stuck job %+v, %v; want aborted", nd.ID(), st, err)
		}
		st, err = nd.JobStatus(t.Context(), "copy", 0)
		if err != nil || st.State != cluster.JobDone {
			t.Errorf("node %s: copy job %+v, %v; want done", nd.ID(), st, err)
		}
	}
	// A put the aborted job had begun on another node ends when that node
	// sees the request canceled, which may be after the job has ended;
	// stopping a node waits for its requests in flight, so what is on disk
	// afterwards is final.
	for _, nd := range c.Nodes() {
		if err := c.StopNode(t.Context(), nd.ID()); err != nil {
			t.Fatal(err)
		}
	}
	if outs := outputsByNode(t, c, "never"); len(outs) != 0 {
		t.Errorf("the aborted job left outputs: %v", outs)
	}
	if outs := outputsByNode(t, c, "copy"); len(outs) != 34 {
		t.Errorf("the other job has %d outputs, want 34", len(outs))
	}
}

func TestNodeLostMidJobThenResume(t *testing.T) {
	t.Parallel()
	entered := make(chan string, 1)
	release := make(chan struct{})
	c := startCluster(t, 3, &nodetest.Options{Transforms: map[string]insitu.Transform{"gated": gate(entered, release, "n2")}})
	seedJobInputs(t, c, "in", 40)
	const total = 44
	owned := int64(len(files(t, filepath.Join(c.Node("n2").Dir(), "in"))))
	if owned == 0 {
		t.Fatal("n2 owns no inputs")
	}

	var counted atomic.Bool
	countedAll := make(chan struct{})
	// Lost is long enough that a busy machine (-race, other suites) does
	// not take a slow answer of n1 or n3 for a lost node.
	// n2 stops once n1 and n3 are done: an output of theirs that n2 owns
	// would otherwise fail to reach it.
	opts := &cluster.Options{Lost: 2e9, ProgressInterval: 20e6,
		Progress: func(s pipeline.Stats) {
			if s.Total == total && s.Transformed == total-owned && counted.CompareAndSwap(false, true) {
				close(countedAll)
			}
		}}
	spec := cluster.JobSpec{ID: "first", Bucket: "in", DstBucket: "out", Transform: "gated", ContinueOnError: true, Workers: 2}
	type result struct {
		rep cluster.Report
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := cluster.Run(t.Context(), c.Client(), spec, opts)
		done <- result{rep, err}
	}()
	<-entered
	<-countedAll // the coordinator knows how many objects every node has, and n1 and n3 are done
	stopNow, cancel := context.WithCancel(t.Context())
	cancel()
	if err := c.StopNode(stopNow, "n2"); err != nil {
		t.Fatal(err)
	}
	res := <-done
	if res.err == nil || !strings.Contains(res.err.Error(), "n2") {
		t.Fatalf("RunCluster = %v, want an error naming n2", res.err)
	}
	rep := res.rep
	if rep.Listed != total || rep.Failed != owned || rep.Transformed != total-owned {
		t.Fatalf("report (n2 owns %d):\n%s", owned, rep)
	}
	for _, nr := range rep.Nodes {
		if (nr.Node == "n2") != (nr.Err != "") {
			t.Errorf("node %s: error %q", nr.Node, nr.Err)
		}
	}

	// Bring n2 back and rerun with SkipExisting: only what is left runs.
	close(release)
	if err := c.RestartNode(t.Context(), "n2"); err != nil {
		t.Fatal(err)
	}
	spec.ID, spec.SkipExisting = "resume", true
	opts.Progress = nil
	rep, err := cluster.Run(t.Context(), c.Client(), spec, opts)
	if err != nil || rep.Transformed != owned || rep.Skipped != total-owned || rep.Failed != 0 {
		t.Fatalf("resume: %v\n%s", err, rep)
	}
	outs := outputsByNode(t, c, "out")
	if len(outs) != total {
		t.Fatalf("%d outputs after resume, want %d", len(outs), total)
	}
	for k, holders := range outs {
		if len(holders) != 1 {
			t.Errorf("%s on %v", k, holders)
		}
	}
}

// checkCounts checks that a cluster report adds up: Listed = Transformed
// + Skipped + Failed, for the cluster and for each node, and the nodes'
// counts sum to the cluster's.
func checkCounts(t *testing.T, rep cluster.Report) {
	t.Helper()
	if rep.Listed != rep.Transformed+rep.Skipped+rep.Failed {
		t.Errorf("listed %d != transformed %d + skipped %d + failed %d:\n%s", rep.Listed, rep.Transformed, rep.Skipped, rep.Failed, rep)
	}
	var listed int64
	for _, nr := range rep.Nodes {
		listed += nr.Report.Listed
		if r := nr.Report; r.Listed != r.Transformed+r.Skipped+r.Failed {
			t.Errorf("node %s: listed %d != transformed %d + skipped %d + failed %d", nr.Node, r.Listed, r.Transformed, r.Skipped, r.Failed)
		}
	}
	if listed != rep.Listed {
		t.Errorf("the nodes listed %d, the cluster %d:\n%s", listed, rep.Listed, rep)
	}
}

// TestJobNodeLacksTransform: a job naming a transform that one node does
// not have. That node refuses the job; the job stops everywhere, the
// error and the report name the node, and its objects count as failed, so
// that listed = transformed + skipped + failed holds for the cluster.
func TestJobNodeLacksTransform(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3, &nodetest.Options{
		Transforms: map[string]insitu.Transform{"xxh64": xxh64},
		NodeOptions: func(id string, o *node.Options) {
			if id == "n2" {
				o.Transforms = nil
			}
		},
	})
	seedJobInputs(t, c, "in", 40)
	owned := int64(len(files(t, filepath.Join(c.Node("n2").Dir(), "in"))))
	if owned == 0 {
		t.Fatal("n2 owns no inputs")
	}
	rep, err := cluster.Run(t.Context(), c.Client(), cluster.JobSpec{Bucket: "in", DstBucket: "out", Transform: "xxh64"}, &cluster.Options{})
	if !errors.Is(err, insitu.InvalidArgument) || !strings.Contains(err.Error(), "n2") || !strings.Contains(err.Error(), "xxh64") {
		t.Fatalf("Run = %v, want InvalidArgument naming n2 and the transform", err)
	}
	// The other nodes were aborted, perhaps before they listed all of
	// theirs: their counts add up, over what they listed.
	checkCounts(t, rep)
	for _, nr := range rep.Nodes {
		if nr.Node == "n2" && (nr.Err == "" || nr.Report.Failed != owned || nr.Report.Listed != owned) {
			t.Errorf("n2 (owns %d): %+v, want its objects failed and the reason", owned, nr)
		}
	}
}
