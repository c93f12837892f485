package locality

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/insitu-data/insitu"
)

func testNodes(ids ...string) []Node {
	nodes := make([]Node, len(ids))
	for i, id := range ids {
		nodes[i] = Node{ID: id, URL: fmt.Sprintf("http://127.0.0.1:%d", 7001+i)}
	}
	return nodes
}

func mustMap(t testing.TB, version int64, nodes ...Node) *Map {
	t.Helper()
	m, err := NewMap(version, nodes...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// golden pins the placement of names onto nodes n1, n2, n3. Every process,
// on every platform and in every version of insitu, must agree with it:
// changing it moves stored objects away from their owners.
var golden = []struct {
	name  insitu.Name
	owner string
}{
	{insitu.Name{Bucket: "audio", Key: "a.flac"}, "n2"},
	{insitu.Name{Bucket: "audio", Key: "b.flac"}, "n1"},
	{insitu.Name{Bucket: "audio", Key: "c.flac"}, "n2"},
	{insitu.Name{Bucket: "audio", Key: "dir/track-01.flac"}, "n3"},
	{insitu.Name{Bucket: "audio", Key: "dir/track-02.flac"}, "n3"},
	{insitu.Name{Bucket: "audio", Key: "dir/track-03.flac"}, "n3"},
	{insitu.Name{Bucket: "wav", Key: "dir/track-01.wav"}, "n2"},
	{insitu.Name{Bucket: "wav", Key: "dir/track-02.wav"}, "n3"},
	{insitu.Name{Bucket: "b", Key: "shard-0000.tar"}, "n2"},
	{insitu.Name{Bucket: "b", Key: "shard-0001.tar"}, "n2"},
	{insitu.Name{Bucket: "b", Key: "shard-0002.tar"}, "n3"},
	{insitu.Name{Bucket: "b", Key: "shard-0999.tar"}, "n2"},
	{insitu.Name{Bucket: "", Key: "no-bucket"}, "n2"},
	{insitu.Name{Bucket: "images", Key: "cat.jpg"}, "n2"},
	{insitu.Name{Bucket: "images", Key: "dog.jpg"}, "n3"},
	{insitu.Name{Bucket: "images", Key: "2024/01/01/x.png"}, "n2"},
	{insitu.Name{Bucket: "logs", Key: "x"}, "n1"},
	{insitu.Name{Bucket: "logs", Key: "y"}, "n2"},
	{insitu.Name{Bucket: "logs", Key: "z"}, "n2"},
	{insitu.Name{Bucket: "data", Key: "héllo/wörld.txt"}, "n1"},
	{insitu.Name{Bucket: "data", Key: "deep/a/b/c/d/e/f.bin"}, "n3"},
	{insitu.Name{Bucket: "data", Key: "0"}, "n2"},
}

func TestOwnerGolden(t *testing.T) {
	// The node order given to NewMap must not matter.
	for _, m := range []*Map{
		mustMap(t, 1, testNodes("n1", "n2", "n3")...),
		mustMap(t, 9, testNodes("n3", "n1", "n2")...),
	} {
		for _, g := range golden {
			if got := m.Owner(g.name).ID; got != g.owner {
				t.Errorf("%v: Owner(%q) = %s, want %s", m, g.name, got, g.owner)
			}
			if !m.Owns(g.owner, g.name) {
				t.Errorf("%v: Owns(%s, %q) = false", m, g.owner, g.name)
			}
		}
	}
}

// TestHashPrimitives pins the two hash functions to their published test
// vectors, so a change of library cannot silently change placement.
func TestHashPrimitives(t *testing.T) {
	if got := xxhash.Sum64String(""); got != 0xef46db3751d8e999 {
		t.Errorf("xxhash64(\"\") = %#x", got)
	}
	// splitmix64 with seed 0: the first output is mix(0x9e3779b97f4a7c15).
	if got := mix(0x9e3779b97f4a7c15); got != 0xe220a8397b1dcdaf {
		t.Errorf("mix = %#x", got)
	}
	var byName Map
	if got, want := byName.nameHash(insitu.Name{Bucket: "b", Key: "k/x"}), xxhash.Sum64String("b/k/x"); got != want {
		t.Errorf("nameHash = %#x, want %#x", got, want)
	}
	byKey := Map{placement: ByKey}
	if got, want := byKey.nameHash(insitu.Name{Bucket: "b", Key: "k/x"}), xxhash.Sum64String("k/x"); got != want {
		t.Errorf("nameHash by key = %#x, want %#x", got, want)
	}
}

// TestPlacementByKey: a map that places by key gives a key one owner in
// every bucket, the owner the rule written the obvious way picks; a map
// by name does not (with 3 nodes, about 2 keys in 3 move between two
// buckets); the placement survives With, Without and JSON, and a
// placement this package does not know is refused.
func TestPlacementByKey(t *testing.T) {
	nodes := testNodes("n1", "n2", "n3")
	byName := mustMap(t, 1, nodes...)
	byKey, err := byName.WithPlacement(ByKey)
	if err != nil {
		t.Fatal(err)
	}
	if byKey.Version() != 2 || byKey.Placement() != ByKey || byName.Placement() != ByName {
		t.Fatalf("WithPlacement: %v (%q) from %v (%q)", byKey, byKey.Placement(), byName, byName.Placement())
	}
	if got, want := byKey.String(), "map v2 by key [n1 n2 n3]"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	differ := 0
	for i := range 3000 {
		key := fmt.Sprintf("dir/obj-%d.bin", i)
		in, out := insitu.Name{Bucket: "in", Key: key}, insitu.Name{Bucket: "out", Key: key}
		o := byKey.Owner(in)
		if byKey.Owner(out) != o || !byKey.Owns(o.ID, out) {
			t.Fatalf("%q: owner %s in one bucket, %s in another", key, o.ID, byKey.Owner(out).ID)
		}
		if byName.Owner(in) != byName.Owner(out) {
			differ++
		}
	}
	if differ < 1500 || differ > 2500 {
		t.Errorf("by name, %d of 3000 keys have another owner in another bucket; want about 2000", differ)
	}
	// The owner by key is the obvious rule's over the key alone.
	for i := range 500 {
		key := fmt.Sprintf("k%d", i)
		h := xxhash.Sum64String(key)
		best, bestW := "", uint64(0)
		for _, n := range nodes {
			if w := mix(xxhash.Sum64String(n.ID) ^ h); best == "" || w > bestW {
				best, bestW = n.ID, w
			}
		}
		if got := byKey.Owner(insitu.Name{Bucket: "b", Key: key}).ID; got != best {
			t.Fatalf("owner of %q by key = %s, want %s", key, got, best)
		}
	}
	if n := testing.AllocsPerRun(100, func() { byKey.Owner(insitu.Name{Bucket: "b", Key: "k"}) }); n != 0 {
		t.Errorf("Owner by key allocates %v times", n)
	}

	with, err := byKey.With(Node{ID: "n4", URL: "http://127.0.0.1:4"})
	if err != nil {
		t.Fatal(err)
	}
	without, err := byKey.Without("n1")
	if err != nil {
		t.Fatal(err)
	}
	if with.Placement() != ByKey || without.Placement() != ByKey {
		t.Errorf("With, Without: placement %q, %q; want both %q", with.Placement(), without.Placement(), ByKey)
	}
	b, err := json.Marshal(byKey)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), `{"version":2,"placement":"key","nodes":[`) {
		t.Errorf("JSON = %s", b)
	}
	back, err := ParseMap(b)
	if err != nil || back.Placement() != ByKey || back.String() != byKey.String() {
		t.Fatalf("ParseMap(%s) = %v, %v", b, back, err)
	}
	if b, _ := json.Marshal(byName); strings.Contains(string(b), "placement") {
		t.Errorf("a map by name has a placement field: %s", b)
	}
	if _, err := byName.WithPlacement("bucket"); !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("WithPlacement(bucket) = %v, want InvalidArgument", err)
	}
	if _, err := ParseMap([]byte(`{"version":1,"placement":"hash","nodes":[{"id":"n1","url":"http://x"}]}`)); !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("ParseMap of placement hash = %v, want InvalidArgument", err)
	}
}

