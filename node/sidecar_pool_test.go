package node_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/cluster"
	"github.com/insitu-data/insitu/node"
	"github.com/insitu-data/insitu/node/nodetest"
	"github.com/insitu-data/insitu/transport"
)

// TestSidecarClientsPooled: the jobs of a node share one client per
// transform server and transport, which closes when the node shuts down.
func TestSidecarClientsPooled(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 2, &nodetest.Options{Sidecar: insitu.Identity})
	for i := range 10 {
		if _, err := c.Put(t.Context(), insitu.Name{Bucket: "in", Key: string(rune('a' + i))}, strings.NewReader("x"), 1); err != nil {
			t.Fatal(err)
		}
	}
	run := func(id string, mode transport.Mode) {
		t.Helper()
		spec := cluster.JobSpec{ID: id, Bucket: "in", DstBucket: "out-" + id, Server: &cluster.ServerSpec{Mode: mode}}
		rep, err := cluster.Run(t.Context(), c.Client(), spec, &cluster.Options{})
		if err != nil || rep.Transformed != 10 {
			t.Fatalf("job %s: %v\n%s", id, err, rep)
		}
	}
	n1 := c.Node("n1")
	run("one", transport.WS)
	first := node.SidecarClients(n1)
	run("two", transport.WS)
	second := node.SidecarClients(n1)
	if len(first) != 1 || len(second) != 1 {
		t.Fatalf("clients after one job %v, after two %v; want one", first, second)
	}
	for k, cl := range first {
		if cl == nil || second[k] != cl || !strings.HasPrefix(k, "ws ") {
			t.Fatalf("the second job did not reuse the client of the first: %v, %v", first, second)
		}
	}
	run("three", transport.HPull)
	if got := node.SidecarClients(n1); len(got) != 2 {
		t.Fatalf("clients after an hpull job: %v, want two", got)
	}

	// Shutting the node down closes them.
	if err := c.StopNode(t.Context(), "n1"); err != nil {
		t.Fatal(err)
	}
	if got := node.SidecarClients(n1); len(got) != 0 {
		t.Fatalf("clients after Shutdown: %v", got)
	}
	for _, cl := range first {
		err := cl.Transform(context.Background(), &insitu.Input{Object: insitu.Object{Name: insitu.Name{Bucket: "in", Key: "a"}}}, nil)
		if !errors.Is(err, insitu.Canceled) {
			t.Fatalf("a pooled client after Shutdown: %v, want it closed", err)
		}
	}
	if err := c.RestartNode(t.Context(), "n1"); err != nil {
		t.Fatal(err)
	}
	run("four", transport.WS) // the new node dials again
	if got := node.SidecarClients(c.Node("n1")); len(got) != 1 {
		t.Fatalf("clients of the restarted node: %v, want one", got)
	}
}
