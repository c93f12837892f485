package sink_test

import (
	"testing"

	"github.com/insitu-data/insitu/locality"
	"github.com/insitu-data/insitu/sink"
	"github.com/insitu-data/insitu/source"
)

// newDir returns sink.Dir(root, opts), failing the test on error.
func newDir(t testing.TB, root string, opts *sink.DirOptions) *sink.DirSink {
	t.Helper()
	s, err := sink.Dir(root, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newDirSource returns source.Dir(root, nil), failing the test on error.
func newDirSource(t testing.TB, root string) *source.DirSource {
	t.Helper()
	s, err := source.Dir(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newCluster returns sink.Cluster(c), failing the test on error.
func newCluster(t testing.TB, c *locality.Client) *sink.ClusterSink {
	t.Helper()
	s, err := sink.Cluster(c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
