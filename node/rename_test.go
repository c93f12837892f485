package node_test

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/cluster"
	"github.com/insitu-data/insitu/internal/wire"
	"github.com/insitu-data/insitu/locality"
	"github.com/insitu-data/insitu/node"
	"github.com/insitu-data/insitu/node/nodetest"
	"github.com/insitu-data/insitu/transport"
)

// clashPair is two input keys of one bucket, stored on different nodes,
// that a rename of ".flac" to ".wav" gives one output name: "k" and
// "k.flac" both become "k.wav".
type clashPair struct {
	plain, flac string // the input keys
	out         string // the output key
}

// clashPairs returns, under the map m, a pair whose output's owner is the
// node of neither input, and one whose output's owner is the node of one
// of them (so that one put is local to the owner, the other remote).
func clashPairs(t *testing.T, m *locality.Map) []clashPair {
	t.Helper()
	owner := func(bucket, key string) string { return m.Owner(insitu.Name{Bucket: bucket, Key: key}).ID }
	var third, shared *clashPair
	for i := 0; i < 100_000 && (third == nil || shared == nil); i++ {
		p := clashPair{plain: fmt.Sprintf("clash/%d", i), flac: fmt.Sprintf("clash/%d.flac", i), out: fmt.Sprintf("clash/%d.wav", i)}
		a, b, o := owner("in", p.plain), owner("in", p.flac), owner("out", p.out)
		switch {
		case a == b:
		case o != a && o != b && third == nil:
			third = &p
		case (o == a || o == b) && shared == nil:
			shared = &p
		}
	}
	if third == nil || shared == nil {
		t.Fatal("no pairs of keys on different nodes")
	}
	return []clashPair{*third, *shared}
}

