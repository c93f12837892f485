package seaweedfs_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/seaweedfs"
	"github.com/insitu-data/insitu/sink/sinktest"
)

// logRecorder keeps the messages logged through it.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, r.Message)
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }
func (l *logRecorder) messages() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.msgs)
}

// A pinned Put stores every chunk on the chosen volume server, as the
// master's lookup of each chunk's volume says; the listing, Stat and
// PutResult name that server as the owner; Open reads the bytes straight
// from it, never through the filer.
func TestPinnedPutOwnerAndDirectRead(t *testing.T) {
	t.Parallel()
	c := shared(t)
	logs := &logRecorder{}
	client := newClient(t, c, &seaweedfs.Options{Logger: slog.New(logs)})
	ctx := t.Context()
	pin := map[string]string{} // key → volume server
	sink, err := seaweedfs.NewSink(client, &seaweedfs.SinkOptions{
		Pin: func(n insitu.Name) string { return pin[n.Key] },
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{}
	for i, vs := range c.VolumeServers {
		for _, n := range []int{1, 100_000, 10_000_000} { // 10 MB: 3 chunks of at most 4 MiB
			key := fmt.Sprintf("out/vs%d/%d.bin", i, n)
			pin[key] = vs
			want[key] = sinktest.Content(key, n)
			res, err := sink.Put(ctx, insitu.Name{Bucket: "pinned", Key: key}, bytes.NewReader(want[key]), int64(n))
			if err != nil {
				t.Fatalf("Put(%s) pinned to %s: %v", key, vs, err)
			}
			if res.Owner != vs || res.Size != int64(n) {
				t.Errorf("Put(%s): result %+v, want Owner %s and Size %d", key, res, vs, n)
			}
			p := client.Root() + "/pinned/" + key
			servers := serversOf(t, c, p)
			if n == 10_000_000 && len(servers) != 3 {
				t.Errorf("%s: %d chunks, want 3", key, len(servers))
			}
			for j, s := range servers {
				if !slices.Equal(s, []string{vs}) {
					t.Errorf("%s pinned to %s: chunk %d is on %q", key, vs, j, s)
				}
			}
			obj, err := sink.Stat(ctx, insitu.Name{Bucket: "pinned", Key: key})
			if err != nil || obj.Owner != vs || obj.Size != int64(n) {
				t.Errorf("Stat(%s) = %+v, %v; want Owner %s, Size %d", key, obj, err, vs, n)
			}
		}
	}
	// The same through Chunks.
	chunks, err := client.Chunks(ctx, insitu.Name{Bucket: "pinned", Key: "out/vs0/10000000.bin"})
	if err != nil || len(chunks) != 3 || chunks[2].Offset != 8<<20 || chunks[2].Size != 10_000_000-8<<20 {
		t.Fatalf("Chunks = %+v, %v", chunks, err)
	}
	for _, ch := range chunks {
		if !slices.Equal(ch.Servers, c.VolumeServers[:1]) {
			t.Errorf("Chunks: %s on %q, want %s", ch.FileID, ch.Servers, c.VolumeServers[0])
		}
	}

	src, err := seaweedfs.NewSource(client, "pinned", nil)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for obj, err := range src.Objects(ctx) {
		if err != nil {
			t.Fatalf("listing: %v", err)
		}
		n++
		if obj.Owner != pin[obj.Name.Key] || obj.Size != int64(len(want[obj.Name.Key])) || obj.Path != "" {
			t.Errorf("listed %+v, want Owner %s and Size %d", obj, pin[obj.Name.Key], len(want[obj.Name.Key]))
		}
		got, err := readAll(t, src, obj)
		if err != nil || !bytes.Equal(got, want[obj.Name.Key]) {
			t.Errorf("Open(%s): %d bytes, %v; want the %d put", obj.Name, len(got), err, len(want[obj.Name.Key]))
		}
	}
	if n != len(want) {
		t.Errorf("listed %d objects, want %d", n, len(want))
	}
	if m := logs.messages(); len(m) != 0 {
		t.Errorf("reads fell back to the filer: %q", m)
	}
	// PutOn gives the pin per call.
	res, err := sink.PutOn(ctx, c.VolumeServers[1], insitu.Name{Bucket: "pinned", Key: "puton.bin"}, strings.NewReader("on 1"), 4)
	if err != nil || res.Owner != c.VolumeServers[1] {
		t.Fatalf("PutOn: %+v, %v", res, err)
	}
	if s := serversOf(t, c, client.Root()+"/pinned/puton.bin"); !slices.Equal(s[0], c.VolumeServers[1:2]) {
		t.Errorf("PutOn(%s) stored on %q", c.VolumeServers[1], s)
	}
}

// appendChunk appends b to the filer file p, its chunk pinned to server.
func appendChunk(t *testing.T, filer, p string, b []byte, server string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, filer+escape(p)+"?op=append&dataNode="+server, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("append to %s: %s", p, resp.Status)
	}
}

// An object whose chunks are on several volume servers is owned by the
// one that holds most of its bytes, and reads whole, chunk by chunk from
// each server.
func TestOwnerHoldsMostBytes(t *testing.T) {
	t.Parallel()
	c := shared(t)
	client := newClient(t, c, nil)
	dir := client.Root() + "/mixed"
	vs := c.VolumeServers
	// a: 1 KB on vs0, 3 KB on vs1, 1 KB on vs2: vs1 holds most.
	// b: 2 KB on vs2, 1 KB on vs0: vs2 holds most.
	parts := map[string][]struct {
		n      int
		server string
	}{
		"a": {{1000, vs[0]}, {3000, vs[1]}, {1000, vs[2]}},
		"b": {{2000, vs[2]}, {1000, vs[0]}},
	}
	want := map[string][]byte{}
	owners := map[string]string{"a": vs[1], "b": vs[2]}
	for key, ps := range parts {
		for i, part := range ps {
			b := sinktest.Content(fmt.Sprint(key, i), part.n)
			appendChunk(t, c.FilerURL, dir+"/"+key, b, part.server)
			want[key] = append(want[key], b...)
		}
	}
	src, err := seaweedfs.NewSource(client, "mixed", nil)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for obj, err := range src.Objects(t.Context()) {
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, obj.Name.Key)
		if obj.Owner != owners[obj.Name.Key] || obj.Size != int64(len(want[obj.Name.Key])) {
			t.Errorf("listed %+v; want Owner %s, Size %d", obj, owners[obj.Name.Key], len(want[obj.Name.Key]))
		}
		got, err := readAll(t, src, obj)
		if err != nil || !bytes.Equal(got, want[obj.Name.Key]) {
			t.Errorf("Open(%s): %d bytes, %v", obj.Name, len(got), err)
		}
	}
	if !slices.Equal(keys, []string{"a", "b"}) {
		t.Errorf("listed %q", keys)
	}
}

