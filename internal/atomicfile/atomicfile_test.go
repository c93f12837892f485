package atomicfile_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/insitu-data/insitu/internal/atomicfile"
)

func openRoot(t *testing.T) (*os.Root, string) {
	t.Helper()
	dir := t.TempDir()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	return root, dir
}

// entries lists every file and directory under dir, relative, slash-separated.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCommit(t *testing.T) {
	root, dir := openRoot(t)
	f, err := atomicfile.Create(root, "a/b/c.txt", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	// Before the commit, only the temporary file exists, beside the final name.
	if _, err := os.Stat(filepath.Join(dir, "a/b/c.txt")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("final name visible before Commit: %v", err)
	}
	tmp := filepath.Join(dir, filepath.FromSlash(f.TempName()))
	if filepath.Dir(tmp) != filepath.Join(dir, "a", "b") || !atomicfile.IsTemp(filepath.Base(tmp)) {
		t.Fatalf("temporary file %s is not a temp file in the destination directory", tmp)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "a/b/c.txt"))
	if err != nil || string(b) != "hello" {
		t.Fatalf("after Commit: %q, %v", b, err)
	}
	if got := entries(t, dir); len(got) != 3 {
		t.Fatalf("left behind: %v", got)
	}
	if err := f.Abort(); err != nil {
		t.Fatalf("Abort after Commit: %v", err)
	}
	if err := f.Commit(); err == nil {
		t.Fatal("second Commit succeeded")
	}
}

func TestAbortKeepsOldFile(t *testing.T) {
	root, dir := openRoot(t)
	if err := os.WriteFile(filepath.Join(dir, "x"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := atomicfile.Create(root, "x", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("new and partial")); err != nil {
		t.Fatal(err)
	}
	if err := f.Abort(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "x"))
	if string(b) != "old" {
		t.Fatalf("x = %q after Abort", b)
	}
	if got := entries(t, dir); len(got) != 1 {
		t.Fatalf("left behind: %v", got)
	}
}

func TestCommitOverDirectoryFails(t *testing.T) {
	root, dir := openRoot(t)
	if err := os.MkdirAll(filepath.Join(dir, "d", "e"), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := atomicfile.Create(root, "d", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err == nil {
		t.Fatal("Commit over a non-empty directory succeeded")
	}
	if got := entries(t, dir); len(got) != 2 {
		t.Fatalf("left behind: %v", got)
	}
}

func TestCreateRefusesEscapes(t *testing.T) {
	root, dir := openRoot(t)
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"../x", "/etc/x", "a/../../x", "", "a/", "link/x", "a/" + atomicfile.TempPrefix + "x"} {
		f, err := atomicfile.Create(root, name, 0o644)
		if err == nil {
			f.Abort()
			t.Errorf("Create(%q) succeeded", name)
		}
	}
	if got := entries(t, outside); len(got) != 0 {
		t.Fatalf("written outside the root: %v", got)
	}
}

func ExampleCreate() {
	dir, _ := os.MkdirTemp("", "atomicfile-example")
	defer os.RemoveAll(dir)
	root, _ := os.OpenRoot(dir)
	defer root.Close()

	f, err := atomicfile.Create(root, "reports/today.txt", 0o644)
	if err != nil {
		panic(err)
	}
	defer f.Abort() // does nothing once committed
	f.Write([]byte("all or nothing\n"))
	if err := f.Commit(); err != nil {
		panic(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "reports", "today.txt"))
	os.Stdout.Write(b)
	// Output: all or nothing
}
