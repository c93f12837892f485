package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/cluster"
	"github.com/insitu-data/insitu/locality"
)

// TestMain runs the tests, unless the binary was started as a child
// process of a fault test (see faultChild): then it is that child.
func TestMain(m *testing.M) {
	faultChild()
	os.Exit(m.Run())
}

// The tests here run the command as real processes: they build it once
// (TestProcesses) and start nodes on ports of 127.0.0.1 that the test picks.
//
// Ports: a map must name every node's URL before the nodes start, so a node
// cannot listen on port 0 and tell its port afterwards. The test picks free
// ports (listen on 127.0.0.1:0, note the port, close), writes the map, and
// starts the nodes; when another process took one of those ports in
// between, that node exits at once ("address already in use"), and the
// test starts the whole cluster again on new ports, a few times at most.
// A restarted node listens on its old port again, which the kernel gives
// back at once (Go's listeners set SO_REUSEADDR).

// proc is a running insitu-node process.
type proc struct {
	args   []string
	cmd    *exec.Cmd
	stderr lockedBuffer
	exited chan struct{} // closed when the process has exited
	err    error         // Wait's, once exited is closed
}

// lockedBuffer is a bytes.Buffer safe for the writes of exec's copier and
// the test's reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// startProc starts bin with args and waits, up to 30 seconds, for its
// "listening on" line. The process is killed in t.Cleanup, whatever
// happens.
func startProc(t *testing.T, bin string, args ...string) (*proc, error) {
	t.Helper()
	p := &proc{args: args, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stderr = &p.stderr
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("stderr of insitu-node %s:\n%s", strings.Join(p.args, " "), p.stderr.String())
		}
	})
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			line <- sc.Text()
		}
		io.Copy(io.Discard, stdout) // until the process exits
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	select {
	case l := <-line:
		if !strings.Contains(l, " listening on http://") {
			return nil, fmt.Errorf("insitu-node printed %q", l)
		}
		return p, nil
	case <-p.exited:
		return nil, fmt.Errorf("insitu-node exited before it served: %v\n%s", p.err, p.stderr.String())
	case <-time.After(30 * time.Second):
		return nil, fmt.Errorf("insitu-node did not serve within 30s\n%s", p.stderr.String())
	}
}

// wait waits up to d for the process to exit and returns its exit code.
func (p *proc) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(d):
		t.Fatalf("insitu-node did not exit within %v", d)
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		t.Fatal(p.err)
	}
	return 0
}

// testCluster is a cluster of insitu-node processes.
type testCluster struct {
	bin    string
	dir    string
	m      *locality.Map
	secret locality.Secret
	procs  map[string]*proc
	client *locality.Client
}

// freeAddr returns an address of 127.0.0.1 whose port was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startCluster starts n nodes n1…nN as processes.
func startCluster(t *testing.T, bin string, n int) *testCluster {
	t.Helper()
	dir := t.TempDir()
	c := &testCluster{bin: bin, dir: dir, secret: locality.Secret("0123456789abcdef0123456789abcdef")}
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte(string(c.secret)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		nodes := make([]locality.Node, n)
		for i := range nodes {
			nodes[i] = locality.Node{ID: fmt.Sprintf("n%d", i+1), URL: "http://" + freeAddr(t)}
		}
		m, err := locality.NewMap(1, nodes...)
		if err != nil {
			t.Fatal(err)
		}
		b, err := m.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		mapFile := filepath.Join(dir, "map.json")
		if err := os.WriteFile(mapFile, b, 0o644); err != nil {
			t.Fatal(err)
		}
		c.m, c.procs, lastErr = m, map[string]*proc{}, nil
		for _, nd := range nodes {
			p, err := startProc(t, bin, "-id", nd.ID, "-listen", strings.TrimPrefix(nd.URL, "http://"),
				"-dir", filepath.Join(dir, nd.ID), "-map", mapFile, "-secret-file", secretFile, "-log-level", "info")
			if err != nil {
				lastErr = err
				break
			}
			c.procs[nd.ID] = p
		}
		if lastErr == nil {
			break
		}
		for _, p := range c.procs {
			p.cmd.Process.Kill()
			<-p.exited
		}
		if !strings.Contains(lastErr.Error(), "address already in use") {
			t.Fatal(lastErr)
		}
	}
	if lastErr != nil {
		t.Fatal(lastErr)
	}
	client, err := locality.NewClient(c.m, &locality.ClientOptions{Secret: c.secret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	c.client = client
	return c
}

// restart starts the node id again, with the same flags, after it exited.
func (c *testCluster) restart(t *testing.T, id string) {
	t.Helper()
	old := c.procs[id]
	<-old.exited
	p, err := startProc(t, c.bin, old.args...)
	if err != nil {
		t.Fatal(err)
	}
	c.procs[id] = p
}

// TestProcesses builds the command once and runs the tests that need it.
func TestProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds insitu-node and runs it as processes")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH")
	}
	bin := filepath.Join(t.TempDir(), "insitu-node")
	if out, err := exec.Command(gobin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Run("KillNodeMidJob", func(t *testing.T) { t.Parallel(); testKillNodeMidJob(t, bin) })
	t.Run("SIGTERM", func(t *testing.T) { t.Parallel(); testSIGTERM(t, bin) })
}

