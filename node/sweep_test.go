package node_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/atomicfile"
	"github.com/insitu-data/insitu/locality"
	"github.com/insitu-data/insitu/node"
	"github.com/insitu-data/insitu/node/nodetest"
)

// TestStartSweepsStaleTempFiles starts a node over a store that a crashed
// process left with temporary files: they are gone once the node serves,
// and the object next to them is still listed and served.
func TestStartSweepsStaleTempFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	store := filepath.Join(dir, "n1")
	obj := content("kept", 70_000)
	write := func(rel string, b []byte) {
		p := filepath.Join(store, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("bkt/dir/obj.bin", obj)
	write("bkt/dir/"+atomicfile.TempPrefix+"0123456789abcdef", content("partial", 5000))
	write("bkt/"+atomicfile.TempPrefix+"x", nil)
	write(atomicfile.TempPrefix+"at-the-top", []byte("partial"))
	fresh := time.Now().Add(time.Minute) // even a file "from the future" is stale at start
	if err := os.Chtimes(filepath.Join(store, "bkt", atomicfile.TempPrefix+"x"), fresh, fresh); err != nil {
		t.Fatal(err)
	}
	var log syncBuffer
	c := startCluster(t, 1, &nodetest.Options{Dir: dir, Logger: debugLogger(&log)})

	if got := files(t, store); !maps.Equal(got, map[string]int64{"bkt/dir/obj.bin": int64(len(obj))}) {
		t.Errorf("store after start: %v, want only bkt/dir/obj.bin", got)
	}
	if !strings.Contains(log.String(), "removed stale temporary files from the store") || !strings.Contains(log.String(), "count=3") {
		t.Errorf("log does not report 3 removed temporary files:\n%s", log.String())
	}
	ctx := context.Background()
	n1, _ := c.Map().Node("n1")
	var listed []insitu.Object
	for o, err := range c.Client().ListAll(ctx, n1, "bkt", nil) {
		if err != nil {
			t.Fatalf("listing: %v", err)
		}
		o.Version = "" // the file's size and time; checked elsewhere
		listed = append(listed, o)
	}
	want := []insitu.Object{{Name: insitu.Name{Bucket: "bkt", Key: "dir/obj.bin"}, Size: int64(len(obj)), Owner: "n1"}}
	if !slices.Equal(listed, want) {
		t.Errorf("listed %+v, want %+v", listed, want)
	}
	name := insitu.Name{Bucket: "bkt", Key: "dir/obj.bin"}
	got, o, err := readAll(ctx, c.Client(), name)
	if err != nil || !bytes.Equal(got, obj) || o.Size != int64(len(obj)) {
		t.Errorf("Get(%s): %d bytes (checksum %s), size %d, %v; want %d bytes (%s)", name, len(got), checksum(got), o.Size, err, len(obj), checksum(obj))
	}
}

// TestStartWithoutTempFilesLogsNothing: a clean store is not reported.
func TestStartWithoutTempFilesLogsNothing(t *testing.T) {
	t.Parallel()
	var log syncBuffer
	m, err := locality.NewMap(1, locality.Node{ID: "n1", URL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	nd, err := node.New(t.Context(), "n1", t.TempDir(), m, &node.Options{Secret: locality.Secret("s"), Logger: debugLogger(&log)})
	if err != nil {
		t.Fatal(err)
	}
	defer nd.Shutdown(context.Background())
	if strings.Contains(log.String(), "temporary") {
		t.Errorf("log of a clean start mentions temporary files:\n%s", log.String())
	}
}

// TestStartSweepFailure: a store the node cannot walk fails New with the
// store named in the error, and the node is not made.
func TestStartSweepFailure(t *testing.T) {
	t.Parallel()
	store := t.TempDir()
	locked := filepath.Join(store, "bkt", "locked")
	if err := os.MkdirAll(locked, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(locked, atomicfile.TempPrefix+"1"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(locked, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(locked, 0o755) })
	if _, err := os.ReadDir(locked); err == nil {
		t.Skip("chmod 0 does not stop this user (root) from reading a directory")
	}
	m, _ := locality.NewMap(1, locality.Node{ID: "n1", URL: "http://127.0.0.1:1"})
	nd, err := node.New(t.Context(), "n1", store, m, nil)
	if err == nil {
		nd.Shutdown(context.Background())
		t.Fatal("New over a store it cannot sweep succeeded")
	}
	if !errors.Is(err, insitu.PermissionDenied) || !strings.Contains(err.Error(), "removing stale temporary files") {
		t.Errorf("New: %v, want PermissionDenied about removing stale temporary files", err)
	}
}

// TestStartSweepCanceled: the sweep at start is bounded by New's context;
// a canceled one fails New with the context's error (as root too, where
// a permission cannot make the sweep fail), and a later New sweeps.
func TestStartSweepCanceled(t *testing.T) {
	t.Parallel()
	store := t.TempDir()
	stale := filepath.Join(store, "bkt", atomicfile.TempPrefix+"left")
	if err := os.MkdirAll(filepath.Dir(stale), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stale, []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, _ := locality.NewMap(1, locality.Node{ID: "n1", URL: "http://127.0.0.1:1"})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if nd, err := node.New(ctx, "n1", store, m, nil); !errors.Is(err, context.Canceled) {
		if nd != nil {
			nd.Shutdown(context.Background())
		}
		t.Fatalf("New with a canceled context: %v, want context.Canceled", err)
	}
	nd, err := node.New(t.Context(), "n1", store, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer nd.Shutdown(context.Background())
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the stale temporary file after New: %v, want it gone", err)
	}
}
