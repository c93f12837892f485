package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/cluster"
	"github.com/insitu-data/insitu/locality"
	"github.com/insitu-data/insitu/node"
	"github.com/insitu-data/insitu/node/nodetest"
	"github.com/insitu-data/insitu/source"
	"github.com/insitu-data/insitu/transport"
)

// runRecorder copies its input and records, per input name, the checksum of
// the bytes each run read.
type runRecorder struct {
	mu   sync.Mutex
	runs map[string][]string
}

func newRunRecorder() *runRecorder { return &runRecorder{runs: map[string][]string{}} }

func (r *runRecorder) Transform(_ context.Context, in *insitu.Input, out io.Writer) error {
	b, err := io.ReadAll(in.Body)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.runs[in.Name.String()] = append(r.runs[in.Name.String()], checksum(b))
	r.mu.Unlock()
	_, err = out.Write(b)
	return err
}

func (r *runRecorder) runsOf(name insitu.Name) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.runs[name.String()])
}

// waitJob waits until the job id on nd has ended and returns its status.
func waitJob(t *testing.T, nd *node.Node, id string) cluster.JobStatus {
	t.Helper()
	for {
		st, err := nd.JobStatus(t.Context(), id, 5*time.Second)
		if err != nil {
			t.Fatalf("JobStatus(%s): %v", id, err)
		}
		if st.State != cluster.JobRunning {
			return st
		}
		if t.Context().Err() != nil {
			t.Fatalf("job %s still running", id)
		}
	}
}

