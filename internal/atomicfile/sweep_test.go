package atomicfile_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/insitu-data/insitu/internal/atomicfile"
)

// write creates the file rel under dir with its parents, and sets its
// modification time age ago.
func write(t *testing.T, dir, rel string, age time.Duration) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(rel), 0o644); err != nil {
		t.Fatal(err)
	}
	when := time.Now().Add(-age)
	if err := os.Chtimes(p, when, when); err != nil {
		t.Fatal(err)
	}
}

// regular lists the regular files under dir, relative, slash-separated,
// sorted; symbolic links are listed too, with "@" appended.
func regular(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for _, e := range entries(t, dir) {
		fi, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(e)))
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case fi.Mode().IsRegular():
			out = append(out, e)
		case fi.Mode()&fs.ModeSymlink != 0:
			out = append(out, e+"@")
		}
	}
	slices.Sort(out)
	return out
}

func TestSweep(t *testing.T) {
	root, dir := openRoot(t)
	outside := t.TempDir()
	tp := atomicfile.TempPrefix
	write(t, outside, tp+"outside", 48*time.Hour)
	write(t, dir, tp+"top-old", 2*time.Hour)
	write(t, dir, "a/"+tp+"old", 3*time.Hour)
	write(t, dir, "a/b/"+tp+"new", 0)
	write(t, dir, "a/b/c/"+tp+"future", -time.Hour) // clock skew: modified "in an hour"
	write(t, dir, "a/keep-old.txt", 5*time.Hour)    // not a temporary file
	write(t, dir, ".insitu-tmpnot", 5*time.Hour)    // prefix without its "-"
	write(t, dir, tp+"dir/inside", 5*time.Hour)     // a directory named like one is walked, not removed
	if err := os.Symlink(filepath.Join(outside, tp+"outside"), filepath.Join(dir, tp+"link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "a", "out")); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	n, err := atomicfile.Sweep(ctx, root, time.Hour)
	if err != nil || n != 2 {
		t.Fatalf("Sweep(1h) = %d, %v; want 2 removed", n, err)
	}
	want := []string{
		".insitu-tmp-dir/inside", ".insitu-tmp-link@", ".insitu-tmpnot",
		"a/b/.insitu-tmp-new", "a/b/c/.insitu-tmp-future", "a/keep-old.txt", "a/out@",
	}
	if got := regular(t, dir); !slices.Equal(got, want) {
		t.Fatalf("after Sweep(1h):\n got %q\nwant %q", got, want)
	}

	n, err = atomicfile.Sweep(ctx, root, 0)
	if err != nil || n != 2 {
		t.Fatalf("Sweep(0) = %d, %v; want 2 removed", n, err)
	}
	want = []string{".insitu-tmp-dir/inside", ".insitu-tmp-link@", ".insitu-tmpnot", "a/keep-old.txt", "a/out@"}
	if got := regular(t, dir); !slices.Equal(got, want) {
		t.Fatalf("after Sweep(0):\n got %q\nwant %q", got, want)
	}
	if n, err := atomicfile.Sweep(ctx, root, 0); err != nil || n != 0 {
		t.Fatalf("a second Sweep(0) = %d, %v; want 0", n, err)
	}
	// Nothing outside the root was touched through the links.
	if got := regular(t, outside); !slices.Equal(got, []string{tp + "outside"}) {
		t.Fatalf("outside the root: %q", got)
	}
}

// TestSweepKeepsWriteInProgress: a temporary file of a Create not yet
// committed survives a sweep with an age, and its Commit still works.
func TestSweepKeepsWriteInProgress(t *testing.T) {
	forEachCreate(t, func(t *testing.T, create createFunc) {
		root, dir := openRoot(t)
		f, err := create(root, "x/y", 0o644, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Abort()
		if n, err := atomicfile.Sweep(context.Background(), root, time.Minute); err != nil || n != 0 {
			t.Fatalf("Sweep(1m) during a write = %d, %v; want 0", n, err)
		}
		if _, err := f.Write([]byte("whole")); err != nil {
			t.Fatal(err)
		}
		if err := f.Commit(); err != nil {
			t.Fatal(err)
		}
		if got := regular(t, dir); !slices.Equal(got, []string{"x/y"}) {
			t.Fatalf("files %q, want only x/y", got)
		}
	})
}

func TestSweepErrors(t *testing.T) {
	root, dir := openRoot(t)
	write(t, dir, "d/"+atomicfile.TempPrefix+"1", time.Hour)
	if n, err := atomicfile.Sweep(context.Background(), root, -time.Second); n != 0 || !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("Sweep(-1s) = %d, %v; want 0, fs.ErrInvalid", n, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if n, err := atomicfile.Sweep(ctx, root, 0); n != 0 || err != context.Canceled {
		t.Errorf("Sweep with a canceled context = %d, %v; want 0, context.Canceled unwrapped", n, err)
	}
	if got := regular(t, dir); len(got) != 1 {
		t.Errorf("a failed sweep removed files: %q left", got)
	}
}