// The rendezvous choice among replicas: every server holding as much is
// a candidate, the choice is stable and spreads over them.
func TestOwnerAmongReplicas(t *testing.T) {
	t.Parallel()
	servers := []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"}
	count := map[string]int{}
	for i := range 3000 {
		name := insitu.Name{Bucket: "b", Key: fmt.Sprint("k", i)}
		o := seaweedfs.OwnerOf(name, []int64{100}, func(int) []string { return servers })
		if again := seaweedfs.OwnerOf(name, []int64{100}, func(int) []string { return []string{servers[2], servers[0], servers[1]} }); again != o {
			t.Fatalf("owner of %s: %s, then %s with the servers in another order", name, o, again)
		}
		count[o]++
	}
	for _, s := range servers {
		if count[s] < 900 || count[s] > 1100 {
			t.Errorf("%s owns %d of 3000 replicated objects, want about 1000", s, count[s])
		}
	}
	// Bytes win over the rendezvous weight.
	name := insitu.Name{Bucket: "b", Key: "k"}
	o := seaweedfs.OwnerOf(name, []int64{10, 20}, func(i int) []string { return [][]string{{servers[0]}, {servers[1], servers[2]}}[i] })
	if o != servers[1] && o != servers[2] {
		t.Errorf("owner %s; want one of the servers holding 20 bytes", o)
	}
	if o := seaweedfs.OwnerOf(name, nil, nil); o != "" {
		t.Errorf("owner of no chunks: %q", o)
	}
}

// Objects of a replicated volume are owned by one of its replicas, the
// same in every listing, and spread over the replicas.
func TestOwnerOfReplicatedObjects(t *testing.T) {
	t.Parallel()
	c := shared(t)
	client := newClient(t, c, nil)
	dir := client.Root() + "/replicated"
	const n = 30
	for i := range n {
		p := fmt.Sprintf("%s/k%02d", dir, i)
		req, _ := http.NewRequest(http.MethodPut, c.FilerURL+escape(p)+"?replication=001", bytes.NewReader(sinktest.Content(p, 100)))
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("PUT %s with replication 001: %s", p, resp.Status)
		}
	}
	src, _ := seaweedfs.NewSource(client, "replicated", nil)
	first := map[string]string{}
	for round := range 2 {
		for obj, err := range src.Objects(t.Context()) {
			if err != nil {
				t.Fatal(err)
			}
			chunks, err := client.Chunks(t.Context(), obj.Name)
			if err != nil || len(chunks) != 1 || len(chunks[0].Servers) != 2 {
				t.Fatalf("Chunks(%s) = %+v, %v; want one chunk on 2 servers", obj.Name, chunks, err)
			}
			if !slices.Contains(chunks[0].Servers, obj.Owner) {
				t.Errorf("%s: Owner %s is none of its replicas %q", obj.Name, obj.Owner, chunks[0].Servers)
			}
			if round == 0 {
				first[obj.Name.Key] = obj.Owner
			} else if first[obj.Name.Key] != obj.Owner {
				t.Errorf("%s: Owner %s, then %s", obj.Name, first[obj.Name.Key], obj.Owner)
			}
		}
	}
	owners := map[string]int{}
	for _, o := range first {
		owners[o]++
	}
	if len(first) != n || len(owners) < 2 {
		t.Errorf("%d objects owned by %v; want %d spread over more than one server", len(first), owners, n)
	}
}
