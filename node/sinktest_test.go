package node_test

import (
	"context"
	"io"
	"sync"
	"testing"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/node"
	"github.com/insitu-data/insitu/node/nodetest"
	"github.com/insitu-data/insitu/sink/sinktest"
)

// TestNodeSinkConformance runs the sink suite against node.Node itself:
// its Put and Stat on the local store.
func TestNodeSinkConformance(t *testing.T) {
	t.Parallel()
	sinktest.Run(t, sinktest.Harness{
		Bucket:   "conf",
		MakeSink: func(t *testing.T) insitu.Sink { return startSingle(t, nil).node },
		Read: func(t *testing.T, s insitu.Sink, name insitu.Name) ([]byte, error) {
			f, _, err := s.(*node.Node).Open(context.Background(), name)
			if err != nil {
				return nil, err
			}
			defer f.Close()
			return io.ReadAll(f)
		},
	})
}

// TestJobSinkConformance runs the sink suite against the sink a job puts
// its outputs through: on n1 of three nodes, so that it stores some
// outputs locally and sends the others to their owners.
func TestJobSinkConformance(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	clusters := map[insitu.Sink]*nodetest.Cluster{}
	sinktest.Run(t, sinktest.Harness{
		Bucket: "conf",
		MakeSink: func(t *testing.T) insitu.Sink {
			c := startCluster(t, 3, nil)
			s, err := node.JobSink(c.Node("n1"), "job")
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			clusters[s] = c
			mu.Unlock()
			return s
		},
		Read: func(t *testing.T, s insitu.Sink, name insitu.Name) ([]byte, error) {
			mu.Lock()
			c := clusters[s]
			mu.Unlock()
			b, _, err := readAll(context.Background(), c.Client(), name)
			return b, err
		},
	})
}
