//go:build unix

package source_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/insitu-data/insitu"
)

// TestDirSkipsFIFOs: a FIFO is not listed, and Open refuses it instead of
// blocking until it has a writer.
func TestDirSkipsFIFOs(t *testing.T) {
	root := t.TempDir()
	files(t, root, "a", "z")
	if err := syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644); err != nil {
		t.Skipf("cannot make a FIFO here: %v", err)
	}
	src := newDir(t, root, nil)
	wantKeys(t, listAll(t, src), "a", "z")
	_, err := src.Open(context.Background(), insitu.Object{Name: insitu.Name{Key: "fifo"}})
	if !errors.Is(err, insitu.NotFound) {
		t.Errorf("Open of a FIFO: %v, want NotFound", err)
	}
}

// TestDirEarlyBreakLeavesNothingOpen counts this process's open files
// before and after abandoned listings of a deep tree.
func TestDirEarlyBreakLeavesNothingOpen(t *testing.T) {
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skip("no /proc/self/fd to count open files")
	}
	root := t.TempDir()
	files(t, root, "a/b/c/d/e/1", "a/b/c/d/e/2", "a/b/c/d/f", "g")
	src := newDir(t, root, nil)
	open := func() int {
		des, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(des)
	}
	before := open()
	for range 10 {
		for _, err := range src.Objects(context.Background()) {
			if err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	if after := open(); after != before {
		t.Errorf("%d files open before the listings, %d after", before, after)
	}
}
