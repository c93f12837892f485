package loader_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/loader"
	"github.com/insitu-data/insitu/node/nodetest"
	"github.com/insitu-data/insitu/source"
)

// upper is the transform the test cluster's nodes know as "upper".
var upper = insitu.TransformFunc(func(_ context.Context, in *insitu.Input, out io.Writer) error {
	b, err := io.ReadAll(in.Body)
	if err != nil {
		return err
	}
	_, err = out.Write(bytes.ToUpper(b))
	return err
})

// TestCluster: over a cluster's bucket, the samples come transformed on
// their owners, in the same order whether read in batch GETs
// (loader.Cluster) or one by one (source.Cluster), and an object gone
// since the listing is a NotFound error for its sample alone.
func TestCluster(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c, err := nodetest.Start(ctx, 3, &nodetest.Options{Transforms: map[string]insitu.Transform{"upper": upper}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 150
	for i := range n {
		key := fmt.Sprintf("s-%04d", i)
		if _, err := c.Put(ctx, insitu.Name{Bucket: "train", Key: key}, strings.NewReader(key), -1); err != nil {
			t.Fatal(err)
		}
	}
	copts := &source.ClusterOptions{Transform: []string{"upper"}}
	batched, err := loader.Cluster(c.Client(), "train", copts)
	if err != nil {
		t.Fatal(err)
	}
	single, _ := source.Cluster(c.Client(), "train", copts)
	var orders [][]string
	for _, bc := range []struct {
		src       insitu.Source
		readBatch int
	}{{batched, 0}, {batched, 7}, {batched, 1}, {single, 0}} {
		l := newLoader(t, bc.src, &loader.Options{Seed: 3, ReadBatch: bc.readBatch})
		var keys []string
		for s, err := range l.Samples(ctx, 1) {
			if err != nil {
				t.Fatal(err)
			}
			if string(s.Data) != strings.ToUpper(s.Name.Key) {
				t.Fatalf("%s: %q; want the transform's output", s.Name, s.Data)
			}
			keys = append(keys, s.Name.Key)
		}
		if !slices.Equal(sorted(keys), allKeys(n)) {
			t.Fatalf("%d samples", len(keys))
		}
		orders = append(orders, keys)
	}
	for i := range orders {
		if !slices.Equal(orders[i], orders[0]) {
			t.Fatalf("read %d gives another order", i)
		}
	}

	// A sample missing on its owner.
	l := newLoader(t, batched, &loader.Options{ReadBatch: 10}) // the listing is kept
	for range l.Samples(ctx, 0) {                              // list
		break
	}
	gone := insitu.Name{Bucket: "train", Key: "s-0042"}
	if err := c.Client().Delete(ctx, gone); err != nil {
		t.Fatal(err)
	}
	count := 0
	for s, err := range l.Samples(ctx, 0) {
		count++
		if (err != nil) != (s.Name == gone) || (err != nil && !errors.Is(err, insitu.NotFound)) {
			t.Errorf("%s: %v", s.Name, err)
		}
	}
	if count != n {
		t.Errorf("%d yields; want %d; stats %+v", count, n, l.Stats())
	}
}
