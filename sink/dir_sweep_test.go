package sink_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/sink"
)

// files returns the regular files under dir, relative and slash-separated,
// with their sizes.
func files(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for p, size := range tree(t, dir) {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			out[filepath.ToSlash(rel)] = size
		}
	}
	return out
}

// leftover makes the file rel under dir, as a crashed Put would leave it,
// last modified age ago.
func leftover(t *testing.T, dir, rel string, size int, age time.Duration) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, make([]byte, size), 0o644); err != nil {
		t.Fatal(err)
	}
	when := time.Now().Add(-age)
	if err := os.Chtimes(p, when, when); err != nil {
		t.Fatal(err)
	}
}

func TestDirSweep(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	s := newDir(t, root, nil)
	ctx := context.Background()
	for key, data := range map[string]string{"a/obj": "object a", "a/b/obj": "object b", "top": "top"} {
		if _, err := s.Put(ctx, insitu.Name{Key: key}, strings.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
	}
	tp := sink.TempPrefix
	leftover(t, root, "a/"+tp+"day-old", 100, 24*time.Hour)
	leftover(t, root, "a/b/"+tp+"two-hours", 200, 2*time.Hour)
	leftover(t, root, tp+"minute", 300, time.Minute)
	leftover(t, root, "user/.insitu-tmp", 1, 24*time.Hour) // no "-" after the prefix: the user's file
	leftover(t, outside, tp+"not-ours", 400, 24*time.Hour)
	if err := os.Symlink(outside, filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	objects := map[string]int64{"a/obj": 8, "a/b/obj": 8, "top": 3, "user/.insitu-tmp": 1}

	n, err := s.Sweep(ctx, time.Hour)
	if err != nil || n != 2 {
		t.Fatalf("Sweep(1h) = %d, %v; want 2", n, err)
	}
	want := maps.Clone(objects)
	want[tp+"minute"] = 300
	if got := files(t, root); !maps.Equal(got, want) {
		t.Errorf("after Sweep(1h): %v, want %v", got, want)
	}
	n, err = s.Sweep(ctx, 0)
	if err != nil || n != 1 {
		t.Fatalf("Sweep(0) = %d, %v; want 1", n, err)
	}
	if got := files(t, root); !maps.Equal(got, objects) {
		t.Errorf("after Sweep(0): %v, want %v", got, objects)
	}
	if got := files(t, outside); !maps.Equal(got, map[string]int64{tp + "not-ours": 400}) {
		t.Errorf("outside the root, through the link: %v", got)
	}
}

// TestDirSweepSparesPutInProgress sweeps while a Put is midway: with an
// age, its temporary file stays and the Put completes.
func TestDirSweepSparesPutInProgress(t *testing.T) {
	root := t.TempDir()
	s := newDir(t, root, nil)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := s.Put(context.Background(), insitu.Name{Key: "slow/obj"}, pr, -1)
		done <- err
	}()
	// Write returns once Put has read the bytes: its temporary file exists.
	if _, err := pw.Write([]byte("first ")); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Sweep(context.Background(), time.Minute); err != nil || n != 0 {
		t.Errorf("Sweep(1m) during a Put = %d, %v; want 0", n, err)
	}
	pw.Write([]byte("second"))
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := files(t, root); !maps.Equal(got, map[string]int64{"slow/obj": 12}) {
		t.Errorf("files %v, want only slow/obj", got)
	}
}

func TestDirSweepErrors(t *testing.T) {
	parent := t.TempDir()
	ctx := context.Background()

	// A missing root has nothing to sweep, and is not created.
	missing := filepath.Join(parent, "missing")
	if n, err := newDir(t, missing, nil).Sweep(ctx, 0); n != 0 || err != nil {
		t.Errorf("Sweep of a missing root = %d, %v; want 0, nil", n, err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Sweep created the root: %v", err)
	}

	file := filepath.Join(parent, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, root := range []string{file, filepath.Join(file, "sub")} {
		if n, err := newDir(t, root, nil).Sweep(ctx, 0); n != 0 || !errors.Is(err, insitu.InvalidArgument) || !strings.Contains(err.Error(), "sink root") {
			t.Errorf("Sweep of root %s = %d, %v; want InvalidArgument about the sink root", root, n, err)
		}
	}

	root := filepath.Join(parent, "root")
	leftover(t, root, "d/"+sink.TempPrefix+"x", 10, time.Hour)
	s := newDir(t, root, nil)
	if n, err := s.Sweep(ctx, -time.Second); n != 0 || !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("Sweep(-1s) = %d, %v; want InvalidArgument", n, err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if n, err := s.Sweep(canceled, 0); n != 0 || err != context.Canceled {
		t.Errorf("Sweep with a canceled context = %d, %v; want context.Canceled, unwrapped", n, err)
	}
	if got := files(t, root); len(got) != 1 {
		t.Errorf("failed sweeps removed files: %v left", got)
	}

	// A directory the sweep cannot read: PermissionDenied.
	locked := filepath.Join(root, "locked")
	leftover(t, root, "locked/"+sink.TempPrefix+"y", 10, time.Hour)
	if err := os.Chmod(locked, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(locked, 0o755) })
	if _, err := os.ReadDir(locked); err == nil {
		t.Skip("chmod 0 does not stop this user (root) from reading a directory")
	}
	if _, err := s.Sweep(ctx, 0); !errors.Is(err, insitu.PermissionDenied) || !strings.Contains(err.Error(), "sweeping the temporary files") {
		t.Errorf("Sweep of an unreadable directory: %v, want PermissionDenied", err)
	}
}