// referenceOwner is the placement rule written the obvious way.
func referenceOwner(nodes []Node, name insitu.Name) string {
	h := xxhash.Sum64String(name.Bucket + "/" + name.Key)
	best, bestW := "", uint64(0)
	for _, n := range nodes {
		w := mix(xxhash.Sum64String(n.ID) ^ h)
		if best == "" || w > bestW || (w == bestW && n.ID < best) {
			best, bestW = n.ID, w
		}
	}
	return best
}

func TestOwnerMatchesReference(t *testing.T) {
	nodes := testNodes("n5", "alpha", "n1", "zeta", "n10")
	m := mustMap(t, 1, nodes...)
	for i := range 10_000 {
		name := insitu.Name{Bucket: "ref", Key: fmt.Sprintf("k/%d", i)}
		if got, want := m.Owner(name).ID, referenceOwner(nodes, name); got != want {
			t.Fatalf("Owner(%q) = %s, reference says %s", name, got, want)
		}
	}
}

func TestOwnerTieGoesToSmallerID(t *testing.T) {
	// Two nodes with the same hash cannot be made, so check the rule on the
	// index function with forged hashes.
	m := &Map{nodes: testNodes("a", "b"), hashes: []uint64{42, 42}}
	if got := m.Owner(insitu.Name{Key: "x"}).ID; got != "a" {
		t.Fatalf("tie went to %s, want a", got)
	}
}

