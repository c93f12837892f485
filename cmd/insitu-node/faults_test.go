package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/cluster"
	"github.com/insitu-data/insitu/locality"
	"github.com/insitu-data/insitu/node"
	"github.com/insitu-data/insitu/node/nodetest"
	"github.com/insitu-data/insitu/pipeline"
	"github.com/insitu-data/insitu/sink"
	"github.com/insitu-data/insitu/source"
	"github.com/insitu-data/insitu/transport"
	"go.uber.org/goleak"
)

// The fault suite of issue 11: real node processes (the command, or
// nodetest's in-process nodes where a test needs options the command has
// no flag for) and real transform servers, killed, starved of space, or
// faced with peers that never read or trickle. Each test checks the
// outputs byte for byte, the report's counts and the failures' codes.

// randomBytes returns n pseudo-random bytes drawn from seed.
func randomBytes(seed uint64, n int) []byte {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	b := make([]byte, n)
	rand.NewChaCha8(s).Read(b)
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
	tsecret := c.Secret().TransformSecret("n1")
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

// needRoot skips t, saying why, when the test cannot run as it is: it
// needs root to mount a file system. With CI=true it fails instead, so
// that CI cannot skip it silently.
func needRoot(t *testing.T, err error) {
	t.Helper()
	if err == nil && os.Geteuid() == 0 {
		return
	}
	why := "needs root to mount a tmpfs"
	if err != nil {
		why = fmt.Sprintf("cannot mount a tmpfs: %v", err)
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s, and CI=true: CI must run it as root", why)
	}
	t.Skipf("%s: run the tests as root (CI=true makes this a failure)", why)
}

// mountTmpfs mounts a tmpfs of size bytes on dir, unmounted in t.Cleanup.
func mountTmpfs(t *testing.T, dir string, size int64) {
	t.Helper()
	needRoot(t, nil)
	err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0755", size))
	needRoot(t, err)
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
}

// TestDiskFull runs a job whose outputs overflow a node's store (a small
// tmpfs, as root): the outputs that do not fit fail with Unavailable, the
// code of a full disk (internal/fserr: ENOSPC), whether the node writes
// them itself or a peer PUTs them; the counts add up; every output that
// exists is whole; no temporary file is left; and the node keeps serving.
// Once the file system is larger, a rerun with SkipExisting does exactly
// the failed ones.
func TestDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("mounts a tmpfs and runs a job on it")
	}
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	const (
		n    = 48
		size = 32 << 10
	)
	// n2's store is the tmpfs. Placement depends on node IDs only, so
	// the test knows the owners before the nodes start, and makes the
	// file system hold n2's inputs and about half of its outputs.
	placement, err := locality.NewMap(1, locality.Node{ID: "n1", URL: "http://127.0.0.1:1"}, locality.Node{ID: "n2", URL: "http://127.0.0.1:2"})
	if err != nil {
		t.Fatal(err)
	}
	inputs := map[string][]byte{}
	wantIn, wantOut := map[string][32]byte{}, map[string][32]byte{}
	var n2In, n2Out int64
	for i := range n {
		key := fmt.Sprintf("k-%03d", i)
		inputs[key] = randomBytes(uint64(1000+i), size)
		wantIn[key], wantOut[key] = sha256.Sum256(inputs[key]), xorSum(inputs[key])
		if placement.Owns("n2", insitu.Name{Bucket: "in", Key: key}) {
			n2In++
		}
		if placement.Owns("n2", insitu.Name{Bucket: "out", Key: key}) {
			n2Out++
		}
	}
	if n2Out < 4 {
		t.Fatalf("n2 owns %d outputs: too few for the test", n2Out)
	}
	base := t.TempDir()
	mnt := filepath.Join(base, "n2")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	mountTmpfs(t, mnt, (n2In+n2Out/2)*size)

	c, err := nodetest.Start(ctx, 2, &nodetest.Options{Dir: base, Transforms: map[string]insitu.Transform{"xor": xorTransform}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	client := c.Client()
	for key, b := range inputs {
		if _, err := c.Put(ctx, insitu.Name{Bucket: "in", Key: key}, bytes.NewReader(b), size); err != nil {
			t.Fatalf("putting the inputs: %v", err)
		}
	}

	spec := cluster.JobSpec{ID: "full", Bucket: "in", DstBucket: "out", Transform: "xor", Workers: 2, ContinueOnError: true,
		Retries: -1} // a full disk stays full: no retry
	rep, err := cluster.Run(ctx, client, spec, nil)
	t.Logf("run on a full disk: %v\n%v", err, rep)
	if err != nil {
		t.Errorf("run: %v; want nil (ContinueOnError)", err)
	}
	if rep.Listed != n || rep.Transformed+rep.Skipped+rep.Failed != n || rep.Skipped != 0 || rep.Failed == 0 || rep.Failed > n2Out {
		t.Fatalf("run on a full disk: listed %d, transformed %d, skipped %d, failed %d; want %d listed, 1..%d failed, none skipped",
			rep.Listed, rep.Transformed, rep.Skipped, rep.Failed, n, n2Out)
	}
	var failed []string
	for _, f := range rep.Failures {
		failed = append(failed, f.Name.Key)
		out := insitu.Name{Bucket: "out", Key: f.Name.Key}
		if f.Name.Bucket != "in" || f.Code != insitu.Unavailable || !strings.Contains(f.Message, "no space left on device") {
			t.Errorf("failure %v: want an input of in, Unavailable, saying no space is left", f)
		}
		if !placement.Owns("n2", out) {
			t.Errorf("failure %v: its output belongs to n1, whose disk is not full", f)
		}
		delete(wantOut, f.Name.Key)
	}
	if int64(len(rep.Failures)) != rep.Failed {
		t.Errorf("%d failures named for %d failed", len(rep.Failures), rep.Failed)
	}
	// Both ways to a full disk failed: n2's own writes, and n1's PUTs.
	var byN1, byN2 bool
	for _, key := range failed {
		byN1 = byN1 || placement.Owns("n1", insitu.Name{Bucket: "in", Key: key})
		byN2 = byN2 || placement.Owns("n2", insitu.Name{Bucket: "in", Key: key})
	}
	if !byN1 || !byN2 {
		t.Logf("the failures came from n1's PUTs: %v, from n2's own writes: %v (not both)", byN1, byN2)
	}
	checkObjects(t, ctx, client, "out", wantOut) // what exists is whole
	checkAbsent(t, ctx, client, "out", failed)
	if left := tempFiles(t, base); len(left) > 0 {
		t.Errorf("temporary files left: %q", left)
	}
	// The node still serves: its inputs, whole.
	for _, nd := range client.Map().Nodes() {
		if err := client.Health(ctx, nd); err != nil {
			t.Errorf("health of %s: %v", nd.ID, err)
		}
	}
	checkObjects(t, ctx, client, "in", wantIn)

	// Room, and the rest.
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", syscall.MS_REMOUNT, fmt.Sprintf("size=%d", 4*n*size)); err != nil {
		t.Fatalf("remounting larger: %v", err)
	}
	spec.ID, spec.SkipExisting = "full-2", true
	rep2, err := cluster.Run(ctx, client, spec, nil)
	if err != nil || rep2.Listed != n || rep2.Transformed != rep.Failed || rep2.Skipped != rep.Transformed || rep2.Failed != 0 {
		t.Errorf("resumed run: %v, transformed %d, skipped %d, failed %d; want %d, %d, 0\n%v",
			err, rep2.Transformed, rep2.Skipped, rep2.Failed, rep.Failed, rep.Transformed, rep2)
	}
	for key, b := range inputs {
		wantOut[key] = xorSum(b)
	}
	checkObjects(t, ctx, client, "out", wantOut)
	if left := tempFiles(t, base); len(left) > 0 {
		t.Errorf("temporary files left: %q", left)
	}
}