// TestRenameClashAcrossNodes: two inputs of one job on different nodes
// renamed to the same output name. The output's owner takes the first and
// refuses the second with InvalidArgument naming both, whether the
// second's put is remote or local to the owner, in embedded mode and
// through transform servers that send the output back. Before the check,
// both puts succeeded and one output was silently lost.
func TestRenameClashAcrossNodes(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3, &nodetest.Options{
		Transforms: map[string]insitu.Transform{"identity": insitu.Identity},
		Sidecar:    insitu.Identity,
	})
	pairs := clashPairs(t, c.Map())
	inputs := map[string][]byte{}
	for _, p := range pairs {
		for _, k := range []string{p.plain, p.flac} {
			inputs[k] = content(k, 1000+len(k))
			if _, err := c.Put(t.Context(), insitu.Name{Bucket: "in", Key: k}, bytes.NewReader(inputs[k]), -1); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range 10 { // inputs that clash with nothing
		k := fmt.Sprintf("fine/%d.flac", i)
		inputs[k] = content(k, 100)
		if _, err := c.Put(t.Context(), insitu.Name{Bucket: "in", Key: k}, bytes.NewReader(inputs[k]), -1); err != nil {
			t.Fatal(err)
		}
	}
	rename := &cluster.RenameExt{From: ".flac", To: ".wav"}
	for _, tc := range []struct {
		name string
		spec cluster.JobSpec
	}{
		{"embedded", cluster.JobSpec{Transform: "identity"}},
		{"sidecar-ws", cluster.JobSpec{Server: &cluster.ServerSpec{Mode: transport.WS}}},
		{"sidecar-hpull-local", cluster.JobSpec{Server: &cluster.ServerSpec{Mode: transport.HPull, LocalFile: true}}},
		// The transform servers put the outputs to their owners themselves.
		{"sidecar-ws-direct", cluster.JobSpec{Server: &cluster.ServerSpec{Mode: transport.WS, DirectPut: true}}},
		{"sidecar-hpush-local-direct", cluster.JobSpec{Server: &cluster.ServerSpec{Mode: transport.HPush, LocalFile: true, DirectPut: true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := tc.spec
			spec.Bucket, spec.DstBucket, spec.Rename, spec.ContinueOnError = "in", "out-"+tc.name, rename, true
			rep, err := cluster.Run(t.Context(), c.Client(), spec, &cluster.Options{})
			if err != nil {
				t.Fatalf("Run: %v\n%s", err, rep)
			}
			total := int64(len(inputs))
			if rep.Listed != total || rep.Transformed != total-int64(len(pairs)) || rep.Failed != int64(len(pairs)) {
				t.Fatalf("report, want %d clashes:\n%s", len(pairs), rep)
			}
			for _, p := range pairs {
				// One input failed, naming both; the output holds the other.
				var failed *string
				for _, f := range rep.Failures {
					if f.Name.Key == p.plain || f.Name.Key == p.flac {
						if failed != nil {
							t.Fatalf("both inputs of %v failed", p)
						}
						failed = &f.Name.Key
						if f.Code != insitu.InvalidArgument || !strings.Contains(f.Message, "in/"+p.plain) ||
							!strings.Contains(f.Message, "in/"+p.flac) || !strings.Contains(f.Message, p.out) {
							t.Errorf("failure %+v, want InvalidArgument naming in/%s, in/%s and %s", f, p.plain, p.flac, p.out)
						}
					}
				}
				if failed == nil {
					t.Fatalf("neither input of %v failed:\n%s", p, rep)
				}
				won := p.plain
				if *failed == p.plain {
					won = p.flac
				}
				got, _, err := readAll(t.Context(), c.Client(), insitu.Name{Bucket: spec.DstBucket, Key: p.out})
				if err != nil || !bytes.Equal(got, inputs[won]) {
					t.Errorf("%s holds %d bytes (%s), %v; want the %d bytes of %s (%s)", p.out, len(got), checksum(got), err,
						len(inputs[won]), won, checksum(inputs[won]))
				}
			}

			// A rerun with skip_unchanged and another transform ID makes
			// every output again: the outputs exist, and their puts are
			// checked all the same.
			spec.SkipUnchanged, spec.TransformID = true, "identity/2"
			rep, err = cluster.Run(t.Context(), c.Client(), spec, &cluster.Options{})
			if err != nil {
				t.Fatalf("rerun: %v\n%s", err, rep)
			}
			if rep.Listed != total || rep.Transformed != total-int64(len(pairs)) || rep.Failed != int64(len(pairs)) || rep.Skipped != 0 {
				t.Fatalf("rerun with skip_unchanged, want %d clashes:\n%s", len(pairs), rep)
			}
		})
	}
}

// TestPutClaimHeaders: a PUT with the headers Insitu-Job and Insitu-Input
// claims the output for that input of that job: the same input again, or
// another job, is accepted; another input of the job is refused with 400
// invalid_argument naming both, and nothing is stored; malformed headers
// are refused.
func TestPutClaimHeaders(t *testing.T) {
	t.Parallel()
	s := startSingle(t, nil)
	put := func(key, job, input, body string) (int, wire.ErrorBody) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPut, s.srv.URL+"/v1/objects/out/"+key, strings.NewReader(body))
		s.secret.Authorize(req)
		if job != "" {
			req.Header.Set("Insitu-Job", job)
		}
		if input != "" {
			req.Header.Set("Insitu-Input", input)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b wire.ErrorBody
		if resp.StatusCode != http.StatusOK {
			var raw bytes.Buffer
			raw.ReadFrom(resp.Body)
			b = errorBody(t, raw.Bytes())
		}
		return resp.StatusCode, b
	}
	in := func(key string) string { return url.PathEscape("in/" + key) }
	if st, b := put("x.wav", "j1", in("x"), "first"); st != http.StatusOK {
		t.Fatalf("first claim: %d %+v", st, b)
	}
	if st, b := put("x.wav", "j1", in("x"), "again"); st != http.StatusOK {
		t.Fatalf("the same input again (a retry): %d %+v", st, b)
	}
	st, b := put("x.wav", "j1", in("x.flac"), "second")
	if st != http.StatusBadRequest || b.Code != insitu.InvalidArgument ||
		!strings.Contains(b.Message, "in/x.flac") || !strings.Contains(b.Message, "in/x ") || !strings.Contains(b.Message, "j1") {
		t.Fatalf("a second input: %d %+v, want 400 invalid_argument naming in/x and in/x.flac", st, b)
	}
	if got, _, err := s.node.Open(t.Context(), insitu.Name{Bucket: "out", Key: "x.wav"}); err != nil {
		t.Fatal(err)
	} else {
		var buf bytes.Buffer
		buf.ReadFrom(got)
		got.Close()
		if buf.String() != "again" {
			t.Fatalf("stored %q, want the retry's bytes", buf.String())
		}
	}
	if st, b := put("x.wav", "j2", in("x.flac"), "other job"); st != http.StatusOK {
		t.Errorf("another job: %d %+v", st, b)
	}
	if st, b := put("y.wav", "", "", "no claim"); st != http.StatusOK {
		t.Errorf("a put without a claim: %d %+v", st, b)
	}
	for _, h := range [][2]string{{"j1", ""}, {"", in("x")}, {"j1", "%zz"}, {"j1", url.PathEscape("nobucket")}, {"j1", in("../up")}, {strings.Repeat("j", 65), in("x")}} {
		if st, b := put("z.wav", h[0], h[1], "bad"); st != http.StatusBadRequest || b.Code != insitu.InvalidArgument {
			t.Errorf("headers %q: %d %+v, want 400 invalid_argument", h, st, b)
		}
	}
	if fs := files(t, s.node.Dir()); len(fs) != 2 {
		t.Errorf("store holds %v, want out/x.wav and out/y.wav", fs)
	}
}

// TestRenameClashOnOneNodeSmallRecord: three inputs on one node, two of
// them renamed to one output, with the owner's record of outputs cut to
// one entry so that only the runner's own check can catch the clash. The
// runner once confirmed a match by calling the job's Rename again, which
// on a node records the claim, and so let the clash through (transformed
// 3, failed 0, one output lost).
func TestRenameClashOnOneNodeSmallRecord(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 1, &nodetest.Options{
		Transforms:  map[string]insitu.Transform{"identity": insitu.Identity},
		NodeOptions: func(_ string, o *node.Options) { o.OutputRecords = 1 },
	})
	for _, key := range []string{"a.x", "k", "k.x"} {
		if _, err := c.Put(t.Context(), insitu.Name{Bucket: "in", Key: key}, strings.NewReader(key), -1); err != nil {
			t.Fatal(err)
		}
	}
	spec := cluster.JobSpec{Bucket: "in", DstBucket: "out", Transform: "identity",
		Rename: &cluster.RenameExt{From: ".x", To: ".y"}, ContinueOnError: true}
	rep, err := cluster.Run(t.Context(), c.Client(), spec, nil)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, rep)
	}
	if rep.Transformed != 2 || rep.Failed != 1 || len(rep.Failures) != 1 || rep.Failures[0].Code != insitu.InvalidArgument ||
		!strings.Contains(rep.Failures[0].Message, "k.y") {
		t.Fatalf("want 2 transformed and the clash on k.y failed:\n%s", rep)
	}
}