// putInputs puts n objects of 1 KiB to bucket through the client and
// returns the SHA-256 of each, by key.
func putInputs(t *testing.T, ctx context.Context, c *locality.Client, bucket string, n int) map[string][32]byte {
	t.Helper()
	sums := make(map[string][32]byte, n)
	bodies := make(map[string][]byte, n)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range n {
		b := make([]byte, 1024)
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		key := fmt.Sprintf("obj-%05d.dat", i)
		bodies[key], sums[key] = b, sha256.Sum256(b)
	}
	keys := make(chan string)
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			for k := range keys {
				if _, err := c.Put(ctx, insitu.Name{Bucket: bucket, Key: k}, bytes.NewReader(bodies[k]), int64(len(bodies[k]))); err != nil {
					errs <- err
					for range keys {
					}
					return
				}
			}
			errs <- nil
		}()
	}
	for k := range bodies {
		keys <- k
	}
	close(keys)
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	return sums
}

// checkOutputs checks that bucket holds exactly one output per input, on
// its owner, with the input's bytes, and that no node has a temporary file.
func checkOutputs(t *testing.T, ctx context.Context, c *testCluster, bucket string, sums map[string][32]byte) {
	t.Helper()
	seen := map[string]string{}
	for _, nd := range c.m.Nodes() {
		for o, err := range c.client.ListAll(ctx, nd, bucket, nil) {
			if err != nil {
				t.Fatalf("listing %s on %s: %v", bucket, nd.ID, err)
			}
			if prev, ok := seen[o.Name.Key]; ok {
				t.Errorf("%s/%s is on %s and on %s", bucket, o.Name.Key, prev, nd.ID)
			}
			seen[o.Name.Key] = nd.ID
			if owner := c.m.Owner(o.Name).ID; owner != nd.ID {
				t.Errorf("%s/%s is on %s; its owner is %s", bucket, o.Name.Key, nd.ID, owner)
			}
		}
	}
	if len(seen) != len(sums) {
		t.Errorf("%s holds %d outputs; want %d", bucket, len(seen), len(sums))
	}
	for key, want := range sums {
		rc, _, err := c.client.Get(ctx, insitu.Name{Bucket: bucket, Key: key})
		if err != nil {
			t.Errorf("output %s/%s: %v", bucket, key, err)
			continue
		}
		h := sha256.New()
		_, err = io.Copy(h, rc)
		rc.Close()
		if err != nil {
			t.Errorf("reading %s/%s: %v", bucket, key, err)
		} else if got := [32]byte(h.Sum(nil)); got != want {
			t.Errorf("%s/%s: sha256 %x; want the input's %x", bucket, key, got, want)
		}
	}
	filepath.WalkDir(c.dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".insitu-tmp-") {
			t.Errorf("temporary file left: %s", path)
		}
		return err
	})
}

