package sink_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/locality"
	"github.com/insitu-data/insitu/node/nodetest"
	"github.com/insitu-data/insitu/sink"
	"github.com/insitu-data/insitu/sink/sinktest"
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

func readCluster(t *testing.T, s insitu.Sink, name insitu.Name) ([]byte, error) {
	rc, _, err := s.(*sink.ClusterSink).Client().Get(context.Background(), name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func TestClusterConformance(t *testing.T) {
	sinktest.Run(t, sinktest.Harness{
		Bucket:   "conf",
		MakeSink: func(t *testing.T) insitu.Sink { return newCluster(t, startCluster(t, 3).Client()) },
		Read:     readCluster,
	})
}

// TestClusterPutsOnOwnerOnly checks direct put: every output is on its
// owner's disk and on no other node's.
func TestClusterPutsOnOwnerOnly(t *testing.T) {
	c := startCluster(t, 3)
	s := newCluster(t, c.Client())
	ctx := context.Background()
	perNode := map[string]int{}
	for i := range 60 {
		name := insitu.Name{Bucket: "out", Key: fmt.Sprintf("dir%d/obj-%02d.wav", i%3, i)}
		data := bytes.Repeat([]byte{byte(i)}, 1000+i)
		res, err := s.Put(ctx, name, bytes.NewReader(data), -1)
		if err != nil {
			t.Fatal(err)
		}
		owner := c.Map().Owner(name).ID
		if res.Owner != owner || res.Checksum != fmt.Sprintf("%016x", xxhash.Sum64(data)) {
			t.Errorf("Put(%s) = %+v, want owner %s", name, res, owner)
		}
		perNode[owner]++
		for _, nd := range c.Nodes() {
			b, err := os.ReadFile(nd.Path(name))
			if nd.ID() == owner && !bytes.Equal(b, data) || nd.ID() != owner && err == nil {
				t.Errorf("%s on node %s (owner %s): %d bytes, %v", name, nd.ID(), owner, len(b), err)
			}
		}
		obj, err := s.Stat(ctx, name)
		if err != nil || obj.Size != int64(len(data)) || obj.Owner != owner {
			t.Errorf("Stat(%s) = %+v, %v", name, obj, err)
		}
	}
	if len(perNode) != 3 {
		t.Errorf("outputs per node: %v", perNode)
	}
}

// TestClusterRecoversStaleMap puts with a client whose map predates a
// fourth node: the old owner refuses, the sink refreshes its map and puts
// to the new owner.
func TestClusterRecoversStaleMap(t *testing.T) {
	c := startCluster(t, 4)
	old, err := locality.NewMap(0, c.Map().Nodes()[:3]...)
	if err != nil {
		t.Fatal(err)
	}
	client, err := locality.NewClient(old, &locality.ClientOptions{Secret: c.Secret()})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	s := newCluster(t, client)
	moved := 0
	for i := range 40 {
		name := insitu.Name{Bucket: "out", Key: fmt.Sprintf("k%d", i)}
		data := []byte(strings.Repeat("x", i+1))
		res, err := s.Put(context.Background(), name, io.MultiReader(bytes.NewReader(data)), int64(len(data)))
		if err != nil {
			t.Fatalf("Put(%s) with a stale map: %v", name, err)
		}
		if want := c.Map().Owner(name).ID; res.Owner != want {
			t.Errorf("Put(%s) stored on %s, want %s", name, res.Owner, want)
		}
		if old.Owner(name).ID != res.Owner {
			moved++
		}
	}
	if moved == 0 {
		t.Fatal("no name moved to the new node; the test proves nothing")
	}
	if client.Map().Version() != c.Map().Version() {
		t.Errorf("the sink's map is %v, want %v", client.Map(), c.Map())
	}
}

func TestClusterDestination(t *testing.T) {
	c := startCluster(t, 3)
	s := newCluster(t, c.Client())
	name := insitu.Name{Bucket: "out", Key: "direct/put.bin"}
	dst, err := s.Destination(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	owner, _ := c.Map().Node(c.Map().Owner(name).ID)
	if dst.Name != name || !strings.HasPrefix(dst.URL, owner.URL+"/") || !strings.HasPrefix(dst.Token, "insitu1.w.") {
		t.Fatalf("Destination = %+v, want a URL on %s", dst, owner.URL)
	}
	// Without the token the owner refuses; with it, it stores.
	for _, token := range []string{"", dst.Token} {
		req, _ := http.NewRequest(http.MethodPut, dst.URL, strings.NewReader("direct"))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := map[bool]int{false: 401, true: 200}[token != ""]; resp.StatusCode != want {
			t.Errorf("PUT with token %v: %s, want %d", token != "", resp.Status, want)
		}
	}
	b, err := readCluster(t, s, name)
	if err != nil || string(b) != "direct" {
		t.Errorf("after the direct PUT: %q, %v", b, err)
	}
	if _, err := s.Destination(context.Background(), insitu.Name{Bucket: "out", Key: "../x"}); err == nil {
		t.Error("Destination of an invalid name succeeded")
	}
}
