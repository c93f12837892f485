package node_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/atomicfile"
	"github.com/insitu-data/insitu/locality"
)

// writeKeys creates the objects of bucket directly in a store directory,
// each holding its key, and returns the keys sorted bytewise.
func writeKeys(t *testing.T, store, bucket string, keys []string) []string {
	t.Helper()
	for _, k := range keys {
		p := filepath.Join(store, bucket, filepath.FromSlash(k))
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

// listingKeys lists every page and checks the pages' shape.
func listingKeys(t *testing.T, c *locality.Client, n locality.Node, bucket string, opts *locality.ListOptions) []string {
	t.Helper()
	var keys []string
	for obj, err := range c.ListAll(context.Background(), n, bucket, opts) {
		if err != nil {
			t.Fatalf("listing: %v", err)
		}
		if obj.Name.Bucket != bucket || obj.Owner != n.ID || obj.Size != int64(len(obj.Name.Key)) || obj.Path != "" {
			t.Fatalf("listed %+v", obj)
		}
		keys = append(keys, obj.Name.Key)
	}
	return keys
}

// mixedKeys are up to n keys (duplicates removed) whose bytewise order
// differs from a naive directory walk ("a-b" < "a.b" < "a/b" < "a0").
func mixedKeys(n int) []string {
	var keys []string
	for i := range n {
		switch i % 8 {
		case 0:
			keys = append(keys, fmt.Sprintf("k%04d", i))
		case 1:
			keys = append(keys, fmt.Sprintf("a/%04d", i))
		case 2:
			keys = append(keys, fmt.Sprintf("a-b/%04d", i))
		case 3:
			keys = append(keys, fmt.Sprintf("a.b/c/%04d", i))
		case 4:
			keys = append(keys, fmt.Sprintf("a/b/%d/x", i%13))
		case 5:
			keys = append(keys, fmt.Sprintf("dir%d/sub/%04d.bin", i%5, i))
		case 6:
			keys = append(keys, fmt.Sprintf("é/ü%04d", i))
		default:
			keys = append(keys, fmt.Sprintf("a0/%04d", i))
		}
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

func TestListPagination(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 1, nil)
	n1, _ := c.Map().Node("n1")
	store := c.Nodes()[0].Dir()
	// A large directory tree, or, under -short, a smaller one that still
	// has more keys than a directory chunk and most pages.
	n, limits := 2500, []int{0, 19, 100, 999, locality.MaxListLimit, locality.MaxListLimit + 5}
	if testing.Short() {
		n, limits = 600, []int{0, 19, 999}
	}
	want := writeKeys(t, store, "big", mixedKeys(n))
	// Things that are not objects: temporary files, links, empty directories.
	os.WriteFile(filepath.Join(store, "big", "a", atomicfile.TempPrefix+"x-123"), []byte("partial"), 0o644)
	os.Symlink(filepath.Join(store, "big", "k0000"), filepath.Join(store, "big", "link"))
	os.MkdirAll(filepath.Join(store, "big", "empty", "deeper"), 0o755)

	client := c.Client()
	for _, limit := range limits {
		got := listingKeys(t, client, n1, "big", &locality.ListOptions{Limit: limit})
		if !slices.Equal(got, want) {
			t.Fatalf("limit %d: listed %d keys, want %d in bytewise order\nfirst got: %q\nfirst want: %q", limit, len(got), len(want), got[:min(10, len(got))], want[:10])
		}
	}
	// One object per page, in a part of the tree.
	var wantA []string
	for _, k := range want {
		if strings.HasPrefix(k, "a/b/") {
			wantA = append(wantA, k)
		}
	}
	if got := listingKeys(t, client, n1, "big", &locality.ListOptions{Prefix: "a/b/", Limit: 1}); !slices.Equal(got, wantA) {
		t.Fatalf("limit 1 under a/b/: %q, want %q", got, wantA)
	}
	// The pages themselves.
	page, err := client.List(context.Background(), n1, "big", &locality.ListOptions{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Objects) != 100 || page.Next != want[99] || page.Node != "n1" || page.MapVersion != 1 {
		t.Errorf("first page: %d objects, next %q, node %q, version %d", len(page.Objects), page.Next, page.Node, page.MapVersion)
	}
	page, err = client.List(context.Background(), n1, "big", &locality.ListOptions{After: want[len(want)-2]})
	if err != nil || len(page.Objects) != 1 || page.Next != "" || page.Objects[0].Name.Key != want[len(want)-1] {
		t.Errorf("last page: %+v, %v", page, err)
	}
	// Prefixes, and After in the middle of a directory.
	for _, tc := range []struct{ prefix, after string }{
		{"a/", ""}, {"a", ""}, {"a/b/", ""}, {"a/b/1", ""}, {"dir3/sub/", ""}, {"é/", ""}, {"nope/", ""}, {"k00", ""},
		{"", "a/b/5"}, {"", "a/b/5/x"}, {"", "a"}, {"a", "a.b/c/0003"}, {"dir", "dir2/sub/"}, {"", want[len(want)-1]},
	} {
		var w []string
		for _, k := range want {
			if strings.HasPrefix(k, tc.prefix) && k > tc.after {
				w = append(w, k)
			}
		}
		got := listingKeys(t, client, n1, "big", &locality.ListOptions{Prefix: tc.prefix, After: tc.after, Limit: 37})
		if !slices.Equal(got, w) {
			t.Errorf("prefix %q after %q: %d keys, want %d\n got %.5q\nwant %.5q", tc.prefix, tc.after, len(got), len(w), got, w)
		}
	}
}

// TestListFlatDirectory lists one directory much larger than a page, so
// that each page reads the directory again, keeping only the page's share.
func TestListFlatDirectory(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 1, nil)
	n1, _ := c.Map().Node("n1")
	var keys []string
	n, limits := 1500, []int{50, 250, 1499}
	if testing.Short() {
		n, limits = 600, []int{50, 599} // still over a directory chunk
	}
	for i := range n {
		keys = append(keys, fmt.Sprintf("flat/%x", i*7919))
	}
	want := writeKeys(t, c.Nodes()[0].Dir(), "flat", keys)
	for _, limit := range limits {
		if got := listingKeys(t, c.Client(), n1, "flat", &locality.ListOptions{Limit: limit}); !slices.Equal(got, want) {
			t.Fatalf("limit %d: %d keys, want %d", limit, len(got), len(want))
		}
	}
}

func TestListOwnersAndErrors(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3, nil)
	ctx := context.Background()
	// An object on n1 that n2 owns is listed with its owner, n2.
	name := nameOwnedBy(t, "b", c.Map(), "n2", nil, "")
	writeKeys(t, c.Node("n1").Dir(), "b", []string{name.Key})
	page, err := c.Node("n1").List(ctx, "b", nil)
	if err != nil || len(page.Objects) != 1 || page.Objects[0].Owner != "n2" {
		t.Fatalf("List = %+v, %v", page, err)
	}
	n1, _ := c.Map().Node("n1")
	if _, err := c.Client().List(ctx, n1, "never-used", nil); !errors.Is(err, insitu.NotFound) {
		t.Errorf("List of a bucket the node never stored in: %v, want NotFound", err)
	}
	for _, opts := range []*locality.ListOptions{{Limit: -1}, {Prefix: "../"}, {Prefix: "a/../b/"}, {Prefix: "x\x00"}} {
		if _, err := c.Node("n1").List(ctx, "b", opts); !errors.Is(err, insitu.InvalidArgument) {
			t.Errorf("List(%+v): %v, want InvalidArgument", opts, err)
		}
	}
	if _, err := c.Client().List(ctx, n1, "bad/bucket", nil); !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("List of a bad bucket: %v", err)
	}
}
