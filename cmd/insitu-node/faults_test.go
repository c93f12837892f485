package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/locality"
	"github.com/insitu-data/insitu/node/nodetest"
	"github.com/insitu-data/insitu/pipeline"
	"github.com/insitu-data/insitu/sink"
	"github.com/insitu-data/insitu/source"
	"github.com/insitu-data/insitu/transport"
)

// The fault suite of issue 11: real node processes (the command, or
// nodetest's in-process nodes where a test needs options the command has
// no flag for) and real transform servers, killed, starved of space, or
// faced with peers that never read or trickle. Each test checks the
// outputs byte for byte, the report's counts and the failures' codes.

// randomBytes returns n pseudo-random bytes drawn from seed.
func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 0x1f))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// xorSum is the SHA-256 of xorTransform's output for input b.
func xorSum(b []byte) [32]byte {
	return sha256.Sum256(xor(bytes.Clone(b)))
}

// toBucket is a pipeline Rename that moves each object to bucket.
func toBucket(bucket string) func(insitu.Name) (insitu.Name, error) {
	return func(n insitu.Name) (insitu.Name, error) { return insitu.Name{Bucket: bucket, Key: n.Key}, nil }
}

// checkObjects checks that bucket holds, over all the nodes of c's map,
// exactly the keys of want, each once, on its owner, with the SHA-256
// want gives.
func checkObjects(t *testing.T, ctx context.Context, c *locality.Client, bucket string, want map[string][32]byte) {
	t.Helper()
	m := c.Map()
	seen := map[string]string{}
	for _, nd := range m.Nodes() {
		for o, err := range c.ListAll(ctx, nd, bucket, nil) {
			if errors.Is(err, insitu.NotFound) {
				break // nothing stored in bucket on this node
			}
			if err != nil {
				t.Fatalf("listing %s on %s: %v", bucket, nd.ID, err)
			}
			if prev, ok := seen[o.Name.Key]; ok {
				t.Errorf("%s/%s is listed on %s and on %s", bucket, o.Name.Key, prev, nd.ID)
			}
			seen[o.Name.Key] = nd.ID
			if owner := m.Owner(o.Name).ID; owner != nd.ID {
				t.Errorf("%s/%s is on %s; its owner is %s", bucket, o.Name.Key, nd.ID, owner)
			}
		}
	}
	for key := range seen {
		if _, ok := want[key]; !ok {
			t.Errorf("%s/%s is listed; it should not exist", bucket, key)
		}
	}
	for key, sum := range want {
		if _, ok := seen[key]; !ok {
			t.Errorf("%s/%s is not listed", bucket, key)
		}
		rc, _, err := c.Get(ctx, insitu.Name{Bucket: bucket, Key: key})
		if err != nil {
			t.Errorf("GET %s/%s: %v", bucket, key, err)
			continue
		}
		h := sha256.New()
		_, err = io.Copy(h, rc)
		rc.Close()
		if err != nil {
			t.Errorf("reading %s/%s: %v", bucket, key, err)
		} else if got := [32]byte(h.Sum(nil)); got != sum {
			t.Errorf("%s/%s: SHA-256 %x, want %x", bucket, key, got[:8], sum[:8])
		}
	}
}

// checkAbsent checks that nothing is visible under bucket/key: HEAD is
// NotFound (listings are checked by checkObjects).
func checkAbsent(t *testing.T, ctx context.Context, c *locality.Client, bucket string, keys []string) {
	t.Helper()
	for _, key := range keys {
		if o, err := c.Head(ctx, insitu.Name{Bucket: bucket, Key: key}); !errors.Is(err, insitu.NotFound) {
			t.Errorf("HEAD %s/%s: %+v, %v; want NotFound", bucket, key, o, err)
		}
	}
}

// tempFiles lists the temporary files of atomicfile under dir, raw.
func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	var left []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), sink.TempPrefix) {
			left = append(left, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return left
}

// checkFailures checks that rep failed exactly the objects of bucket named
// by keys, each with code.
func checkFailures(t *testing.T, rep pipeline.Report, bucket string, keys []string, code insitu.Code) {
	t.Helper()
	var got []string
	for _, f := range rep.Failures {
		got = append(got, f.Name.Key)
		if f.Name.Bucket != bucket || f.Code != code || f.Message == "" {
			t.Errorf("failure %v: want an object of %s with code %v and a message", f, bucket, code)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, keys) || rep.FailuresDropped != 0 {
		t.Errorf("failed %q (+%d dropped); want %q", got, rep.FailuresDropped, keys)
	}
}

// TestTransformServerKilled kills a transform server process (SIGKILL)
// while it streams outputs, in every mode, with direct put on and off:
// the run ends at once, the objects in flight fail with Unavailable, every
// other output is whole and nothing is left of the failed ones; a rerun
// with SkipExisting against a new server does exactly the failed ones.
//
// Determinism: the run has W workers and W objects to stall on, listed
// last. The server stalls each of them after half its output and says so
// on its stdout; once it has said so W times, every worker holds a stalled
// object, so every other object is done, and those W are exactly the ones
// in flight when the test kills the server.
func TestTransformServerKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("runs transform servers as processes and kills them")
	}
	for _, tc := range []struct {
		mode  transport.Mode
		input string // how the server gets its input: "bytes", "local" (a file) or "url" (it fetches from the node)
	}{
		{transport.WS, "bytes"}, {transport.WS, "local"}, {transport.WS, "url"},
		{transport.HPush, "bytes"}, {transport.HPush, "local"},
		{transport.HPull, "url"}, {transport.HPull, "local"},
	} {
		for _, direct := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v/%s/direct=%v", tc.mode, tc.input, direct), func(t *testing.T) {
				t.Parallel()
				testTransformServerKilled(t, tc.mode, tc.input, direct)
			})
		}
	}
}