const spreadNames = 100_000

func spreadName(i int) insitu.Name {
	return insitu.Name{Bucket: "spread", Key: fmt.Sprintf("dir-%03d/object-%06d.bin", i%997, i)}
}

func TestOwnerSpread(t *testing.T) {
	m := mustMap(t, 1, testNodes("n1", "n2", "n3")...)
	counts := map[string]int{}
	for i := range spreadNames {
		counts[m.Owner(spreadName(i)).ID]++
	}
	for _, id := range []string{"n1", "n2", "n3"} {
		share := float64(counts[id]) / spreadNames
		t.Logf("%s owns %.2f%%", id, 100*share)
		if math.Abs(share-1.0/3) > 0.015 {
			t.Errorf("%s owns %.2f%% of the names, want 33.3%% ± 1.5%%", id, 100*share)
		}
	}
}

func TestAddNodeMovesOnlyToNewNode(t *testing.T) {
	m3 := mustMap(t, 1, testNodes("n1", "n2", "n3")...)
	m4, err := m3.With(Node{ID: "n4", URL: "http://127.0.0.1:7004"})
	if err != nil {
		t.Fatal(err)
	}
	if m4.Version() != 2 || m4.Len() != 4 || m3.Len() != 3 {
		t.Fatalf("With: got %v from %v", m4, m3)
	}
	moved := 0
	for i := range spreadNames {
		name := spreadName(i)
		before, after := m3.Owner(name).ID, m4.Owner(name).ID
		if before == after {
			continue
		}
		moved++
		if after != "n4" {
			t.Fatalf("%q moved from %s to %s, not to the new node", name, before, after)
		}
	}
	share := float64(moved) / spreadNames
	t.Logf("adding n4 moved %.2f%%", 100*share)
	if math.Abs(share-0.25) > 0.02 {
		t.Errorf("adding a 4th node moved %.2f%% of the names, want 25%% ± 2%%", 100*share)
	}
}

func TestRemoveNodeMovesOnlyItsNames(t *testing.T) {
	m4 := mustMap(t, 7, testNodes("n1", "n2", "n3", "n4")...)
	m3, err := m4.Without("n2")
	if err != nil {
		t.Fatal(err)
	}
	if m3.Version() != 8 {
		t.Fatalf("Without: version %d, want 8", m3.Version())
	}
	if _, ok := m3.Node("n2"); ok {
		t.Fatal("n2 still in the map")
	}
	for i := range spreadNames {
		name := spreadName(i)
		before, after := m4.Owner(name).ID, m3.Owner(name).ID
		if before != "n2" && before != after {
			t.Fatalf("%q moved from %s to %s though %s stayed", name, before, after, before)
		}
		if after == "n2" {
			t.Fatalf("%q still owned by the removed node", name)
		}
	}
}

