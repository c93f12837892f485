package source_test

import (
	"testing"

	"github.com/insitu-data/insitu/locality"
	"github.com/insitu-data/insitu/source"
)

// newDir returns source.Dir(root, opts), failing the test on error.
func newDir(t testing.TB, root string, opts *source.DirOptions) *source.DirSource {
	t.Helper()
	s, err := source.Dir(root, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newCluster returns source.Cluster(c, bucket, opts), failing the test on
// error.
func newCluster(t testing.TB, c *locality.Client, bucket string, opts *source.ClusterOptions) *source.ClusterSource {
	t.Helper()
	s, err := source.Cluster(c, bucket, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
