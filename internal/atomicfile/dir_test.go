package atomicfile_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/insitu-data/insitu/internal/atomicfile"
)

// TestDirLinksInsideRoot: a Dir follows the links an os.Root follows (a
// directory link that stays inside the root) to the same file, although
// its fast path follows none itself.
func TestDirLinksInsideRoot(t *testing.T) {
	forEachCreate(t, func(t *testing.T, create createFunc) {
		root, dir := openRoot(t)
		if err := os.MkdirAll(filepath.Join(dir, "real", "d"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("real", filepath.Join(dir, "link")); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"link/x", "link/d/y", "real/z"} {
			f, err := create(root, name, 0o644, nil)
			if err != nil {
				t.Fatalf("Create(%q): %v", name, err)
			}
			if _, err := f.Write([]byte(name)); err != nil {
				t.Fatal(err)
			}
			if err := f.Commit(); err != nil {
				t.Fatalf("Commit(%q): %v", name, err)
			}
		}
		for file, want := range map[string]string{"real/x": "link/x", "real/d/y": "link/d/y", "real/z": "real/z"} {
			got, err := os.ReadFile(filepath.Join(dir, file))
			if err != nil || string(got) != want {
				t.Errorf("%s = %q, %v; want %q", file, got, err, want)
			}
		}
		if got := entries(t, dir); len(got) != 6 { // link, real, real/d, real/d/y, real/x, real/z
			t.Errorf("entries = %v", got)
		}
	})
}

// TestDirCommitAfterDirRemoved: a file whose directory is removed (with
// the temporary file in it) before the commit fails to commit, leaves
// nothing, and the next Create makes the directory again.
func TestDirCommitAfterDirRemoved(t *testing.T) {
	forEachCreate(t, func(t *testing.T, create createFunc) {
		root, dir := openRoot(t)
		f, err := create(root, "a/b/c", 0o644, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte("c")); err != nil {
			t.Fatal(err)
		}
		if err := os.RemoveAll(filepath.Join(dir, "a")); err != nil {
			t.Fatal(err)
		}
		if err := f.Commit(); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Commit = %v, want fs.ErrNotExist", err)
		}
		if got := entries(t, dir); len(got) != 0 {
			t.Fatalf("left behind: %v", got)
		}
		f, err = create(root, "a/b/c", 0o644, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte("again")); err != nil {
			t.Fatal(err)
		}
		if err := f.Commit(); err != nil {
			t.Fatal(err)
		}
		if got, err := os.ReadFile(filepath.Join(dir, "a", "b", "c")); err != nil || string(got) != "again" {
			t.Fatalf("a/b/c = %q, %v", got, err)
		}
	})
}

// TestDirAfterClose: a Dir closed goes on creating, by Create's path; a
// file it created before the Close, by its fast path, does not commit
// (TestDirCommitAfterClose).
func TestDirAfterClose(t *testing.T) {
	root, dir := openRoot(t)
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	d := atomicfile.NewDir(root)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := d.Create("d/after", 0o644, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("d/after")); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "d", "after")); err != nil || string(got) != "d/after" {
		t.Errorf("after = %q, %v", got, err)
	}
}

// BenchmarkCreate writes small files in one existing directory, through
// the root (Create) and through a Dir, with syncs and without (where the
// system calls around the writes show).
func BenchmarkCreate(b *testing.B) {
	data := bytes.Repeat([]byte{'x'}, 4096)
	for _, mode := range []string{"root", "dir", "root-nosync", "dir-nosync"} {
		opts := &atomicfile.Options{NoSync: strings.HasSuffix(mode, "-nosync")}
		b.Run(mode, func(b *testing.B) {
			root, err := os.OpenRoot(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			defer root.Close()
			if err := root.MkdirAll("bucket/sub", 0o755); err != nil {
				b.Fatal(err)
			}
			create := func(name string) (*atomicfile.File, error) { return atomicfile.Create(root, name, 0o644, opts) }
			if strings.HasPrefix(mode, "dir") {
				d := atomicfile.NewDir(root)
				defer d.Close()
				create = func(name string) (*atomicfile.File, error) { return d.Create(name, 0o644, opts) }
			}
			i := 0
			for b.Loop() {
				f, err := create("bucket/sub/" + strconv.Itoa(i))
				if err != nil {
					b.Fatal(err)
				}
				if _, err := f.Write(data); err != nil {
					b.Fatal(err)
				}
				if err := f.SetAttr(atomicfile.OriginAttr, "origin"); err != nil && !atomicfile.AttrUnsupported(err) {
					b.Fatal(err)
				}
				if err := f.Commit(); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