func TestNewMapInvalid(t *testing.T) {
	ok := Node{ID: "n1", URL: "http://127.0.0.1:1"}
	cases := map[string]struct {
		version int64
		nodes   []Node
	}{
		"no nodes":           {1, nil},
		"negative version":   {-1, []Node{ok}},
		"empty ID":           {1, []Node{{URL: "http://127.0.0.1:1"}}},
		"duplicate ID":       {1, []Node{ok, {ID: "n1", URL: "http://127.0.0.1:2"}}},
		"empty URL":          {1, []Node{{ID: "n1"}}},
		"relative URL":       {1, []Node{{ID: "n1", URL: "127.0.0.1:1"}}},
		"bad scheme":         {1, []Node{{ID: "n1", URL: "ftp://127.0.0.1:1"}}},
		"unparsable URL":     {1, []Node{{ID: "n1", URL: "http://[::1"}}},
		"bad transform URL":  {1, []Node{{ID: "n1", URL: "http://127.0.0.1:1", TransformURL: "nope"}}},
		"no host in the URL": {1, []Node{{ID: "n1", URL: "http:///x"}}},
	}
	for what, c := range cases {
		if m, err := NewMap(c.version, c.nodes...); !errors.Is(err, insitu.InvalidArgument) {
			t.Errorf("%s: NewMap = %v, %v; want InvalidArgument", what, m, err)
		}
	}
	m := mustMap(t, 1, ok)
	if _, err := m.Without("n1"); !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("removing the last node: %v", err)
	}
	if _, err := m.Without("nope"); !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("removing a missing node: %v", err)
	}
}

func TestMapAccessorsAndImmutability(t *testing.T) {
	in := []Node{
		{ID: "b", URL: "http://127.0.0.1:2"},
		{ID: "a", URL: "http://127.0.0.1:1", TransformURL: "http://127.0.0.1:11"},
	}
	m := mustMap(t, 3, in...)
	in[0].ID = "changed" // the map keeps its own copy
	nodes := m.Nodes()
	if len(nodes) != 2 || nodes[0].ID != "a" || nodes[1].ID != "b" {
		t.Fatalf("Nodes = %v", nodes)
	}
	nodes[0].URL = "http://changed" // and hands out copies
	if n, ok := m.Node("a"); !ok || n.URL != "http://127.0.0.1:1" || n.TransformURL != "http://127.0.0.1:11" {
		t.Fatalf("Node(a) = %v, %v", n, ok)
	}
	if _, ok := m.Node("changed"); ok {
		t.Fatal("Node(changed) found")
	}
	// With replaces a node of the same ID.
	m2, err := m.With(Node{ID: "a", URL: "http://127.0.0.1:9"})
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := m2.Node("a"); m2.Len() != 2 || n.URL != "http://127.0.0.1:9" || m2.Version() != 4 {
		t.Fatalf("With(replace) = %v %v", m2, n)
	}
	if !m2.Newer(m) || m.Newer(m2) || !m.Newer(nil) {
		t.Fatal("Newer is wrong")
	}
	if s := m.String(); s != "map v3 [a b]" {
		t.Fatalf("String = %q", s)
	}
	var zero Map
	if zero.Owner(insitu.Name{Key: "x"}) != (Node{}) || zero.Owns("", insitu.Name{Key: "x"}) {
		t.Fatal("the zero Map has an owner")
	}
}