func testTransformServerKilled(t *testing.T, mode transport.Mode, input string, direct bool) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	const (
		n = 20 // objects that go through
		w = 4  // workers, and objects the server stalls on
	)
	c, err := nodetest.Start(ctx, 3, &nodetest.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	client := c.Client()

	// The inputs, in the cluster (bucket "in") and in a directory for
	// local-file input. The stalled ones ("z-…") are listed last.
	inDir := t.TempDir()
	want := map[string][32]byte{} // the output of each input
	var stalled, passed []string
	for i := range n + w {
		key, size := fmt.Sprintf("a-%02d", i), 8<<10
		if i >= n {
			key, size = fmt.Sprintf("z-%d", i-n), 96<<10
			stalled = append(stalled, key)
		} else {
			passed = append(passed, key)
		}
		b := randomBytes(uint64(i), size)
		want[key] = xorSum(b)
		if err := os.WriteFile(filepath.Join(inDir, key), b, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Put(ctx, insitu.Name{Bucket: "in", Key: key}, bytes.NewReader(b), int64(len(b))); err != nil {
			t.Fatal(err)
		}
	}

	var src insitu.Source
	if input == "local" {
		src, err = source.Dir(inDir, &source.DirOptions{Bucket: "in"})
	} else {
		src, err = source.Cluster(client, "in", nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	dst, err := sink.Cluster(client)
	if err != nil {
		t.Fatal(err)
	}
	// The transform server's secret: the one derived for transform
	// servers, never the cluster's.
	tsecret := c.Secret().TransformSecret()
	dial := func(srv *childServer) *transport.Client {
		opts := &transport.DialOptions{Mode: mode, Secret: tsecret, LocalFile: input == "local"}
		if input == "url" {
			// The object's URL on its node, and a token to read it.
			opts.SourceURL = func(obj insitu.Object) (string, string, error) {
				nd, ok := client.Map().Node(obj.Owner)
				if !ok {
					return "", "", fmt.Errorf("no node %q", obj.Owner)
				}
				return locality.ObjectURL(nd, obj.Name), client.ObjectToken(locality.Read, obj.Name), nil
			}
		}
		tr, err := transport.Dial(ctx, srv.url, opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close() })
		return tr
	}
	popts := &pipeline.Options{Workers: w, Rename: toBucket("out"), DirectPut: direct, ContinueOnError: true,
		Retries: 2, Backoff: 5 * time.Millisecond} // retries that meet the dead server

	// The run, and the kill once every worker holds a stalled object.
	srv := startTransformServer(t, tsecret, inDir, "z-")
	tr := dial(srv)
	type result struct {
		rep pipeline.Report
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := pipeline.Run(ctx, src, tr, dst, popts)
		done <- result{rep, err}
	}()
	var got []string
	for range w {
		select {
		case name := <-srv.stalls:
			got = append(got, name)
		case r := <-done:
			t.Fatalf("the run ended before the server stalled %d objects (it stalled %q): %v\n%v", w, got, r.err, r.rep)
		case <-time.After(30 * time.Second):
			t.Fatalf("the server stalled only %q within 30s", got)
		}
	}
	slices.Sort(got)
	for i, key := range stalled {
		if got[i] != "in/"+key {
			t.Fatalf("the server stalled %q; want the z- objects", got)
		}
	}
	srv.kill(t)
	killed := time.Now()
	var r result
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the run did not end within 30s of the server's death")
	}
	t.Logf("run ended %v after the kill: %v", time.Since(killed).Round(time.Millisecond), r.err)
	rep := r.rep
	if r.err != nil {
		t.Errorf("run: %v; want nil (ContinueOnError)", r.err)
	}
	if rep.Listed != n+w || rep.Transformed != n || rep.Failed != w || rep.Skipped != 0 {
		t.Errorf("killed run: listed %d, transformed %d, skipped %d, failed %d; want %d, %d, 0, %d\n%v",
			rep.Listed, rep.Transformed, rep.Skipped, rep.Failed, n+w, n, w, rep)
	}
	// A server that dies drops its connections: Unavailable, the code of a
	// peer that cannot be reached (and the one the runner retries).
	checkFailures(t, rep, "in", stalled, insitu.Unavailable)
	passedWant := map[string][32]byte{}
	for _, key := range passed {
		passedWant[key] = want[key]
	}
	checkObjects(t, ctx, client, "out", passedWant)
	checkAbsent(t, ctx, client, "out", stalled)

	// A new server, and the run again with SkipExisting.
	srv = startTransformServer(t, tsecret, inDir, "")
	popts.SkipExisting = true
	rep, err = pipeline.Run(ctx, src, dial(srv), dst, popts)
	if err != nil || rep.Listed != n+w || rep.Transformed != w || rep.Skipped != n || rep.Failed != 0 {
		t.Errorf("resumed run: %v, transformed %d, skipped %d, failed %d; want %d, %d, 0\n%v",
			err, rep.Transformed, rep.Skipped, rep.Failed, w, n, rep)
	}
	checkObjects(t, ctx, client, "out", want)

	// No temporary file is left of the cut uploads: close the cluster
	// (node.Shutdown waits for the nodes' requests to return) and look at
	// the stores raw.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if left := tempFiles(t, c.Dir()); len(left) > 0 {
		t.Errorf("temporary files left in the stores: %q", left)
	}
}
