package atomicfile_test

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
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
	forEachCreate(t, func(t *testing.T, create createFunc) {
		root, dir := openRoot(t)
		f, err := create(root, "a/b/c.txt", 0o644, nil)
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
	})
}

func TestAbortKeepsOldFile(t *testing.T) {
	forEachCreate(t, func(t *testing.T, create createFunc) {
		root, dir := openRoot(t)
		if err := os.WriteFile(filepath.Join(dir, "x"), []byte("old"), 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := create(root, "x", 0o644, nil)
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
	})
}

func TestCommitOverDirectoryFails(t *testing.T) {
	forEachCreate(t, func(t *testing.T, create createFunc) {
		root, dir := openRoot(t)
		if err := os.MkdirAll(filepath.Join(dir, "d", "e"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(dir, "p", "empty"), 0o755); err != nil {
			t.Fatal(err)
		}
		// Over a directory, empty or not: fs.ErrExist either way.
		for _, name := range []string{"d", "p/empty"} {
			f, err := create(root, name, 0o644, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := f.Commit(); !errors.Is(err, fs.ErrExist) {
				t.Fatalf("Commit over the directory %s = %v, want fs.ErrExist", name, err)
			}
		}
		if got := entries(t, dir); len(got) != 4 {
			t.Fatalf("left behind: %v", got)
		}
	})
}

func TestCreateRefusesEscapes(t *testing.T) {
	forEachCreate(t, func(t *testing.T, create createFunc) {
		root, dir := openRoot(t)
		outside := t.TempDir()
		if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"../x", "/etc/x", "a/../../x", "", "a/", "link/x", "link/d/x", "a/" + atomicfile.TempPrefix + "x"} {
			f, err := create(root, name, 0o644, nil)
			if err == nil {
				f.Abort()
				t.Errorf("Create(%q) succeeded", name)
			}
			if strings.HasPrefix(name, "link/") && !atomicfile.Escapes(err) {
				t.Errorf("Create(%q): %v, which Escapes does not recognize", name, err)
			}
		}
		if got := entries(t, outside); len(got) != 0 {
			t.Fatalf("written outside the root: %v", got)
		}
	})
}

func TestEscapes(t *testing.T) {
	root, _ := openRoot(t)
	_, err := root.Open("missing")
	for _, tc := range []struct {
		err  error
		want bool
	}{{nil, false}, {err, false}, {fs.ErrNotExist, false}} {
		if got := atomicfile.Escapes(tc.err); got != tc.want {
			t.Errorf("Escapes(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestCreateLongName writes a file whose base name is as long as Linux
// allows: the temporary name must not grow with the final one.
func TestCreateLongName(t *testing.T) {
	forEachCreate(t, func(t *testing.T, create createFunc) {
		root, dir := openRoot(t)
		name := "d/" + strings.Repeat("n", 255)
		f, err := create(root, name, 0o644, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(path.Base(f.TempName())) != len(atomicfile.TempPrefix)+32 {
			t.Errorf("temporary name %q, want the prefix and 32 hex digits", f.TempName())
		}
		if _, err := f.Write([]byte("long")); err != nil {
			t.Fatal(err)
		}
		if err := f.Commit(); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name))); err != nil || string(b) != "long" {
			t.Fatalf("read back %q, %v", b, err)
		}
	})
}

func TestCreateOptions(t *testing.T) {
	forEachCreate(t, func(t *testing.T, create createFunc) {
		root, dir := openRoot(t)
		f, err := create(root, "p/q/r", 0o600, &atomicfile.Options{NoSync: true, DirPerm: 0o700})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte("unsynced")); err != nil {
			t.Fatal(err)
		}
		if err := f.Commit(); err != nil {
			t.Fatal(err)
		}
		for p, want := range map[string]fs.FileMode{"p": fs.ModeDir | 0o700, "p/q": fs.ModeDir | 0o700, "p/q/r": 0o600} {
			fi, err := os.Stat(filepath.Join(dir, filepath.FromSlash(p)))
			if err != nil || fi.Mode() != want {
				t.Errorf("%s: mode %v, %v; want %v", p, fi.Mode(), err, want)
			}
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "p", "q", "r")); string(b) != "unsynced" {
			t.Errorf("read back %q", b)
		}
		if got := entries(t, dir); len(got) != 3 {
			t.Errorf("left behind: %v", got)
		}
	})
}

func TestMkdirAll(t *testing.T) {
	root, dir := openRoot(t)
	for _, d := range []string{"", ".", "x/y/z", "x/y/z", "x/w"} {
		if err := atomicfile.MkdirAll(root, d, nil); err != nil {
			t.Fatalf("MkdirAll(%q): %v", d, err)
		}
	}
	if got := entries(t, dir); len(got) != 4 { // x, x/y, x/y/z, x/w
		t.Errorf("made %v", got)
	}
	if err := os.WriteFile(filepath.Join(dir, "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := atomicfile.MkdirAll(root, "file/sub", nil); err == nil {
		t.Error("MkdirAll under a file succeeded")
	}
	for _, d := range []string{"../out", "/abs", "x/../../out"} {
		if err := atomicfile.MkdirAll(root, d, nil); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("MkdirAll(%q): %v, want fs.ErrInvalid", d, err)
		}
	}
}

func ExampleCreate() {
	dir, _ := os.MkdirTemp("", "atomicfile-example")
	defer os.RemoveAll(dir)
	root, _ := os.OpenRoot(dir)
	defer root.Close()

	f, err := atomicfile.Create(root, "reports/today.txt", 0o644, nil)
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

// TestCommitNew: CommitNew creates a missing file, and leaves an existing
// one as it is with fs.ErrExist; no temporary file is left either way.
func TestCommitNew(t *testing.T) {
	forEachCreate(t, func(t *testing.T, create createFunc) {
		t.Parallel()
		dir := t.TempDir()
		root, err := os.OpenRoot(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer root.Close()
		write := func(content string) error {
			f, err := create(root, "b/k", 0o644, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Abort()
			if _, err := f.Write([]byte(content)); err != nil {
				t.Fatal(err)
			}
			return f.CommitNew()
		}
		if err := write("first"); err != nil {
			t.Fatalf("CommitNew of a new file: %v", err)
		}
		if err := write("second"); !errors.Is(err, fs.ErrExist) {
			t.Fatalf("CommitNew over an existing file: %v, want fs.ErrExist", err)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "b", "k")); err != nil || string(b) != "first" {
			t.Fatalf("the file holds %q, %v; want the first", b, err)
		}
		ents, err := os.ReadDir(filepath.Join(dir, "b"))
		if err != nil || len(ents) != 1 {
			t.Fatalf("the directory holds %v, %v; want the file alone", ents, err)
		}
	})
}

// createFunc is Create, or a Dir's Create.
type createFunc func(root *os.Root, name string, perm fs.FileMode, opts *atomicfile.Options) (*atomicfile.File, error)

// forEachCreate runs test with Create and with the Create of a Dir over
// the same root, which must write exactly the same files and fail with
// the same errors.
func forEachCreate(t *testing.T, test func(t *testing.T, create createFunc)) {
	t.Run("root", func(t *testing.T) { test(t, atomicfile.Create) })
	t.Run("dir", func(t *testing.T) {
		var mu sync.Mutex // the test may create from many goroutines
		dirs := map[*os.Root]*atomicfile.Dir{}
		t.Cleanup(func() {
			for _, d := range dirs {
				if err := d.Close(); err != nil {
					t.Errorf("Dir.Close: %v", err)
				}
			}
		})
		test(t, func(root *os.Root, name string, perm fs.FileMode, opts *atomicfile.Options) (*atomicfile.File, error) {
			mu.Lock()
			d := dirs[root]
			if d == nil {
				d = atomicfile.NewDir(root)
				dirs[root] = d
			}
			mu.Unlock()
			return d.Create(name, perm, opts)
		})
	})
}
