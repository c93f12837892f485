package node_test

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/cluster"
	"github.com/insitu-data/insitu/locality"
	"github.com/insitu-data/insitu/source"
)

// TestRebalanceMakesLeftCopiesVisible: objects written while their owner
// was out of the map are invisible once it is back (the nodes that hold
// them do not own them); a rebalance moves each to its owner, which had
// none, and removes it where it was, so that the cluster lists and serves
// every object once, with its bytes. A copy whose owner has the name
// already (written before it left, then again while it was out) is never
// overwritten: it is kept and reported as a conflict.
func TestRebalanceMakesLeftCopiesVisible(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3, nil)
	ctx := t.Context()
	v1 := c.Map()
	newClient := func(m *locality.Map) *locality.Client {
		cl, err := locality.NewClient(m, &locality.ClientOptions{Secret: c.Secret()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}
	// One object of n2's, written before it leaves.
	var both insitu.Name
	for i := 0; ; i++ {
		both = insitu.Name{Bucket: "in", Key: fmt.Sprintf("both/%d", i)}
		if v1.Owner(both).ID == "n2" {
			break
		}
	}
	if _, err := c.Put(ctx, both, strings.NewReader("before"), -1); err != nil {
		t.Fatal(err)
	}

	// n2 leaves; new objects are written without it, and both again.
	if err := c.StopNode(ctx, "n2"); err != nil {
		t.Fatal(err)
	}
	v2, err := v1.Without("n2")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"n1", "n3"} {
		if !c.Node(id).SetMap(v2) {
			t.Fatalf("%s refused %v", id, v2)
		}
	}
	away := newClient(v2)
	want := map[insitu.Name][]byte{}
	for i := range 60 {
		name := insitu.Name{Bucket: "in", Key: fmt.Sprintf("new/%03d/o", i)}
		want[name] = content(name.Key, 100+i)
		if _, err := away.PutOrigin(ctx, name, bytes.NewReader(want[name]), -1, originOf(name)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := away.Put(ctx, both, strings.NewReader("while n2 was out"), -1); err != nil {
		t.Fatal(err)
	}

	// n2 comes back.
	if err := c.RestartNode(ctx, "n2"); err != nil {
		t.Fatal(err)
	}
	n2, _ := v1.Node("n2")
	v3, err := v2.With(n2)
	if err != nil {
		t.Fatal(err)
	}
	for _, nd := range c.Nodes() {
		if !nd.SetMap(v3) {
			t.Fatalf("%s refused %v", nd.ID(), v3)
		}
	}
	cl := newClient(v3)
	moving := 0
	for name := range want {
		if v3.Owner(name).ID == "n2" {
			moving++
		}
	}
	if moving == 0 {
		t.Fatal("no new object belongs to n2: the scenario proves nothing")
	}
	listed := func() int {
		src, err := source.Cluster(cl, "in", nil)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for obj, err := range src.Objects(ctx) {
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(obj.Name.Key, "new/") {
				n++
			}
		}
		return n
	}
	if got := listed(); got != len(want)-moving {
		t.Fatalf("before the rebalance the cluster lists %d new objects, want %d (those on n2's names invisible)", got, len(want)-moving)
	}

	sum, reps, err := cluster.Rebalance(ctx, cl)
	if err != nil {
		t.Fatalf("Rebalance: %v\n%s", err, sum)
	}
	if sum.Scanned != int64(moving+1) || sum.Moved != int64(moving) || sum.Kept != 1 || sum.Failed != 0 ||
		len(sum.Conflicts) != 1 || sum.Conflicts[0] != both || len(reps) != 3 {
		t.Fatalf("rebalance: %s\nwant %d moved, %s kept", sum, moving, both)
	}
	if got := listed(); got != len(want) {
		t.Fatalf("after the rebalance the cluster lists %d new objects, want %d", got, len(want))
	}
	for name, b := range want {
		got, _, err := readAll(ctx, cl, name)
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("%s: %d bytes, %v; want its %d bytes", name, len(got), err, len(b))
		}
		if obj, err := cl.Head(ctx, name); err != nil || obj.Origin != originOf(name).String() {
			t.Errorf("%s: origin %q, %v; want the one it was written with (a moved copy keeps it)", name, obj.Origin, err)
		}
		for _, nd := range c.Nodes() {
			if _, err := os.Stat(nd.Path(name)); (err == nil) != (nd.ID() == v3.Owner(name).ID) {
				t.Errorf("%s on %s: %v; want it on its owner only", name, nd.ID(), err)
			}
			// A moved copy's directory, its own, went with it.
			if _, err := os.Stat(filepath.Dir(nd.Path(name))); (err == nil) != (nd.ID() == v3.Owner(name).ID) {
				t.Errorf("%s's directory on %s: %v; want it on its owner only", name, nd.ID(), err)
			}
		}
	}
	// The owner's copy of both is what the cluster serves; the other stays.
	if got, _, err := readAll(ctx, cl, both); err != nil || string(got) != "before" {
		t.Fatalf("%s serves %q, %v; want the owner's copy", both, got, err)
	}
	// Again: nothing moves, the conflict is reported again.
	sum, _, err = cluster.Rebalance(ctx, cl)
	if err != nil || sum.Scanned != 1 || sum.Moved != 0 || sum.Kept != 1 {
		t.Fatalf("a second rebalance: %s, %v", sum, err)
	}
	// A call that goes on after every path looks at nothing.
	holder := ""
	for _, nd := range c.Nodes() {
		if _, err := os.Stat(nd.Path(both)); err == nil && nd.ID() != v3.Owner(both).ID {
			holder = nd.ID()
		}
	}
	if rep, err := c.Node(holder).Rebalance(ctx, "~"); err != nil || rep.Scanned != 0 {
		t.Fatalf("a rebalance after the last path: %s, %v; want nothing scanned", rep, err)
	}
	if rep, err := c.Node(holder).Rebalance(ctx, ""); err != nil || rep.Scanned != 1 || rep.Kept != 1 {
		t.Fatalf("a rebalance from the start: %s, %v; want the conflict", rep, err)
	}
	// A create-only PUT of an existing object is Exists, and changes nothing.
	if _, err := cl.PutIfAbsent(ctx, both, strings.NewReader("again"), 5, nil); !errors.Is(err, insitu.Exists) {
		t.Fatalf("PutIfAbsent of an existing object: %v, want Exists", err)
	}
	if got, _, err := readAll(ctx, cl, both); err != nil || string(got) != "before" {
		t.Fatalf("%s holds %q after a refused PutIfAbsent, %v", both, got, err)
	}
}

// originOf is the origin the test records for name.
func originOf(name insitu.Name) insitu.Origin {
	return insitu.Origin{Input: insitu.Name{Bucket: "src", Key: name.Key}, Version: "7-1", Transform: "test/1", Args: insitu.ArgsDigest("")}
}

// TestPutPreconditions: If-None-Match: * is the one precondition a PUT
// takes; any other, and If-Match, is refused before anything is stored.
func TestPutPreconditions(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 1, nil)
	n1, _ := c.Map().Node("n1")
	name := insitu.Name{Bucket: "b", Key: "k"}
	for _, tc := range []struct {
		header, value string
		want          int
	}{
		{"If-Match", "*", http.StatusBadRequest},
		{"If-None-Match", `"etag"`, http.StatusBadRequest},
		{"If-None-Match", "*", http.StatusOK},
		{"If-None-Match", "*", http.StatusPreconditionFailed},
	} {
		req, _ := http.NewRequest(http.MethodPut, locality.ObjectURL(n1, name), strings.NewReader("body"))
		req.Header.Set(tc.header, tc.value)
		req.Header.Set("Authorization", "Bearer "+c.Secret().AdminToken(time.Now().Add(time.Minute)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("PUT with %s: %s: %s, want %d", tc.header, tc.value, resp.Status, tc.want)
		}
	}
	if got, _, err := readAll(t.Context(), c.Client(), name); err != nil || string(got) != "body" {
		t.Errorf("stored %q, %v", got, err)
	}
	// A name that is a directory of other keys is not an existing object.
	if _, err := c.Client().Put(t.Context(), insitu.Name{Bucket: "b", Key: "dir/leaf"}, strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client().PutIfAbsent(t.Context(), insitu.Name{Bucket: "b", Key: "dir"}, strings.NewReader("x"), 1, nil); !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("a create-only PUT onto a directory of keys: %v, want InvalidArgument", err)
	}
}
