package transport_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/node/nodetest"
	"github.com/insitu-data/insitu/pipeline"
	"github.com/insitu-data/insitu/sink"
	"github.com/insitu-data/insitu/sink/sinktest"
	"github.com/insitu-data/insitu/source"
	"github.com/insitu-data/insitu/transport"
)

// TestClusterSkipUnchanged: in remote mode, with the transform servers
// putting each output to its owner themselves (direct put, the origin
// going with the put: put_origin / Insitu-Put-Origin, then the node's
// Insitu-Origin) or handing it back to the runner, a rerun with
// SkipUnchanged makes again exactly the outputs whose origin changed.
func TestClusterSkipUnchanged(t *testing.T) {
	c, err := nodetest.Start(t.Context(), 3, &nodetest.Options{Sidecar: sinktest.ResumeTransform})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	client := c.Client()
	dst, err := sink.Cluster(client)
	if err != nil {
		t.Fatal(err)
	}
	put := func(t *testing.T, name insitu.Name, data []byte) {
		if _, err := client.Put(t.Context(), name, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name   string
		opts   transport.ClusterOptions
		direct bool
	}{
		{"ws-direct", transport.ClusterOptions{Mode: transport.WS}, true},
		{"hpull-direct", transport.ClusterOptions{Mode: transport.HPull}, true},
		{"hpush-local-file-direct", transport.ClusterOptions{Mode: transport.HPush, LocalPath: c.LocalPath}, true},
		{"ws", transport.ClusterOptions{Mode: transport.WS}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, out := "in-"+tc.name, "out-"+tc.name
			tr, err := transport.Cluster(client, &tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			src, err := source.Cluster(client, in, nil)
			if err != nil {
				t.Fatal(err)
			}
			sinktest.RunResume(t, sinktest.ResumeHarness{
				WriteInput: func(t *testing.T, key string, data []byte) { put(t, insitu.Name{Bucket: in, Key: key}, data) },
				Run: func(t *testing.T, opts pipeline.Options) pipeline.Report {
					opts.DirectPut = tc.direct
					opts.Rename = func(n insitu.Name) (insitu.Name, error) { return insitu.Name{Bucket: out, Key: n.Key}, nil }
					rep, err := pipeline.Run(t.Context(), src, tr, dst, &opts)
					if err != nil {
						t.Fatalf("Run: %v\n%s", err, rep)
					}
					return rep
				},
				ReadOutput: func(t *testing.T, key string) []byte {
					rc, _, err := client.Get(t.Context(), insitu.Name{Bucket: out, Key: key})
					if err != nil {
						t.Fatal(err)
					}
					defer rc.Close()
					b, err := io.ReadAll(rc)
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