func TestMapJSON(t *testing.T) {
	m := mustMap(t, 5, Node{ID: "n2", URL: "http://127.0.0.1:2"}, Node{ID: "n1", URL: "http://127.0.0.1:1", TransformURL: "http://127.0.0.1:11"})
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"version":5,"nodes":[{"id":"n1","url":"http://127.0.0.1:1","transform_url":"http://127.0.0.1:11"},{"id":"n2","url":"http://127.0.0.1:2"}]}`
	if string(b) != want {
		t.Fatalf("JSON = %s\nwant   %s", b, want)
	}
	var back Map
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.String() != m.String() {
		t.Fatalf("round trip: %v, want %v", &back, m)
	}
	for _, g := range golden[:5] {
		if back.Owner(g.name) != m.Owner(g.name) {
			t.Fatal("round trip changed placement")
		}
	}
	// A struct holding a *Map decodes too.
	var holder struct{ Map *Map }
	if err := json.Unmarshal([]byte(`{"Map":`+string(b)+`}`), &holder); err != nil || holder.Map.Version() != 5 {
		t.Fatalf("holder: %v, %v", holder.Map, err)
	}
	// A field the decoder does not know may change placement in a later
	// form of the map: refused, in the map and in a node, as is anything
	// after the map.
	one := `{"version":1,"nodes":[{"id":"n1","url":"http://x"}]}`
	if _, err := ParseMap([]byte(one + "\n")); err != nil {
		t.Fatalf("ParseMap(%s): %v", one, err)
	}
	for _, bad := range []string{`{"version":1,"nodes":[]}`, `{"version":1,"nodes":[{"id":"","url":"http://x"}]}`, `[1,2]`, `{`,
		`{"version":1,"nodes":[{"id":"n1","url":"http://x"}],"zone":"a"}`,
		`{"version":1,"nodes":[{"id":"n1","url":"http://x","zone":"a"}]}`,
		one + ` {}`, one + `}`, one + `x`} {
		if _, err := ParseMap([]byte(bad)); !errors.Is(err, insitu.InvalidArgument) {
			t.Errorf("ParseMap(%s) = %v, want InvalidArgument", bad, err)
		}
	}
}

func TestOwnerDoesNotAllocate(t *testing.T) {
	m := mustMap(t, 1, testNodes("n1", "n2", "n3")...)
	name := insitu.Name{Bucket: "audio", Key: "dir/track-01.flac"}
	if n := testing.AllocsPerRun(100, func() { m.Owner(name) }); n != 0 {
		t.Fatalf("Owner allocates %v times", n)
	}
}

func BenchmarkOwner(b *testing.B) {
	for _, n := range []int{3, 16, 128} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			ids := make([]string, n)
			for i := range ids {
				ids[i] = fmt.Sprintf("node-%03d", i)
			}
			m := mustMap(b, 1, testNodes(ids...)...)
			name := insitu.Name{Bucket: "audio", Key: "collection/2024/track-000123.flac"}
			b.ReportAllocs()
			for b.Loop() {
				m.Owner(name)
			}
		})
	}
}

// TestMapVersionBounds: versions stay within 0..MaxMapVersion, so the next
// version never overflows, and a map replaces another only by a bounded
// step: a map of version MaxInt64 (or MaxMapVersion) pushed to take a
// cluster over for good is refused.
func TestMapVersionBounds(t *testing.T) {
	nodes := []Node{{ID: "n1", URL: "http://127.0.0.1:1"}}
	for _, v := range []int64{-1, MaxMapVersion + 1, math.MaxInt64} {
		if _, err := NewMap(v, nodes...); !errors.Is(err, insitu.InvalidArgument) {
			t.Errorf("NewMap(%d) = %v, want InvalidArgument", v, err)
		}
		if _, err := ParseMap(fmt.Appendf(nil, `{"version":%d,"nodes":[{"id":"n1","url":"http://127.0.0.1:1"}]}`, v)); err == nil {
			t.Errorf("ParseMap of version %d accepted", v)
		}
	}
	top, err := NewMap(MaxMapVersion, nodes...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := top.With(Node{ID: "n2", URL: "http://127.0.0.1:2"}); !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("With past MaxMapVersion = %v, want InvalidArgument", err)
	}
	v1, _ := NewMap(1, nodes...)
	v2, _ := NewMap(2, nodes...)
	far, _ := NewMap(1+MaxMapStep+1, nodes...)
	edge, _ := NewMap(1+MaxMapStep, nodes...)
	for _, tc := range []struct {
		m, prev *Map
		ok      bool
	}{
		{v2, v1, true}, {v1, nil, true}, {edge, v1, true},
		{v1, v1, false}, {v1, v2, false}, {far, v1, false}, {top, v1, false},
	} {
		if err := tc.m.Succeeds(tc.prev); (err == nil) != tc.ok {
			t.Errorf("%v.Succeeds(%v) = %v, want ok %v", tc.m, tc.prev, err, tc.ok)
		}
	}
	c, err := NewClient(v1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.SetMap(top) || c.SetMap(far) || c.Map() != v1 {
		t.Errorf("the client took a map that jumps: %v", c.Map())
	}
	if !c.SetMap(v2) || c.Map() != v2 {
		t.Errorf("the client did not take the next map: %v", c.Map())
	}
}
