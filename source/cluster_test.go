package source_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/locality"
	"github.com/insitu-data/insitu/node/nodetest"
	"github.com/insitu-data/insitu/source"
	"github.com/insitu-data/insitu/source/sourcetest"
)

func startCluster(t *testing.T, n int) *nodetest.Cluster {
	t.Helper()
	c, err := nodetest.Start(context.Background(), n, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("closing the cluster: %v", err)
		}
	})
	return c
}

func TestClusterConformance(t *testing.T) {
	sourcetest.Run(t, sourcetest.Harness{
		Bucket: "conf",
		MakeSource: func(t *testing.T, objects map[string][]byte) insitu.Source {
			c := startCluster(t, 3)
			for k, b := range objects {
				if _, err := c.Put(context.Background(), insitu.Name{Bucket: "conf", Key: k}, bytes.NewReader(b), int64(len(b))); err != nil {
					t.Fatal(err)
				}
			}
			// Small pages, so that the merge crosses page boundaries.
			return newCluster(t, c.Client(), "conf", &source.ClusterOptions{PageSize: 2})
		},
	})
}

// seed writes objects straight into their owners' store directories, each
// holding its key, and returns the keys sorted.
func seed(t *testing.T, c *nodetest.Cluster, bucket string, keys []string) []string {
	t.Helper()
	for _, k := range keys {
		name := insitu.Name{Bucket: bucket, Key: k}
		p := c.Node(c.Map().Owner(name).ID).Path(name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(k), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sorted := slices.Clone(keys)
	slices.Sort(sorted)
	return sorted
}

func manyKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		switch i % 4 {
		case 0:
			keys[i] = fmt.Sprintf("a/%05d", i)
		case 1:
			keys[i] = fmt.Sprintf("a-%05d", i)
		case 2:
			keys[i] = fmt.Sprintf("deep/%d/%05d.bin", i%7, i)
		default:
			keys[i] = fmt.Sprintf("z%05d", i)
		}
	}
	return keys
}

func TestClusterMergedListing(t *testing.T) {
	if testing.Short() {
		t.Skip("seeds and lists 2,500 objects over 3 nodes; skipped under -short")
	}
	c := startCluster(t, 3)
	want := seed(t, c, "big", manyKeys(2500))
	// A stray copy on a node that does not own the name is not listed twice.
	stray := insitu.Name{Bucket: "big", Key: want[10]}
	for _, nd := range c.Nodes() {
		if nd.ID() != c.Map().Owner(stray).ID {
			p := nd.Path(stray)
			os.MkdirAll(filepath.Dir(p), 0o755)
			os.WriteFile(p, []byte("stale copy"), 0o644)
			break
		}
	}
	perNode := map[string]int{}
	for _, pageSize := range []int{0, 97} {
		src := newCluster(t, c.Client(), "big", &source.ClusterOptions{PageSize: pageSize})
		var got []string
		for obj, err := range src.Objects(context.Background()) {
			if err != nil {
				t.Fatalf("listing: %v", err)
			}
			owner := c.Map().Owner(obj.Name).ID
			if obj.Owner != owner || obj.Size != int64(len(obj.Name.Key)) || obj.Name.Bucket != "big" || obj.Path != "" {
				t.Fatalf("listed %+v, want owner %s and size %d", obj, owner, len(obj.Name.Key))
			}
			got = append(got, obj.Name.Key)
			if pageSize == 0 {
				perNode[obj.Owner]++
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("page size %d: %d keys, want %d in bytewise order", pageSize, len(got), len(want))
		}
	}
	if len(perNode) != 3 {
		t.Errorf("objects per node: %v", perNode)
	}
	// Breaking out early leaves no fetch running.
	n := 0
	for _, err := range newCluster(t, c.Client(), "big", &source.ClusterOptions{PageSize: 3}).Objects(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 5 {
			break
		}
	}
	buf := make([]byte, 1<<20)
	if stacks := string(buf[:runtime.Stack(buf, true)]); strings.Contains(stacks, "source.(*cursor).fetch") {
		t.Errorf("a page fetch outlived the listing:\n%s", stacks)
	}
	// Prefix and StartAfter, one object per page.
	src := newCluster(t, c.Client(), "big", &source.ClusterOptions{Prefix: "deep/3/", StartAfter: "deep/3/01000", PageSize: 1})
	var got, w []string
	for obj, err := range src.Objects(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, obj.Name.Key)
	}
	for _, k := range want {
		if strings.HasPrefix(k, "deep/3/") && k > "deep/3/01000" {
			w = append(w, k)
		}
	}
	if len(w) == 0 || !slices.Equal(got, w) {
		t.Errorf("prefix listing: %q, want %q", got, w)
	}
}

func TestClusterNodeDown(t *testing.T) {
	c := startCluster(t, 3)
	want := seed(t, c, "b", manyKeys(300))
	ctx := context.Background()
	if err := c.StopNode(ctx, "n2"); err != nil {
		t.Fatal(err)
	}
	var got []string
	var errs []error
	for obj, err := range newCluster(t, c.Client(), "b", &source.ClusterOptions{PageSize: 10}).Objects(ctx) {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		got = append(got, obj.Name.Key)
	}
	if len(errs) != 1 || !errors.Is(errs[0], insitu.Unavailable) || !strings.Contains(errs[0].Error(), "n2") {
		t.Fatalf("errors: %v; want one Unavailable error naming n2", errs)
	}
	var w []string
	for _, k := range want {
		if c.Map().Owner(insitu.Name{Bucket: "b", Key: k}).ID != "n2" {
			w = append(w, k)
		}
	}
	if !slices.Equal(got, w) {
		t.Errorf("listed %d objects, want the %d of the nodes still up", len(got), len(w))
	}
	// Opening an object of the stopped node is Unavailable.
	for _, k := range want {
		name := insitu.Name{Bucket: "b", Key: k}
		if c.Map().Owner(name).ID == "n2" {
			if _, err := newCluster(t, c.Client(), "b", nil).Open(ctx, insitu.Object{Name: name}); !errors.Is(err, insitu.Unavailable) {
				t.Errorf("Open on a stopped node: %v, want Unavailable", err)
			}
			break
		}
	}
}

func TestClusterBadArguments(t *testing.T) {
	c := startCluster(t, 1)
	for _, tc := range []struct {
		c      *locality.Client
		bucket string
		opts   *source.ClusterOptions
	}{
		{nil, "b", nil},
		{c.Client(), "bad/bucket", nil},
		{c.Client(), "", nil},
		{c.Client(), "b", &source.ClusterOptions{PageSize: -1}},
	} {
		if src, err := source.Cluster(tc.c, tc.bucket, tc.opts); src != nil || !errors.Is(err, insitu.InvalidArgument) {
			t.Errorf("Cluster(client %v, %q, %+v) = %v, %v; want InvalidArgument", tc.c != nil, tc.bucket, tc.opts, src, err)
		}
	}
}