// TestJobProcessesOnlyOwnedCopies: after a map change leaves stale copies
// on nodes that no longer own them (a node leaves, everything is written
// without it, it comes back and everything is written again on the
// owners), a job processes every object exactly once, from its current
// bytes, on its owner; the stale copies are skipped, not counted. A node
// that its map does not list owns nothing, and its job lists nothing.
func TestJobProcessesOnlyOwnedCopies(t *testing.T) {
	t.Parallel()
	rec := newRunRecorder()
	c := startCluster(t, 3, &nodetest.Options{Transforms: map[string]insitu.Transform{"rec": rec}})
	ctx := t.Context()
	v1 := c.Map()
	names := make([]insitu.Name, 60)
	for i := range names {
		names[i] = insitu.Name{Bucket: "in", Key: fmt.Sprintf("k/%03d.bin", i)}
	}
	bytesOf := func(gen string, i int) []byte { return content(gen+names[i].Key, 200+i) }
	write := func(cl *locality.Client, gen string) {
		t.Helper()
		for i, name := range names {
			b := bytesOf(gen, i)
			if _, err := cl.Put(ctx, name, bytes.NewReader(b), int64(len(b))); err != nil {
				t.Fatalf("%s: put %s: %v", gen, name, err)
			}
		}
	}
	newClient := func(m *locality.Map) *locality.Client {
		cl, err := locality.NewClient(m, &locality.ClientOptions{Secret: c.Secret()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}
	write(c.Client(), "v1")

	// n2 leaves; everything is written again without it.
	if err := c.StopNode(ctx, "n2"); err != nil {
		t.Fatal(err)
	}
	v2, err := v1.Without("n2")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"n1", "n3"} {
		if !c.Node(id).SetMap(v2) {
			t.Fatalf("%s refused %v", id, v2)
		}
	}
	write(newClient(v2), "v2")

	// n2 comes back; everything is written once more, on its owners.
	if err := c.RestartNode(ctx, "n2"); err != nil {
		t.Fatal(err)
	}
	n2, _ := v1.Node("n2")
	v3, err := v2.With(n2)
	if err != nil {
		t.Fatal(err)
	}
	for _, nd := range c.Nodes() {
		if !nd.SetMap(v3) {
			t.Fatalf("%s refused %v", nd.ID(), v3)
		}
	}
	cl := newClient(v3)
	write(cl, "v3")

	stale := 0
	for _, name := range names {
		for _, nd := range c.Nodes() {
			if _, err := os.Stat(nd.Path(name)); err == nil && nd.ID() != v3.Owner(name).ID {
				stale++
			}
		}
	}
	if stale == 0 {
		t.Fatal("no stale copies: the scenario proves nothing")
	}

	// The cluster source, the object API's view, lists each name once.
	src, err := source.Cluster(cl, "in", nil)
	if err != nil {
		t.Fatal(err)
	}
	listed := 0
	for _, err := range src.Objects(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		listed++
	}
	if listed != len(names) {
		t.Fatalf("the cluster source lists %d objects, want %d", listed, len(names))
	}

	rep, err := cluster.Run(ctx, cl, cluster.JobSpec{ID: "current", Bucket: "in", DstBucket: "out", Transform: "rec"}, nil)
	if err != nil || rep.Listed != int64(len(names)) || rep.Transformed != int64(len(names)) || rep.Failed != 0 {
		t.Fatalf("job over %d objects (%d stale copies): %v\n%s", len(names), stale, err, rep)
	}
	checkCounts(t, rep)
	for i, name := range names {
		want := checksum(bytesOf("v3", i))
		if runs := rec.runsOf(name); len(runs) != 1 || runs[0] != want {
			t.Errorf("%s: processed from %v, want once from its current bytes %s", name, runs, want)
		}
		out := insitu.Name{Bucket: "out", Key: name.Key}
		got, _, err := readAll(ctx, cl, out)
		if err != nil || checksum(got) != want {
			t.Errorf("%s: %s, %v; want %s", out, checksum(got), err, want)
		}
	}
	for k, holders := range outputsByNode(t, c, "out") {
		if owner := v3.Owner(insitu.Name{Bucket: "out", Key: k}).ID; len(holders) != 1 || holders[0] != owner {
			t.Errorf("out/%s is on %v, want only on its owner %s", k, holders, owner)
		}
	}

	// A node whose map does not list it owns nothing.
	v4, err := v3.Without("n2")
	if err != nil {
		t.Fatal(err)
	}
	nd := c.Node("n2")
	nd.SetMap(v4)
	if _, err := nd.StartJob(ctx, cluster.JobSpec{ID: "outsider", Bucket: "in", DstBucket: "out2", Transform: "rec"}); err != nil {
		t.Fatal(err)
	}
	if st := waitJob(t, nd, "outsider"); st.State != cluster.JobDone || st.Report.Listed != 0 {
		t.Fatalf("a node outside its map: %+v, want done with nothing listed", st.Report)
	}
}

// plantLinks puts the regular objects and, in the store of nd, a link to
// the file outside and a link to the directory that holds it.
func plantLinks(t *testing.T, nd *node.Node, outside string) {
	t.Helper()
	in := filepath.Join(nd.Dir(), "in")
	rel, err := filepath.Rel(in, outside)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct{ link, target string }{
		{"p-planted.bin", outside},
		{"q-dirlink", filepath.Dir(outside)},
		{"r-relative.bin", rel},
	} {
		if err := os.Symlink(p.target, filepath.Join(in, p.link)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestJobRefusesLinksOutOfStore: links planted in a node's store, to a
// file outside it or to its directory, are not objects: no job lists
// them. A regular input swapped for such a link after the listing fails
// with PermissionDenied, in every mode, and nothing serves the outside
// file's bytes: not the bytes read by the node, not the path handed to a
// transform (embedded, or a transform server's local file).
func TestJobRefusesLinksOutOfStore(t *testing.T) {
	t.Parallel()
	outsideDir := t.TempDir()
	outside := filepath.Join(outsideDir, "secret.bin")
	secret := content("the outside file", 4000)
	if err := os.WriteFile(outside, secret, 0o644); err != nil {
		t.Fatal(err)
	}
	var victim string // the store file of in/b-victim.bin
	// swap replaces the victim by a link to the outside file when the
	// first object is transformed (or, when the job's args say "self" or
	// "selfpath", when the victim itself is, after the node's checks and
	// before its body or path is read), then copies its input: from its
	// path when the args say "path" or "selfpath", else from its body.
	swap := insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		self := in.Args == "self" || in.Args == "selfpath"
		if in.Name.Key == map[bool]string{false: "a-first.bin", true: "b-victim.bin"}[self] {
			if err := os.Remove(victim); err != nil {
				return err
			}
			if err := os.Symlink(outside, victim); err != nil {
				return err
			}
		}
		if in.Args == "path" || in.Args == "selfpath" {
			if in.Path == "" {
				return insitu.Errorf(insitu.InvalidArgument, "no path")
			}
			b, err := os.ReadFile(in.Path)
			if err != nil {
				return err
			}
			_, err = out.Write(b)
			return err
		}
		_, err := io.Copy(out, in.Body)
		return err
	})
	c := startCluster(t, 1, &nodetest.Options{Transforms: map[string]insitu.Transform{"swap": swap}, Sidecar: swap})
	nd := c.Node("n1")
	victim = nd.Path(insitu.Name{Bucket: "in", Key: "b-victim.bin"})
	ctx := t.Context()
	put := func(key string) {
		t.Helper()
		b := content(key, 3000)
		if _, err := c.Put(ctx, insitu.Name{Bucket: "in", Key: key}, bytes.NewReader(b), int64(len(b))); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"a-first.bin", "b-victim.bin", "c-plain.bin"} {
		put(k)
	}
	plantLinks(t, nd, outside)

	type mode struct {
		name string
		spec cluster.JobSpec
	}
	modes := []mode{
		{"embedded-body", cluster.JobSpec{Transform: "swap"}},
		{"embedded-path", cluster.JobSpec{Transform: "swap", Args: "path"}},
		{"embedded-self", cluster.JobSpec{Transform: "swap", Args: "self"}},
		// The victim is swapped after the node opened it; the transform
		// then reads its body (self) or opens Input.Path itself
		// (selfpath): both are the file opened and checked, so it reads
		// the victim's own bytes.
		{"embedded-selfpath", cluster.JobSpec{Transform: "swap", Args: "selfpath"}},
	}
	for _, m := range transport.Modes() {
		for _, local := range []bool{false, true} {
			modes = append(modes, mode{fmt.Sprintf("%s-local%v", m, local), cluster.JobSpec{Server: &cluster.ServerSpec{Mode: m, LocalFile: local}}})
		}
	}
	for i, m := range modes {
		put("b-victim.bin") // a regular file again
		spec := m.spec
		spec.ID, spec.Bucket, spec.DstBucket = fmt.Sprintf("links-%d", i), "in", fmt.Sprintf("out-%d", i)
		spec.Workers, spec.ContinueOnError = 1, true
		rep, err := cluster.Run(ctx, c.Client(), spec, nil)
		if err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
		opened := m.name == "embedded-self" || m.name == "embedded-selfpath" // swapped after the open
		if opened {
			if rep.Listed != 3 || rep.Transformed != 3 || rep.Failed != 0 {
				t.Errorf("%s: want 3 listed and transformed (body and path are the file checked):\n%s", m.name, rep)
			}
			want := content("b-victim.bin", 3000)
			got, err := os.ReadFile(filepath.Join(nd.Dir(), spec.DstBucket, "b-victim.bin"))
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s: the victim's output holds %d bytes (%v), want its own %d bytes", m.name, len(got), err, len(want))
			}
		} else if rep.Listed != 3 || rep.Transformed != 2 || rep.Failed != 1 || len(rep.Failures) != 1 {
			t.Errorf("%s: want 3 listed (no link), 2 transformed, the victim failed:\n%s", m.name, rep)
		} else if f := rep.Failures[0]; f.Name.Key != "b-victim.bin" || f.Code != insitu.PermissionDenied {
			t.Errorf("%s: failure %+v, want b-victim.bin refused with permission_denied", m.name, f)
		}
		for k := range files(t, filepath.Join(nd.Dir(), spec.DstBucket)) {
			b, err := os.ReadFile(filepath.Join(nd.Dir(), spec.DstBucket, filepath.FromSlash(k)))
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(b, secret[:64]) {
				t.Errorf("%s: output %s serves the outside file's bytes", m.name, k)
			}
			if k != "a-first.bin" && k != "c-plain.bin" && (k != "b-victim.bin" || !opened) {
				t.Errorf("%s: unexpected output %s", m.name, k)
			}
		}
	}
}

// TestListSkipsWhatIsNoObject: the node's listing, its API's and its
// jobs', skips what cannot be an object: symbolic links (to files or
// directories, inside the store or out), special files (a FIFO) and files
// or directories whose names are not valid UTF-8, which no key can name.
// Every key listed can be read.
func TestListSkipsWhatIsNoObject(t *testing.T) {
	t.Parallel()
	s := startSingle(t, &node.Options{Transforms: map[string]insitu.Transform{"copy": insitu.Identity}})
	ctx := t.Context()
	body := content("ok", 1000)
	ok := insitu.Name{Bucket: "in", Key: "ok.bin"}
	if _, err := s.node.Put(ctx, ok, bytes.NewReader(body), int64(len(body))); err != nil {
		t.Fatal(err)
	}
	store := filepath.Join(s.parent, "store", "in")
	if err := os.WriteFile(filepath.Join(store, "bad-\xff.bin"), []byte("latin-1"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(store, "dir-\xfe"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(store, "dir-\xfe", "x.bin"), []byte("under a bad name"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("ok.bin", filepath.Join(store, "inside-link.bin")); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(s.parent, "outside.bin")
	if err := os.WriteFile(outside, []byte("outside"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(store, "outside-link.bin")); err != nil {
		t.Fatal(err)
	}
	// A FIFO, which a job that opened it would wait on forever.
	if err := syscall.Mkfifo(filepath.Join(store, "fifo.bin"), 0o644); err != nil {
		t.Fatal(err)
	}

	page, err := s.node.List(ctx, "in", nil)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range page.Objects {
		keys = append(keys, o.Name.Key)
	}
	if !slices.Equal(keys, []string{"ok.bin"}) {
		t.Errorf("List = %q, want only ok.bin", keys)
	}
	// Over HTTP too, and every key listed can be read.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.srv.URL+"/v1/objects/in", nil)
	s.secret.Authorize(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.Count(string(raw), `"key"`) != 1 || !strings.Contains(string(raw), `"ok.bin"`) {
		t.Errorf("GET /v1/objects/in = %d %s, want ok.bin only", resp.StatusCode, raw)
	}
	if _, err := s.node.StartJob(ctx, cluster.JobSpec{ID: "skip", Bucket: "in", DstBucket: "out", Transform: "copy"}); err != nil {
		t.Fatal(err)
	}
	if st := waitJob(t, s.node, "skip"); st.State != cluster.JobDone || st.Report.Listed != 1 || st.Report.Transformed != 1 {
		t.Fatalf("job: %s %+v, want ok.bin only", st.State, st.Report)
	}
}

// post sends a job spec (raw JSON) to s and returns the status and body.
func post(t *testing.T, s *single, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.srv.URL+"/v1/jobs", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	s.secret.Authorize(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestJobSpecTrailingData: a job spec followed by anything but white
// space is refused with 400 invalid_argument, and no job starts.
func TestJobSpecTrailingData(t *testing.T) {
	t.Parallel()
	s := startSingle(t, &node.Options{Transforms: map[string]insitu.Transform{"copy": insitu.Identity}})
	spec := `{"id":"%s","bucket":"in","dst_bucket":"out","transform":"copy"}`
	for i, tail := range []string{`{"id":"other","bucket":"in","dst_bucket":"out","transform":"copy"}`, ` x`, `]`, `}`, `0`, "\n\"\""} {
		id := fmt.Sprintf("trail-%d", i)
		status, body := post(t, s, fmt.Sprintf(spec, id)+tail)
		if e := errorBody(t, body); status != http.StatusBadRequest || e.Code != insitu.InvalidArgument {
			t.Errorf("spec + %q: %d %s, want 400 invalid_argument", tail, status, body)
		}
		for _, id := range []string{id, "other"} {
			if _, err := s.node.JobStatus(t.Context(), id, 0); err == nil {
				t.Errorf("spec + %q: job %s started", tail, id)
			}
		}
	}
	// A prefix that no key can start with is refused up front too.
	for _, prefix := range []string{"../x/", "a//b", "a/./b", "x\x00/"} {
		p, _ := json.Marshal(prefix)
		body := fmt.Sprintf(`{"id":"prefix","bucket":"in","prefix":%s,"dst_bucket":"out","transform":"copy"}`, p)
		if status, body := post(t, s, body); status != http.StatusBadRequest || !strings.Contains(string(body), "prefix") {
			t.Errorf("prefix %q: %d %s, want 400 naming the prefix", prefix, status, body)
		}
	}
	if status, body := post(t, s, fmt.Sprintf(spec, "spaces")+" \r\n\t"); status != http.StatusCreated {
		t.Errorf("spec + white space: %d %s, want 201", status, body)
	}
	waitJob(t, s.node, "spaces")
}

// blocker is a transform that blocks until its context ends or release is
// closed, then copies its input.
func blocker(release <-chan struct{}) insitu.Transform {
	return insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		select {
		case <-release:
		case <-ctx.Done():
			return ctx.Err()
		}
		_, err := io.Copy(out, in.Body)
		return err
	})
}

// TestJobLimit: a node runs at most node.DefaultMaxJobs jobs at once; one
// more is refused with 503 unavailable (a client tries again later), and
// accepted once a job has ended.
func TestJobLimit(t *testing.T) {
	t.Parallel()
	s := startSingle(t, &node.Options{Transforms: map[string]insitu.Transform{"block": blocker(nil)}})
	b := []byte("x")
	if _, err := s.node.Put(t.Context(), insitu.Name{Bucket: "in", Key: "x"}, bytes.NewReader(b), 1); err != nil {
		t.Fatal(err)
	}
	spec := `{"id":"%s","bucket":"in","dst_bucket":"out","transform":"block"}`
	for i := range node.DefaultMaxJobs {
		if status, body := post(t, s, fmt.Sprintf(spec, fmt.Sprint("j", i))); status != http.StatusCreated {
			t.Fatalf("job %d: %d %s", i, status, body)
		}
	}
	// The same spec again is the same job, not one more.
	if status, body := post(t, s, fmt.Sprintf(spec, "j0")); status != http.StatusCreated {
		t.Fatalf("j0 again: %d %s", status, body)
	}
	status, body := post(t, s, fmt.Sprintf(spec, "one-more"))
	if e := errorBody(t, body); status != http.StatusServiceUnavailable || e.Code != insitu.Unavailable || !strings.Contains(e.Message, fmt.Sprint(node.DefaultMaxJobs)) {
		t.Fatalf("job %d: %d %s, want 503 unavailable naming the limit", node.DefaultMaxJobs+1, status, body)
	}
	if _, err := s.node.JobStatus(t.Context(), "one-more", 0); err == nil {
		t.Fatal("the refused job is known")
	}
	if st, err := s.node.AbortJob(t.Context(), "j3"); err != nil || st.State != cluster.JobAborted {
		t.Fatalf("abort: %+v, %v", st, err)
	}
	if status, body := post(t, s, fmt.Sprintf(spec, "one-more")); status != http.StatusCreated {
		t.Fatalf("after an abort: %d %s, want 201", status, body)
	}
}

// TestJobFailuresBounded: a node's job keeps its first node.MaxJobFailures
// failures in its report and counts the others.
func TestJobFailuresBounded(t *testing.T) {
	t.Parallel()
	failing := insitu.TransformFunc(func(context.Context, *insitu.Input, io.Writer) error {
		return insitu.Errorf(insitu.InvalidArgument, "refused")
	})
	s := startSingle(t, &node.Options{Transforms: map[string]insitu.Transform{"fail": failing}})
	total := node.MaxJobFailures + 25
	for i := range total {
		if _, err := s.node.Put(t.Context(), insitu.Name{Bucket: "in", Key: fmt.Sprintf("%04d", i)}, strings.NewReader("x"), 1); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.node.StartJob(t.Context(), cluster.JobSpec{ID: "fails", Bucket: "in", DstBucket: "out", Transform: "fail", ContinueOnError: true}); err != nil {
		t.Fatal(err)
	}
	st := waitJob(t, s.node, "fails")
	if r := st.Report; r.Failed != int64(total) || len(r.Failures) != node.MaxJobFailures || r.FailuresDropped != 25 {
		t.Fatalf("failed %d, kept %d, dropped %d; want %d, %d, 25", r.Failed, len(r.Failures), r.FailuresDropped, total, node.MaxJobFailures)
	}
}

// TestJobRepost: posting a running job's spec again returns that job;
// posting an ended job's spec (done, failed or aborted) under its ID
// starts a new run, which replaces the old one's status, so that a job
// aborted midway is resumed by posting it again; another spec under an ID
// in use, running or ended, is refused with 400 invalid_argument naming
// the ID.
func TestJobRepost(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	s := startSingle(t, &node.Options{Transforms: map[string]insitu.Transform{"block": blocker(release)}})
	for i := range 5 {
		if _, err := s.node.Put(t.Context(), insitu.Name{Bucket: "in", Key: fmt.Sprint(i)}, strings.NewReader("x"), 1); err != nil {
			t.Fatal(err)
		}
	}
	spec := `{"id":"again","bucket":"in","dst_bucket":"out","transform":"block","skip_existing":true}`
	decode := func(b []byte) cluster.JobStatus {
		t.Helper()
		var st cluster.JobStatus
		if err := json.Unmarshal(b, &st); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		return st
	}
	for range 2 {
		if status, body := post(t, s, spec); status != http.StatusCreated || decode(body).State != cluster.JobRunning {
			t.Fatalf("post: %d %s, want 201 running", status, body)
		}
	}
	if st, err := s.node.AbortJob(t.Context(), "again"); err != nil || st.State != cluster.JobAborted {
		t.Fatalf("abort: %+v, %v", st, err)
	}
	other := strings.Replace(spec, `"out"`, `"elsewhere"`, 1)
	if status, body := post(t, s, other); status != http.StatusBadRequest || !strings.Contains(string(body), `\"again\"`) {
		t.Fatalf("another spec under an ended job's id: %d %s, want 400 naming it", status, body)
	}
	close(release)
	if status, body := post(t, s, spec); status != http.StatusCreated || decode(body).State == cluster.JobAborted {
		t.Fatalf("post after the abort: %d %s, want 201 and a new run", status, body)
	}
	if st := waitJob(t, s.node, "again"); st.State != cluster.JobDone || st.Report.Transformed != 5 {
		t.Fatalf("the new run: %s %+v, want done with 5 transformed", st.State, st.Report)
	}
	// Once more: everything exists, and SkipExisting skips it all.
	if status, body := post(t, s, spec); status != http.StatusCreated {
		t.Fatalf("post after done: %d %s", status, body)
	}
	if st := waitJob(t, s.node, "again"); st.State != cluster.JobDone || st.Report.Skipped != 5 {
		t.Fatalf("the third run: %s %+v, want done with 5 skipped", st.State, st.Report)
	}
	if status, body := post(t, s, other); status != http.StatusBadRequest {
		t.Fatalf("another spec under a done job's id: %d %s, want 400", status, body)
	}
}
