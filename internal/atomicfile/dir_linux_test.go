package atomicfile_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/insitu-data/insitu/internal/atomicfile"
)

// TestDirFastPathTaken: a Dir creates a file in an existing directory by
// its fast path, and goes the root's way for a directory to make or a
// link on the way, then fast again once the directory exists.
func TestDirFastPathTaken(t *testing.T) {
	root, dir := openRoot(t)
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("d", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	d := atomicfile.NewDir(root)
	defer d.Close()
	if _, fast := atomicfile.FastCreates(d); !fast {
		t.Skip("this kernel gives no usable openat2 (old, or a sandbox): every create goes the root's way")
	}
	for _, tc := range []struct {
		name string
		want int64 // fast creates so far
	}{{"x", 1}, {"d/x", 2}, {"link/y", 2}, {"new/x", 2}, {"new/y", 3}} {
		f, err := d.Create(tc.name, 0o644, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte(tc.name)); err != nil {
			t.Fatal(err)
		}
		if err := f.Commit(); err != nil {
			t.Fatal(err)
		}
		if n, _ := atomicfile.FastCreates(d); n != tc.want {
			t.Errorf("after %s: %d fast creates, want %d", tc.name, n, tc.want)
		}
	}
}

// TestDirCommitAfterClose: a file created by the fast path and committed
// after its Dir is closed is not committed, as one created through a
// root that is then closed is not: the error is os.ErrClosed and no file
// appears under the name (a node's Shutdown relies on it).
func TestDirCommitAfterClose(t *testing.T) {
	root, dir := openRoot(t)
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	d := atomicfile.NewDir(root)
	if _, fast := atomicfile.FastCreates(d); !fast {
		t.Skip("no usable openat2")
	}
	f, err := d.Create("d/x", 0o644, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := atomicfile.FastCreates(d); n != 1 {
		t.Fatal("not created by the fast path")
	}
	if _, err := f.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Commit after Close = %v, want os.ErrClosed", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "d", "x")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("d/x after a commit refused: %v", err)
	}
	if got := entries(t, dir); len(got) != 1 { // d, its temporary file removed
		t.Errorf("left behind: %v", got)
	}
}