// deafPeer is a TCP listener that accepts connections and never reads
// from them (nor writes): a node that froze, or a hostile one.
type deafPeer struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	done  chan struct{}
}

func newDeafPeer(t *testing.T) *deafPeer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &deafPeer{ln: ln, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.conns = append(p.conns, c)
			p.mu.Unlock()
		}
	}()
	return p
}

// accepted returns how many connections the peer accepted.
func (p *deafPeer) accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// close closes the listener and every connection, and waits for the
// accepting goroutine.
func (p *deafPeer) close() {
	p.ln.Close()
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// TestPeerNeverReads runs a node job whose outputs partly belong to a
// peer that accepts connections and never reads (a raw listener in the
// map as node n3). The nodes' ProgressTimeout is small, and no job
// Timeout is set: the node's own bounds must end each put to the peer.
// Those outputs fail with a named error and a deadline or unavailable
// code (Unavailable, as observed: "timeout awaiting response headers"
// for small ones, a write's "i/o timeout" for large ones), in bounded time; every other output is whole; the jobs' reports
// add up exactly; and nothing leaks (goleak), the peer's connections once
// closed included. Small outputs test the wait for the peer's answer,
// large ones (more than the socket buffers hold) each write of the body.
func TestPeerNeverReads(t *testing.T) {
	if testing.Short() {
		t.Skip("runs jobs against a peer that never reads")
	}
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for _, tc := range []struct {
		name string
		size int
	}{{"small", 4 << 10}, {"large", 8 << 20}} {
		t.Run(tc.name, func(t *testing.T) { testPeerNeverReads(t, tc.size) })
	}
}

func testPeerNeverReads(t *testing.T, size int) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	// Small bounds, but ones that honest transfers between the nodes
	// meet even on a loaded machine (-race on 2 cores, CI's other packages
	// at once): 16 KiB per 2 s. The bound on reads is also how long a node
	// waits for a put's answer, the owner's fsyncs included: at 500ms an
	// honest put of 4 KiB was cut off once in CI.
	const progress = 2 * time.Second
	c, err := nodetest.Start(ctx, 2, &nodetest.Options{
		Transforms: map[string]insitu.Transform{"xor": xorTransform},
		NodeOptions: func(_ string, o *node.Options) {
			o.ProgressTimeout, o.ProgressBytes = progress, 16<<10
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	peer := newDeafPeer(t)
	defer peer.close()

	// The map with n3, the deaf peer, pushed to the nodes and the client.
	client := c.Client()
	m2, err := client.Map().With(locality.Node{ID: "n3", URL: "http://" + peer.ln.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	live := c.Map().Nodes() // n1, n2
	for _, nd := range live {
		if _, err := client.PushMap(ctx, nd, m2); err != nil {
			t.Fatal(err)
		}
	}
	if !client.SetMap(m2) {
		t.Fatal("the client did not take map 2")
	}

	// Inputs that n1 and n2 own; some of their outputs belong to n3.
	const n = 12
	wantOut := map[string][32]byte{}
	var toPeer []string
	for i := 0; len(wantOut)+len(toPeer) < n; i++ {
		key := fmt.Sprintf("k-%03d", i)
		in := insitu.Name{Bucket: "in", Key: key}
		if m2.Owns("n3", in) {
			continue
		}
		toN3 := m2.Owns("n3", insitu.Name{Bucket: "out", Key: key})
		b := randomBytes(uint64(2000+i), 4<<10)
		if toN3 {
			b = randomBytes(uint64(2000+i), size)
		}
		if _, err := client.Put(ctx, in, bytes.NewReader(b), int64(len(b))); err != nil {
			t.Fatal(err)
		}
		if toN3 {
			toPeer = append(toPeer, key)
		} else {
			wantOut[key] = xorSum(b)
		}
	}
	if len(toPeer) == 0 || len(wantOut) == 0 {
		t.Fatalf("%d outputs for the peer, %d for the nodes: the test needs some of both", len(toPeer), len(wantOut))
	}
	slices.Sort(toPeer)

	// The job, on n1 and n2 (the peer would never answer its start).
	spec := cluster.JobSpec{ID: "deaf", Bucket: "in", DstBucket: "out", Transform: "xor", Workers: 4, ContinueOnError: true,
		Retries: -1} // a put to the peer fails the same each time
	start := time.Now()
	for _, nd := range live {
		var st cluster.JobStatus
		if err := client.Call(ctx, nd, "POST", "/v1/jobs", spec, &st); err != nil {
			t.Fatalf("starting the job on %s: %v", nd.ID, err)
		}
	}
	var sum pipeline.Report
	for _, nd := range live {
		var st cluster.JobStatus
		for st.State == "" || st.State == cluster.JobRunning {
			if err := client.Call(ctx, nd, "GET", "/v1/jobs/"+spec.ID+"?wait=5s", nil, &st); err != nil {
				t.Fatalf("the job on %s: %v (it did not end within %v)", nd.ID, err, time.Since(start))
			}
		}
		if st.State != cluster.JobDone || st.Report == nil {
			t.Fatalf("the job on %s ended %s: %s %s", nd.ID, st.State, st.Code, st.Message)
		}
		r := st.Report
		t.Logf("%s: %v", nd.ID, r)
		sum.Listed += r.Listed
		sum.Transformed += r.Transformed
		sum.Skipped += r.Skipped
		sum.Failed += r.Failed
		sum.Failures = append(sum.Failures, r.Failures...)
	}
	elapsed := time.Since(start)
	t.Logf("the jobs ended in %v; the peer accepted %d connections", elapsed.Round(time.Millisecond), peer.accepted())
	if sum.Listed != n || sum.Transformed != int64(len(wantOut)) || sum.Failed != int64(len(toPeer)) || sum.Skipped != 0 {
		t.Errorf("jobs: listed %d, transformed %d, skipped %d, failed %d; want %d, %d, 0, %d",
			sum.Listed, sum.Transformed, sum.Skipped, sum.Failed, n, len(wantOut), len(toPeer))
	}
	var failed []string
	for _, f := range sum.Failures {
		failed = append(failed, f.Name.Key)
		if f.Name.Bucket != "in" || (f.Code != insitu.DeadlineExceeded && f.Code != insitu.Unavailable) || !strings.Contains(f.Message, "n3") {
			t.Errorf("failure %v: want an input of in, DeadlineExceeded or Unavailable, naming n3", f)
		}
	}
	slices.Sort(failed)
	if !slices.Equal(failed, toPeer) {
		t.Errorf("failed %q; want the outputs of the peer, %q", failed, toPeer)
	}
	// Each put to the peer fails within ProgressTimeout (a small body's
	// answer that never comes, a large body's write that the peer never
	// takes) or about a second (the wait for "100 Continue"): well under
	// 20 × ProgressTimeout.
	if limit := 20 * progress; elapsed > limit {
		t.Errorf("the jobs took %v; want under %v", elapsed, limit)
	}

	// The outputs the nodes own are whole: check them under a map
	// without the peer (which moves none of them).
	m3, err := m2.Without("n3")
	if err != nil {
		t.Fatal(err)
	}
	for _, nd := range live {
		if _, err := client.PushMap(ctx, nd, m3); err != nil {
			t.Fatal(err)
		}
	}
	client.SetMap(m3)
	checkObjects(t, ctx, client, "out", wantOut)
}

// TestTricklingBody sends a node a PUT whose body comes a byte at a time,
// far slower than ProgressBytes per ProgressTimeout: the node cuts it off
// with 504 deadline_exceeded after about ProgressTimeout and stores
// nothing, while an honest PUT at the same time succeeds.
func TestTricklingBody(t *testing.T) {
	if testing.Short() {
		t.Skip("trickles a body for a second")
	}
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	const progress = time.Second
	c, err := nodetest.Start(ctx, 1, &nodetest.Options{
		Dir:         t.TempDir(),
		NodeOptions: func(_ string, o *node.Options) { o.ProgressTimeout = progress },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	client := c.Client()

	// The trickle: a byte every 20ms of a body that claims 1 MiB. The
	// pipe's writes return once the client has taken each byte.
	slow := insitu.Name{Bucket: "b", Key: "slow"}
	pr, pw := io.Pipe()
	type result struct {
		err     error
		elapsed time.Duration
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		_, err := client.Put(ctx, slow, pr, 1<<20)
		pr.CloseWithError(errors.New("the PUT returned"))
		done <- result{err, time.Since(start)}
	}()
	first := make(chan error, 1)
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		_, err := pw.Write([]byte{'x'})
		first <- err
		for err == nil {
			<-tick.C
			_, err = pw.Write([]byte{'x'})
		}
	}()
	if err := <-first; err != nil {
		t.Fatalf("the first byte of the trickle: %v", err)
	}

	// The honest PUT, while the node takes the trickle.
	honest := insitu.Name{Bucket: "b", Key: "honest"}
	body := randomBytes(7, 1<<20)
	if _, err := client.Put(ctx, honest, bytes.NewReader(body), int64(len(body))); err != nil {
		t.Errorf("an honest PUT during the trickle: %v", err)
	}
	select {
	case r := <-done:
		t.Fatalf("the trickle ended (%v) before the honest PUT did: make ProgressTimeout longer", r.err)
	default:
	}

	r := <-done
	t.Logf("the trickle was cut after %v: %v", r.elapsed.Round(time.Millisecond), r.err)
	if !errors.Is(r.err, insitu.DeadlineExceeded) {
		t.Errorf("the trickle's PUT: %v; want DeadlineExceeded (504)", r.err)
	}
	if r.elapsed < progress || r.elapsed > 10*progress {
		t.Errorf("the trickle was cut after %v; want after ProgressTimeout (%v), and soon after", r.elapsed, progress)
	}
	checkObjects(t, ctx, client, "b", map[string][32]byte{honest.Key: sha256.Sum256(body)})
	checkAbsent(t, ctx, client, "b", []string{slow.Key})
	if left := tempFiles(t, c.Dir()); len(left) > 0 {
		t.Errorf("temporary files left: %q", left)
	}
}

// TestKillNodeMidPut kills a node process with SIGKILL in the middle of a
// PUT, deterministically: the test's transform writes half of an output
// into the PUT's body (an io.Pipe of the runner), so that the node holds
// the upload's temporary file; then the node is killed and restarted.
// Nothing is visible under the name (HEAD is NotFound, no listing shows
// it, and the node's startup sweep removed the temporary file), the run
// names that one object as failed, and a rerun with SkipExisting does
// exactly that one: every output once, with its input's bytes.
func TestKillNodeMidPut(t *testing.T) {
	if testing.Short() {
		t.Skip("runs node processes and kills one")
	}
	// The nodes are this test binary, run as the command (see
	// faultChild); t.Setenv makes the test sequential, so no other test
	// starts a child meanwhile.
	t.Setenv(childEnv, "node")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	c := startCluster(t, os.Args[0], 3)
	const n = 100
	sums := putInputs(t, ctx, c.client, "in", n)
	// The object cut in the middle, listed in the middle of the others.
	big := insitu.Name{Bucket: "in", Key: "obj-00049x.dat"}
	bigBody := randomBytes(99, 1<<20)
	if _, err := c.client.Put(ctx, big, bytes.NewReader(bigBody), int64(len(bigBody))); err != nil {
		t.Fatal(err)
	}
	sums[big.Key] = sha256.Sum256(bigBody)
	out := insitu.Name{Bucket: "out", Key: big.Key}
	victim := c.m.Owner(out)

	var cut atomic.Bool
	halfway, release := make(chan struct{}), make(chan struct{})
	tr := insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, w io.Writer) error {
		if in.Name != big || !cut.CompareAndSwap(false, true) {
			_, err := io.Copy(w, in.Body)
			return err
		}
		b, err := io.ReadAll(in.Body)
		if err != nil {
			return err
		}
		// The write returns once the sink's PUT has taken the bytes.
		if _, err := w.Write(b[:len(b)/2]); err != nil {
			return err
		}
		close(halfway)
		<-release
		_, err = w.Write(b[len(b)/2:])
		return err
	})
	src, err := source.Cluster(c.client, "in", nil)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := sink.Cluster(c.client)
	if err != nil {
		t.Fatal(err)
	}
	// One worker: when the node dies, the cut PUT is the only one in
	// flight, and the next ones start after its restart.
	popts := &pipeline.Options{Workers: 1, Rename: toBucket("out"), ContinueOnError: true, Retries: -1}
	type result struct {
		rep pipeline.Report
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := pipeline.Run(ctx, src, tr, dst, popts)
		done <- result{rep, err}
	}()
	select {
	case <-halfway:
	case r := <-done:
		t.Fatalf("the run ended before the PUT of %s was half done: %v\n%v", out, r.err, r.rep)
	case <-time.After(30 * time.Second):
		t.Fatalf("the PUT of %s was not half done within 30s", out)
	}
	// The node asked for the body ("100 Continue") after it made the
	// upload's temporary file, so the file is there; wait for it only in
	// case the client's wait for "100 Continue" timed out first.
	store := filepath.Join(c.dir, victim.ID)
	for deadline := time.Now().Add(10 * time.Second); len(tempFiles(t, store)) == 0; {
		if time.Now().After(deadline) {
			t.Fatalf("no temporary file in %s while the PUT of %s is half done", store, out)
		}
		time.Sleep(5 * time.Millisecond)
	}

	p := c.procs[victim.ID]
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t, 10*time.Second); code != -1 {
		t.Errorf("the killed node exited with %d; want -1 (killed by a signal)", code)
	}
	c.restart(t, victim.ID)
	// Nothing of the cut PUT: the restarted node swept the temporary file
	// before it served.
	if left := tempFiles(t, c.dir); len(left) > 0 {
		t.Errorf("temporary files left after the restart: %q", left)
	}
	checkAbsent(t, ctx, c.client, "out", []string{out.Key})
	for o, err := range c.client.ListAll(ctx, victim, "out", nil) {
		if err != nil && !errors.Is(err, insitu.NotFound) {
			t.Fatal(err)
		}
		if err == nil && o.Name == out {
			t.Errorf("the restarted node lists %s", out)
		}
	}

	close(release)
	r := <-done
	t.Logf("the run with the cut PUT: %v\n%v", r.err, r.rep)
	if r.err != nil || r.rep.Listed != n+1 || r.rep.Transformed != n || r.rep.Failed != 1 {
		t.Errorf("the run with the cut PUT: %v, listed %d, transformed %d, failed %d; want nil, %d, %d, 1",
			r.err, r.rep.Listed, r.rep.Transformed, r.rep.Failed, n+1, n)
	}
	// A node that dies under a PUT is Unavailable, as one that cannot be
	// reached.
	checkFailures(t, r.rep, "in", []string{big.Key}, insitu.Unavailable)

	popts.SkipExisting = true
	rep, err := pipeline.Run(ctx, src, tr, dst, popts)
	if err != nil || rep.Listed != n+1 || rep.Transformed != 1 || rep.Skipped != n || rep.Failed != 0 {
		t.Errorf("resumed run: %v, listed %d, transformed %d, skipped %d, failed %d; want nil, %d, 1, %d, 0\n%v",
			err, rep.Listed, rep.Transformed, rep.Skipped, rep.Failed, n+1, n, rep)
	}
	checkOutputs(t, ctx, c, "out", sums)
}
