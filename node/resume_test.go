package node_test

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/cluster"
	"github.com/insitu-data/insitu/node/nodetest"
	"github.com/insitu-data/insitu/pipeline"
	"github.com/insitu-data/insitu/sink/sinktest"
	"github.com/insitu-data/insitu/transport"
)

// TestJobSkipUnchanged: a job rerun with skip_unchanged (cluster.Run)
// makes again exactly the outputs whose origin changed, on every node,
// whether the node runs the transform itself (embedded), has the
// transform server next to it hand the output back, or has it put the
// output to its owner itself (direct put, with the origin going along).
func TestJobSkipUnchanged(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3, &nodetest.Options{
		Transforms: map[string]insitu.Transform{"resume": sinktest.ResumeTransform},
		Sidecar:    sinktest.ResumeTransform,
	})
	client := c.Client()
	put := func(t *testing.T, name insitu.Name, data []byte) {
		if _, err := client.Put(t.Context(), name, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		spec cluster.JobSpec
	}{
		{"embedded", cluster.JobSpec{Transform: "resume"}},
		{"ws-direct", cluster.JobSpec{Server: &cluster.ServerSpec{Mode: transport.WS, DirectPut: true}}},
		{"hpull-local-file-direct", cluster.JobSpec{Server: &cluster.ServerSpec{Mode: transport.HPull, LocalFile: true, DirectPut: true}}},
		{"hpush", cluster.JobSpec{Server: &cluster.ServerSpec{Mode: transport.HPush}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, out := "in-"+tc.name, "out-"+tc.name
			sinktest.RunResume(t, sinktest.ResumeHarness{
				WriteInput: func(t *testing.T, key string, data []byte) { put(t, insitu.Name{Bucket: in, Key: key}, data) },
				Run: func(t *testing.T, opts pipeline.Options) pipeline.Report {
					spec := tc.spec
					spec.Bucket, spec.DstBucket, spec.Workers = in, out, 2
					spec.Args, spec.TransformID = opts.Args, opts.TransformID
					spec.SkipExisting, spec.SkipUnchanged = opts.SkipExisting, opts.SkipUnchanged
					rep, err := cluster.Run(t.Context(), client, spec, nil)
					if err != nil {
						t.Fatalf("cluster.Run: %v\n%s", err, rep)
					}
					return rep.Report
				},
				ReadOutput: func(t *testing.T, key string) []byte {
					b, _, err := readAll(t.Context(), client, insitu.Name{Bucket: out, Key: key})
					if err != nil {
						t.Fatal(err)
					}
					return b
				},
				PutWithoutOrigin: func(t *testing.T, key string, data []byte) { put(t, insitu.Name{Bucket: out, Key: key}, data) },
			})
		})
	}
}

// TestJobSpecSkipFlags: skip_existing and skip_unchanged do not go
// together, and transform_id is bounded.
func TestJobSpecSkipFlags(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 1, &nodetest.Options{Transforms: map[string]insitu.Transform{"resume": sinktest.ResumeTransform}})
	for _, spec := range []cluster.JobSpec{
		{Bucket: "in", DstBucket: "out", Transform: "resume", SkipExisting: true, SkipUnchanged: true},
		{Bucket: "in", DstBucket: "out", Transform: "resume", TransformID: string(make([]byte, 257))},
		{Bucket: "in", DstBucket: "out", Transform: "resume", TransformID: "\xff"},
	} {
		if _, err := cluster.Run(t.Context(), c.Client(), spec, nil); !errors.Is(err, insitu.InvalidArgument) {
			t.Errorf("spec %+v: %v; want InvalidArgument", spec, err)
		}
	}
}

// TestOriginHeader: a PUT's Insitu-Origin is stored with the object and
// answered by GET and HEAD; a PUT without it leaves none; one that is not
// an origin's text is 400 invalid_argument, with nothing stored.
func TestOriginHeader(t *testing.T) {
	t.Parallel()
	s := startSingle(t, nil)
	tok := s.secret.AdminToken(time.Now().Add(time.Hour))
	o := insitu.Origin{Input: insitu.Name{Bucket: "in", Key: "a b/ü.flac"}, Version: "3-17", Transform: "t", Args: insitu.ArgsDigest("")}
	put := func(key, origin string) (*http.Response, []byte) {
		h := ""
		if origin != "" {
			h = "Insitu-Origin: " + origin + "\r\n"
		}
		return raw(t, s.addr(), "PUT /v1/objects/b/"+key+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer "+tok+
			"\r\n"+h+"Content-Length: 5\r\n\r\nhello")
	}
	head := func(method, key string) *http.Response {
		resp, _ := raw(t, s.addr(), method+" /v1/objects/b/"+key+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer "+tok+"\r\n\r\n")
		return resp
	}
	if resp, body := put("k", o.String()); resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT with an origin: %s %s", resp.Status, body)
	}
	for _, method := range []string{"GET", "HEAD"} {
		if got := head(method, "k").Header.Get("Insitu-Origin"); got != o.String() {
			t.Errorf("%s: Insitu-Origin %q, want %q", method, got, o.String())
		}
	}
	obj, err := s.node.Stat(t.Context(), insitu.Name{Bucket: "b", Key: "k"})
	if err != nil || obj.Origin != o.String() || obj.Version == "" {
		t.Errorf("Stat = %+v, %v", obj, err)
	}
	if resp, body := put("k", ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT without an origin: %s %s", resp.Status, body)
	}
	if resp := head("HEAD", "k"); resp.Header.Get("Insitu-Origin") != "" || resp.StatusCode != http.StatusOK {
		t.Errorf("HEAD after a PUT without an origin: %s, Insitu-Origin %q; want none", resp.Status, resp.Header.Get("Insitu-Origin"))
	}
	for _, bad := range []string{"garbage", strings.Replace(o.String(), "args=", "args=0", 1), o.String() + "&x=1"} {
		resp, body := put("bad", bad)
		if resp.StatusCode != http.StatusBadRequest || errorBody(t, body).Code != insitu.InvalidArgument {
			t.Errorf("PUT with Insitu-Origin %q: %s %s; want 400 invalid_argument", bad, resp.Status, body)
		}
		if resp := head("HEAD", "bad"); resp.StatusCode != http.StatusNotFound {
			t.Errorf("after a refused PUT: HEAD %s, want 404", resp.Status)
		}
	}
}