// testKillNodeMidJob runs a job on three node processes, kills one with
// SIGKILL in the middle of a second job, restarts it, and resumes the job
// with SkipExisting: every output is there once, with its input's bytes,
// and the killed run's report names the lost node and counts its unfinished
// objects as failed.
func testKillNodeMidJob(t *testing.T, bin string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := startCluster(t, bin, 3)
	const n = 3000
	sums := putInputs(t, ctx, c.client, "in", n)

	// A job without faults.
	rep, err := cluster.Run(ctx, c.client, cluster.JobSpec{Bucket: "in", DstBucket: "copy", Transform: "identity"}, nil)
	if err != nil {
		t.Fatalf("clean run: %v\n%v", err, rep)
	}
	if rep.Listed != n || rep.Transformed != n || rep.Failed != 0 {
		t.Fatalf("clean run: %v; want %d transformed", rep, n)
	}
	checkOutputs(t, ctx, c, "copy", sums)

	// The fault: one worker per node makes the job last long enough to
	// kill the victim once its status shows progress and its listing is
	// done (so that its report knows how many objects it owns).
	const victim = "n2"
	victimNode, _ := c.m.Node(victim)
	owned := int64(0)
	for key := range sums {
		if c.m.Owns(victim, insitu.Name{Bucket: "in", Key: key}) {
			owned++
		}
	}
	spec := cluster.JobSpec{ID: "copy-1", Bucket: "in", DstBucket: "out", Transform: "identity", Workers: 1, ContinueOnError: true,
		Retries: -1} // a put to the dead node fails at once, instead of after 0.7s of retries
	type result struct {
		rep cluster.Report
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := cluster.Run(ctx, c.client, spec, &cluster.Options{Lost: time.Second, ProgressInterval: 50 * time.Millisecond})
		done <- result{rep, err}
	}()
	// The node counts its objects first (Stats.Total) and updates its
	// stats every 250ms: once they have moved twice after the count, the
	// coordinator, which polls every 50ms, has seen the count too.
	var st cluster.JobStatus
	var moves int
	var last int64
	for deadline := time.Now().Add(30 * time.Second); moves < 2; {
		if time.Now().After(deadline) {
			t.Fatalf("the victim's job showed no progress within 30s: %+v", st)
		}
		err := c.client.Call(ctx, victimNode, "GET", "/v1/jobs/"+spec.ID+"?wait=10ms", nil, &st)
		if err != nil && !errors.Is(err, insitu.NotFound) { // NotFound: not started yet
			t.Fatal(err)
		}
		if st.State == cluster.JobRunning && st.Stats.Total == owned && st.Stats.Transformed > last {
			if last > 0 {
				moves++
			}
			last = st.Stats.Transformed
		}
		if st.State != "" && st.State != cluster.JobRunning {
			t.Fatalf("the victim's job ended before it was killed (make it slower): %+v", st)
		}
	}
	if err := c.procs[victim].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if code := c.procs[victim].wait(t, 10*time.Second); code != -1 {
		t.Errorf("the killed node exited with %d; want -1 (killed by a signal)", code)
	}
	r1 := <-done
	t.Logf("killed run: %v\n%v", r1.err, r1.rep)
	if r1.err == nil || !strings.Contains(r1.err.Error(), victim) {
		t.Errorf("the killed run's error %v does not name %s", r1.err, victim)
	}
	var lost *cluster.NodeReport
	for i := range r1.rep.Nodes {
		if r1.rep.Nodes[i].Node == victim {
			lost = &r1.rep.Nodes[i]
		}
	}
	switch {
	case lost == nil:
		t.Fatalf("the killed run's report has no part for %s: %v", victim, r1.rep)
	case lost.Err == "":
		t.Errorf("the killed run's report says %s completed: %+v", victim, lost)
	case lost.Report.Listed != owned:
		t.Errorf("%s listed %d objects in the killed run; it owns %d", victim, lost.Report.Listed, owned)
	case lost.Report.Failed != owned-lost.Report.Transformed-lost.Report.Skipped || lost.Report.Failed == 0:
		t.Errorf("%s's unfinished objects are not all counted as failed: %+v (owns %d)", victim, lost.Report, owned)
	}
	if r1.rep.Listed != n || r1.rep.Transformed+r1.rep.Skipped+r1.rep.Failed != n || r1.rep.Failed < lost.Report.Failed {
		t.Errorf("the killed run's counts do not add up: %v", r1.rep)
	}

	// Restart the victim over its store, and resume.
	c.restart(t, victim)
	spec.ID, spec.SkipExisting = "copy-2", true
	rep, err = cluster.Run(ctx, c.client, spec, nil)
	t.Logf("resumed run: %v\n%v", err, rep)
	if err != nil {
		t.Fatalf("resumed run: %v", err)
	}
	if rep.Listed != n || rep.Failed != 0 || rep.Transformed+rep.Skipped != n {
		t.Errorf("resumed run: %v; want %d listed, none failed", rep, n)
	}
	if rep.Skipped < r1.rep.Transformed || rep.Transformed > r1.rep.Failed || rep.Transformed == 0 {
		t.Errorf("resumed run transformed %d and skipped %d; the killed run transformed %d and failed %d",
			rep.Transformed, rep.Skipped, r1.rep.Transformed, r1.rep.Failed)
	}
	checkOutputs(t, ctx, c, "out", sums)
}

