package sink_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/pipeline"
	"github.com/insitu-data/insitu/sink"
	"github.com/insitu-data/insitu/sink/sinktest"
	"github.com/insitu-data/insitu/source"
)

// TestClusterSkipUnchanged: a run from a cluster's bucket into another,
// the outputs coming back to the runner and put by sink.Cluster with their
// origins: a rerun with SkipUnchanged makes again exactly the outputs
// whose origin changed.
func TestClusterSkipUnchanged(t *testing.T) {
	c := startCluster(t, 3)
	client := c.Client()
	src, err := source.Cluster(client, "in", nil)
	if err != nil {
		t.Fatal(err)
	}
	dst := newCluster(t, client)
	put := func(t *testing.T, name insitu.Name, data []byte) {
		if _, err := client.Put(t.Context(), name, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
	}
	sinktest.RunResume(t, sinktest.ResumeHarness{
		WriteInput: func(t *testing.T, key string, data []byte) { put(t, insitu.Name{Bucket: "in", Key: key}, data) },
		Run: func(t *testing.T, opts pipeline.Options) pipeline.Report {
			opts.Rename = func(n insitu.Name) (insitu.Name, error) { return insitu.Name{Bucket: "out", Key: n.Key}, nil }
			rep, err := pipeline.Run(t.Context(), src, sinktest.ResumeTransform, dst, &opts)
			if err != nil {
				t.Fatalf("Run: %v\n%s", err, rep)
			}
			return rep
		},
		ReadOutput: func(t *testing.T, key string) []byte {
			rc, _, err := client.Get(t.Context(), insitu.Name{Bucket: "out", Key: key})
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
		PutWithoutOrigin: func(t *testing.T, key string, data []byte) { put(t, insitu.Name{Bucket: "out", Key: key}, data) },
	})
}

var _ insitu.OriginSink = (*sink.ClusterSink)(nil)
