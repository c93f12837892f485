package seaweedfs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/locality"
	"github.com/insitu-data/insitu/pipeline"
	"github.com/insitu-data/insitu/seaweedfs"
	"github.com/insitu-data/insitu/seaweedfs/seaweedfstest"
	"github.com/insitu-data/insitu/sink/sinktest"
)

// A volume server that stops fails only the objects it holds, with
// Unavailable (at once when the master knows it is gone, through the
// filer when the client still remembers it), and Puts pinned to it; the
// listing goes on, those objects with no owner; the topology drops it and
// takes it back when it restarts, each time as a newer map; after the
// restart everything reads again.
func TestVolumeServerStopped(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a SeaweedFS cluster")
	}
	c := seaweedfstest.Start(t, nil)
	ctx := t.Context()
	opts := &seaweedfs.Options{Root: "/data"}
	client := newClient(t, c, opts)
	// remembering still thinks volumes are where they were.
	remembering := newClient(t, c, &seaweedfs.Options{Root: "/data", LocationTTL: time.Hour})
	sink, err := seaweedfs.NewSink(client, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{}
	owner := map[string]string{}
	for i, vs := range c.VolumeServers {
		for j, n := range []int{1000, 9 << 20} {
			key := fmt.Sprintf("in/%d-%d.bin", i, j)
			want[key], owner[key] = sinktest.Content(key, n), vs
			if _, err := sink.PutOn(ctx, vs, insitu.Name{Bucket: "bkt", Key: key}, bytes.NewReader(want[key]), int64(n)); err != nil {
				t.Fatal(err)
			}
		}
	}
	src, _ := seaweedfs.NewSource(client, "bkt", nil)
	remSrc, _ := seaweedfs.NewSource(remembering, "bkt", nil)
	for key := range want {
		if b, err := readAll(t, remSrc, insitu.Object{Name: insitu.Name{Key: key}}); err != nil || !bytes.Equal(b, want[key]) {
			t.Fatalf("Open(%s) before the stop: %d bytes, %v", key, len(b), err)
		}
	}
	topo, err := seaweedfs.NewTopology(client, &seaweedfs.TopologyOptions{
		TransformURL: func(addr string) string { return "http://transform-of-" + strings.ReplaceAll(addr, ":", "-") },
	})
	if err != nil {
		t.Fatal(err)
	}
	m1 := checkMap(t, topo, 1, c.VolumeServers)
	if again, err := topo.Map(ctx); err != nil || again != m1 {
		t.Errorf("Map again with nothing changed: %v, %v; want the same map", again, err)
	}

	// A read under way when its server stops fails with Unavailable.
	reading, err := src.Open(ctx, insitu.Object{Name: insitu.Name{Key: "in/1-1.bin"}})
	if err != nil {
		t.Fatal(err)
	}
	defer reading.Close()
	if _, err := io.ReadFull(reading, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}

	stopped := c.VolumeServers[1]
	if err := c.StopVolume(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if n, err := io.Copy(io.Discard, reading); !errors.Is(err, insitu.Unavailable) {
		t.Errorf("reading on after the server stopped: %d bytes more, %v; want Unavailable", n, err)
	}
	checkMap(t, topo, 2, []string{c.VolumeServers[0], c.VolumeServers[2]})

	// The listing goes on; objects on the stopped server have no owner.
	n := 0
	for obj, err := range src.Objects(ctx) {
		if err != nil {
			t.Fatalf("listing with a volume server stopped: %v", err)
		}
		n++
		wantOwner := owner[obj.Name.Key]
		if wantOwner == stopped {
			wantOwner = ""
		}
		if obj.Owner != wantOwner || obj.Size != int64(len(want[obj.Name.Key])) {
			t.Errorf("listed %+v; want Owner %q", obj, wantOwner)
		}
	}
	if n != len(want) {
		t.Errorf("listed %d objects, want %d", n, len(want))
	}
	for key := range want {
		for _, s := range []*seaweedfs.Source{src, remSrc} {
			t0 := time.Now()
			b, err := readAll(t, s, insitu.Object{Name: insitu.Name{Key: key}})
			switch {
			case owner[key] != stopped && (err != nil || !bytes.Equal(b, want[key])):
				t.Errorf("Open(%s) on a running server: %d bytes, %v", key, len(b), err)
			case owner[key] == stopped && !errors.Is(err, insitu.Unavailable):
				t.Errorf("Open(%s) on the stopped server: %d bytes, %v; want Unavailable", key, len(b), err)
			case owner[key] == stopped && time.Since(t0) > time.Second:
				t.Errorf("Open(%s) on the stopped server took %v; want at once", key, time.Since(t0))
			}
			if err != nil {
				t.Logf("Open(%s): %v (%v)", key, err, time.Since(t0).Round(time.Millisecond))
			}
		}
	}
	// A Put pinned to it fails, and stores nothing.
	_, err = sink.PutOn(ctx, stopped, insitu.Name{Bucket: "bkt", Key: "out/x"}, strings.NewReader("x"), 1)
	if !errors.Is(err, insitu.Unavailable) || !strings.Contains(err.Error(), stopped) {
		t.Errorf("PutOn(the stopped server): %v; want Unavailable naming it", err)
	}
	if _, err := sink.Stat(ctx, insitu.Name{Bucket: "bkt", Key: "out/x"}); !errors.Is(err, insitu.NotFound) {
		t.Errorf("Stat after the failed Put: %v; want NotFound", err)
	}

	// A pipeline over the bucket fails exactly the stopped server's
	// objects, each with Unavailable.
	rep, err := pipeline.Run(ctx, src, insitu.Identity, sink, &pipeline.Options{
		ContinueOnError: true, Retries: -1,
		Rename: func(n insitu.Name) (insitu.Name, error) {
			return insitu.Name{Bucket: "outputs", Key: strings.TrimPrefix(n.Key, "in/")}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Transformed != 4 || rep.Failed != 2 {
		t.Errorf("pipeline: %d transformed, %d failed; want 4 and 2: %v", rep.Transformed, rep.Failed, rep.Failures)
	}
	for _, f := range rep.Failures {
		if f.Code != insitu.Unavailable || owner[f.Name.Key] != stopped {
			t.Errorf("pipeline failure %v; want Unavailable, of the stopped server's objects", f)
		}
	}

	if err := c.RestartVolume(ctx, 1); err != nil {
		t.Fatal(err)
	}
	checkMap(t, topo, 3, c.VolumeServers)
	for key := range want {
		for _, s := range []*seaweedfs.Source{src, remSrc} {
			if b, err := readAll(t, s, insitu.Object{Name: insitu.Name{Key: key}}); err != nil || !bytes.Equal(b, want[key]) {
				t.Errorf("Open(%s) after the restart: %d bytes, %v", key, len(b), err)
			}
		}
	}
	// A rerun with SkipExisting completes the rest, no more.
	outSrc, _ := seaweedfs.NewSource(client, "outputs", nil)
	rep, err = pipeline.Run(ctx, src, insitu.Identity, sink, &pipeline.Options{
		ContinueOnError: true, SkipExisting: true,
		Rename: func(n insitu.Name) (insitu.Name, error) {
			return insitu.Name{Bucket: "outputs", Key: strings.TrimPrefix(n.Key, "in/")}, nil
		},
	})
	if err != nil || rep.Transformed != 2 || rep.Skipped != 4 || rep.Failed != 0 {
		t.Errorf("rerun: %+v, %v; want 2 transformed, 4 skipped", rep, err)
	}
	for key := range want {
		out := strings.TrimPrefix(key, "in/")
		if b, err := readAll(t, outSrc, insitu.Object{Name: insitu.Name{Key: out}}); err != nil || !bytes.Equal(b, want[key]) {
			t.Errorf("output %s: %d bytes, %v", out, len(b), err)
		}
	}
}

// checkMap reads the topology and checks its version and nodes.
func checkMap(t *testing.T, topo *seaweedfs.Topology, version int64, servers []string) *locality.Map {
	t.Helper()
	m, err := topo.Map(context.Background())
	if err != nil {
		t.Fatalf("Map: %v", err)
	}
	var ids []string
	for _, n := range m.Nodes() {
		ids = append(ids, n.ID)
		if n.URL != "http://"+n.ID || n.TransformURL != "http://transform-of-"+strings.ReplaceAll(n.ID, ":", "-") {
			t.Errorf("node %+v: want URL http://%s and its transform URL", n, n.ID)
		}
	}
	if m.Version() != version || !slices.Equal(ids, slices.Sorted(slices.Values(servers))) {
		t.Errorf("Map: version %d, nodes %q; want version %d, nodes %q", m.Version(), ids, version, servers)
	}
	return m
}