// TestClaimEndpoint: POST /v1/jobs/{id}/claims claims an output for an
// input of a job before a transform server puts it: the same input again
// and another job are accepted, another input of the job is refused with
// InvalidArgument naming both, a bad body is InvalidArgument and a name
// the node does not own is NotOwner.
func TestClaimEndpoint(t *testing.T) {
	t.Parallel()
	s := startSingle(t, nil)
	m, err := locality.NewMap(1, locality.Node{ID: "solo", URL: s.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	client, err := locality.NewClient(m, &locality.ClientOptions{Secret: s.secret})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	self, _ := m.Node("solo")
	post := func(job string, body any) error {
		return client.Call(t.Context(), self, http.MethodPost, "/v1/jobs/"+job+"/claims", body, nil)
	}
	out := insitu.Name{Bucket: "out", Key: "k.wav"}
	a, b := insitu.Name{Bucket: "in", Key: "k"}, insitu.Name{Bucket: "in", Key: "k.flac"}
	type body struct {
		Input  insitu.Name `json:"input"`
		Output insitu.Name `json:"output"`
	}
	for _, ok := range []struct {
		job string
		in  insitu.Name
	}{{"j1", a}, {"j1", a}, {"j2", b}} {
		if err := post(ok.job, body{ok.in, out}); err != nil {
			t.Fatalf("claim of %s by %s in %s: %v", out, ok.in, ok.job, err)
		}
	}
	err = post("j1", body{b, out})
	if !errors.Is(err, insitu.InvalidArgument) || !strings.Contains(err.Error(), "in/k.flac") || !strings.Contains(err.Error(), "in/k ") {
		t.Fatalf("second input's claim = %v, want InvalidArgument naming in/k and in/k.flac", err)
	}
	if err := post("j1", map[string]any{"input": a, "output": out, "extra": 1}); !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("unknown field: %v", err)
	}
	if err := post("j1", body{insitu.Name{Bucket: "in", Key: "../x"}, out}); !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("bad input name: %v", err)
	}
	// The node's own map has it at 127.0.0.1:1: a map where another node
	// owns the output makes the node refuse it.
	other, _ := locality.NewMap(2, locality.Node{ID: "solo", URL: s.srv.URL}, locality.Node{ID: "zz", URL: "http://127.0.0.1:1"})
	s.node.SetMap(other)
	for i := 0; ; i++ {
		o := insitu.Name{Bucket: "out", Key: fmt.Sprintf("elsewhere-%d", i)}
		if other.Owner(o).ID != "zz" {
			continue
		}
		if err := post("j1", body{a, o}); !errors.Is(err, insitu.NotOwner) {
			t.Errorf("claim of a name owned by another node: %v, want NotOwner", err)
		}
		break
	}
}
