package node

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/locality"
)

// TestStoreDirOpen: the fast open of a batch opens a regular file beneath
// the store, with its bytes (small) or open (large), and declines (so
// that the usual path answers) every name that reaches a link, a
// directory, a FIFO (without blocking), a missing file, or a place
// outside the store.
func TestStoreDirOpen(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	m, err := locality.NewMap(1, locality.Node{ID: "solo", URL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(t.Context(), "solo", filepath.Join(parent, "store"), m, &Options{Secret: locality.Secret("s")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown(t.Context()) })
	store := n.Dir()
	if _, err := n.Put(t.Context(), insitu.Name{Bucket: "b", Key: "dir/file"}, strings.NewReader("hello"), 5); err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", 100)
	if _, err := n.Put(t.Context(), insitu.Name{Bucket: "b", Key: "big"}, strings.NewReader(big), int64(len(big))); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(parent, "outside")
	for _, err := range []error{
		os.WriteFile(outside, []byte("secret"), 0o644),
		os.Symlink(outside, filepath.Join(store, "b", "link")),
		os.Symlink("dir/file", filepath.Join(store, "b", "inlink")),
		os.Symlink(parent, filepath.Join(store, "b", "up")),
		os.Symlink("dir", filepath.Join(store, "b", "indir")),
		os.Symlink("b", filepath.Join(store, "lb")),
		syscall.Mkfifo(filepath.Join(store, "b", "fifo"), 0o644),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	d := n.openStoreDir()
	if d == nil {
		t.Fatal("no store directory")
	}
	defer d.close()
	o, ok := d.open(insitu.Name{Bucket: "b", Key: "dir/file"}, 64)
	if !ok {
		t.Skip("no openat2 here: every open takes the usual path")
	}
	if string(o.data) != "hello" || o.size != 5 || o.body != nil || o.mtime.IsZero() {
		t.Fatalf("b/dir/file: %+v", o)
	}
	o, ok = d.open(insitu.Name{Bucket: "b", Key: "big"}, 64)
	if !ok || o.body == nil || o.size != 100 {
		t.Fatalf("b/big: %+v, %v", o, ok)
	}
	o.body.Close()
	for _, s := range []string{"b/link", "b/inlink", "b/up/outside", "b/indir/file", "lb/dir/file", "b/fifo", "b/dir", "b/missing", "b/dir/file/x", "b/../outside"} {
		bucket, key, _ := strings.Cut(s, "/")
		if o, ok := d.open(insitu.Name{Bucket: bucket, Key: key}, 64); ok {
			t.Errorf("%s: opened fast (%q), want the usual path", s, o.data)
		}
	}
	if d.off.Load() {
		t.Error("the fast path turned itself off")
	}
}