// testSIGTERM: a node process exits 0, within its shutdown timeout, on
// SIGTERM, also with a job running.
func testSIGTERM(t *testing.T, bin string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := startCluster(t, bin, 1)
	putInputs(t, ctx, c.client, "in", 300)
	nd := c.m.Nodes()[0]
	var st cluster.JobStatus
	spec := cluster.JobSpec{ID: "j", Bucket: "in", DstBucket: "out", Transform: "identity", Workers: 1}
	if err := c.client.Call(ctx, nd, "POST", "/v1/jobs", spec, &st); err != nil {
		t.Fatal(err)
	}
	p := c.procs[nd.ID]
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t, 30*time.Second); code != 0 {
		t.Errorf("exit status %d after SIGTERM; want 0", code)
	}
	t.Logf("exited %v after SIGTERM", time.Since(start))
	if s := p.stderr.String(); !strings.Contains(s, "shut down") {
		t.Errorf("no shutdown in the log:\n%s", s)
	}
	if err := c.client.Health(ctx, nd); !errors.Is(err, insitu.Unavailable) {
		t.Errorf("health after the exit: %v; want Unavailable", err)
	}
}

// TestCatalogTransforms: -transforms registers the catalog's transforms by
// name (a job with "sha256" gives each input's digest, and identity is
// still there), and an unknown name is exit status 2 naming it.
func TestCatalogTransforms(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef"
	mapFile, secretFile := writeFiles(t, "n1", "127.0.0.1:1", secret, 0o600)
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), func() {}, []string{"-id", "n1", "-listen", "127.0.0.1:0", "-dir", t.TempDir(),
		"-map", mapFile, "-secret-file", secretFile, "-transforms", "sha256,nope"}, &stdout, &stderr)
	if code != 2 || !strings.Contains(stderr.String(), `unknown ["nope"]`) {
		t.Errorf("an unknown transform: exit %d, stderr:\n%s", code, stderr.String())
	}

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	pr, pw := io.Pipe()
	var logs lockedBuffer
	exited := make(chan int, 1)
	go func() {
		defer pw.Close()
		exited <- run(ctx, func() {}, []string{"-id", "n1", "-listen", "127.0.0.1:0", "-dir", t.TempDir(),
			"-map", mapFile, "-secret-file", secretFile, "-transforms", " sha256 , md5,sha256"}, pw, &logs)
	}()
	defer func() {
		cancel()
		if code := <-exited; code != 0 {
			t.Errorf("exit %d:\n%s", code, logs.String())
		}
	}()
	sc := bufio.NewScanner(pr)
	if !sc.Scan() {
		t.Fatalf("no line on stdout:\n%s", logs.String())
	}
	go io.Copy(io.Discard, pr)
	url, _ := strings.CutPrefix(sc.Text(), "insitu-node n1 listening on ")
	m, err := locality.NewMap(1, locality.Node{ID: "n1", URL: url})
	if err != nil {
		t.Fatal(err)
	}
	c, err := locality.NewClient(m, &locality.ClientOptions{Secret: locality.Secret(secret)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	inputs := map[string]string{"a": "alpha", "b/c": strings.Repeat("bytes ", 1000)}
	for k, v := range inputs {
		if _, err := c.Put(ctx, insitu.Name{Bucket: "in", Key: k}, strings.NewReader(v), -1); err != nil {
			t.Fatal(err)
		}
	}
	for _, tr := range []string{"sha256", "identity"} {
		rep, err := cluster.Run(ctx, c, cluster.JobSpec{Bucket: "in", DstBucket: tr, Transform: tr}, nil)
		if err != nil || rep.Transformed != int64(len(inputs)) {
			t.Fatalf("%s: %d transformed, %v", tr, rep.Transformed, err)
		}
		for k, v := range inputs {
			rc, _, err := c.Get(ctx, insitu.Name{Bucket: tr, Key: k})
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			want := v
			if tr == "sha256" {
				want = fmt.Sprintf("%x", sha256.Sum256([]byte(v)))
			}
			if err != nil || string(got) != want {
				t.Errorf("%s of %s: %.80q, %v; want %.80q", tr, k, got, err, want)
			}
		}
	}
}
