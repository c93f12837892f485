package source_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/testutil"
	"github.com/insitu-data/insitu/source"
	"github.com/insitu-data/insitu/source/sourcetest"
)

// writeTree creates the files of objs (key → contents) under root.
func writeTree(t *testing.T, root string, objs map[string][]byte) {
	t.Helper()
	for k, b := range objs {
		p := filepath.Join(root, filepath.FromSlash(k))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func files(t *testing.T, root string, keys ...string) {
	t.Helper()
	objs := map[string][]byte{}
	for _, k := range keys {
		objs[k] = []byte(k)
	}
	writeTree(t, root, objs)
}

// listing is the outcome of one listing: keys in order, and errors.
type listing struct {
	keys []string
	objs []insitu.Object
	errs []error
}

func listAll(t *testing.T, src insitu.Source) listing {
	t.Helper()
	var l listing
	for obj, err := range src.Objects(context.Background()) {
		if err != nil {
			l.errs = append(l.errs, err)
			continue
		}
		l.keys = append(l.keys, obj.Name.Key)
		l.objs = append(l.objs, obj)
	}
	return l
}

func wantKeys(t *testing.T, l listing, want ...string) {
	t.Helper()
	for _, err := range l.errs {
		t.Errorf("unexpected error: %v", err)
	}
	if !slices.Equal(l.keys, want) {
		t.Errorf("keys:\n  %q\nwant\n  %q", l.keys, want)
	}
}

func TestDirConformance(t *testing.T) {
	for _, bucket := range []string{"", "data"} {
		t.Run("bucket="+bucket, func(t *testing.T) {
			sourcetest.Run(t, sourcetest.Harness{
				Bucket: bucket,
				MakeSource: func(t *testing.T, objs map[string][]byte) insitu.Source {
					root := t.TempDir()
					writeTree(t, root, objs)
					return newDir(t, root, &source.DirOptions{Bucket: bucket})
				},
			})
		})
	}
}

func TestDirOrderIsBytewiseKeyOrder(t *testing.T) {
	root := t.TempDir()
	// A directory walk in name order would give a/b before a-b and a.b.
	files(t, root, "a-b", "a.b", "a0", "a/b0/c", "a/b-", "a/b/c/d", "B", "b", "é", "e")
	l := listAll(t, newDir(t, root, nil))
	want := []string{"B", "a-b", "a.b", "a/b-", "a/b/c/d", "a/b0/c", "a0", "b", "e", "é"}
	wantKeys(t, l, want...)
	if !slices.IsSorted(l.keys) {
		t.Errorf("keys not sorted: %q", l.keys)
	}
}

func TestDirObjectFields(t *testing.T) {
	root := t.TempDir()
	files(t, root, "x/y.txt")
	l := listAll(t, newDir(t, root, &source.DirOptions{Bucket: "b1"}))
	wantKeys(t, l, "x/y.txt")
	o := l.objs[0]
	fi, err := os.Stat(filepath.Join(root, "x", "y.txt"))
	if err != nil {
		t.Fatal(err)
	}
	want := insitu.Object{Name: insitu.Name{Bucket: "b1", Key: "x/y.txt"}, Size: 7, Path: filepath.Join(root, "x", "y.txt"),
		Version: fmt.Sprintf("7-%d", fi.ModTime().UnixNano())}
	if o != want {
		t.Errorf("object %+v, want %+v", o, want)
	}
}

func TestDirRelativeRootGivesAbsolutePaths(t *testing.T) {
	root := t.TempDir()
	files(t, root, "d/f")
	t.Chdir(root)
	src := newDir(t, "d", nil)
	l := listAll(t, src)
	wantKeys(t, l, "f")
	if got, want := l.objs[0].Path, filepath.Join(root, "d", "f"); got != want {
		t.Errorf("Path %q, want %q", got, want)
	}
	if src.Root() != filepath.Join(root, "d") {
		t.Errorf("Root() = %q", src.Root())
	}
}

func TestDirFilters(t *testing.T) {
	root := t.TempDir()
	files(t, root, "a/1.flac", "a/2.wav", "a/3.flac", "ab/4.flac", "b/5.flac", "b/c/6.flac", "top.flac")
	tests := []struct {
		name string
		opts source.DirOptions
		want []string
	}{
		{"none", source.DirOptions{}, []string{"a/1.flac", "a/2.wav", "a/3.flac", "ab/4.flac", "b/5.flac", "b/c/6.flac", "top.flac"}},
		{"suffix", source.DirOptions{Suffix: ".flac"}, []string{"a/1.flac", "a/3.flac", "ab/4.flac", "b/5.flac", "b/c/6.flac", "top.flac"}},
		{"prefix dir", source.DirOptions{Prefix: "a/"}, []string{"a/1.flac", "a/2.wav", "a/3.flac"}},
		{"prefix partial", source.DirOptions{Prefix: "a"}, []string{"a/1.flac", "a/2.wav", "a/3.flac", "ab/4.flac"}},
		{"prefix deep", source.DirOptions{Prefix: "b/c/6"}, []string{"b/c/6.flac"}},
		{"prefix none", source.DirOptions{Prefix: "zzz"}, nil},
		{"start after a file", source.DirOptions{StartAfter: "a/2.wav"}, []string{"a/3.flac", "ab/4.flac", "b/5.flac", "b/c/6.flac", "top.flac"}},
		{"start after a missing key", source.DirOptions{StartAfter: "b/4"}, []string{"b/5.flac", "b/c/6.flac", "top.flac"}},
		{"start after a dir", source.DirOptions{StartAfter: "b/"}, []string{"b/5.flac", "b/c/6.flac", "top.flac"}},
		{"start after a dir name", source.DirOptions{StartAfter: "b"}, []string{"b/5.flac", "b/c/6.flac", "top.flac"}},
		{"start after last", source.DirOptions{StartAfter: "top.flac"}, nil},
		{"all three", source.DirOptions{Prefix: "a", Suffix: ".flac", StartAfter: "a/1.flac"}, []string{"a/3.flac", "ab/4.flac"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantKeys(t, listAll(t, newDir(t, root, &tc.opts)), tc.want...)
		})
	}
}

// TestDirResumeMatchesFullListing resumes a listing after every key and
// checks that the rest is exactly the tail of the full listing.
func TestDirResumeMatchesFullListing(t *testing.T) {
	root := t.TempDir()
	files(t, root, "a/b/c", "a/b-", "a-", "a/bc", "a0/x", "ab", "a/b0", "z")
	all := listAll(t, newDir(t, root, nil))
	wantKeys(t, all, "a-", "a/b-", "a/b/c", "a/b0", "a/bc", "a0/x", "ab", "z")
	for i, k := range all.keys {
		rest := listAll(t, newDir(t, root, &source.DirOptions{StartAfter: k}))
		wantKeys(t, rest, all.keys[i+1:]...)
	}
}

// TestDirPrunesSubtrees: subtrees outside Prefix and before StartAfter
// are not read, so an invalid directory name in them yields no error.
func TestDirPrunesSubtrees(t *testing.T) {
	root := t.TempDir()
	files(t, root, "a/1", "b/2", "c/3")
	bad := filepath.Join(root, "a", "\xff")
	if err := os.Mkdir(bad, 0o755); err != nil {
		t.Skipf("the file system refuses a non-UTF-8 name: %v", err)
	}
	files(t, root, "a/\xff/x")
	l := listAll(t, newDir(t, root, nil))
	if len(l.errs) != 1 || !errors.Is(l.errs[0], insitu.InvalidArgument) || !strings.Contains(l.errs[0].Error(), `\xff`) {
		t.Fatalf("full listing errors %v, want one InvalidArgument naming the directory", l.errs)
	}
	if !slices.Equal(l.keys, []string{"a/1", "b/2", "c/3"}) {
		t.Errorf("keys %q", l.keys)
	}
	wantKeys(t, listAll(t, newDir(t, root, &source.DirOptions{Prefix: "b"})), "b/2")
	wantKeys(t, listAll(t, newDir(t, root, &source.DirOptions{StartAfter: "a0"})), "b/2", "c/3")
}

func TestDirInvalidFileNamesAreErrorsAndListingGoesOn(t *testing.T) {
	root := t.TempDir()
	files(t, root, "a", "c")
	if err := os.WriteFile(filepath.Join(root, "b\xfe"), []byte("x"), 0o644); err != nil {
		t.Skipf("the file system refuses a non-UTF-8 name: %v", err)
	}
	long := strings.Repeat("d", 200)
	deep := filepath.Join(root, long, long, long, long, long, long) // keys over 1024 bytes
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(deep, "f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// A file whose key is just over the limit, in a directory under it.
	nearly := filepath.Join(root, long, long, long, long, long)
	if err := os.WriteFile(filepath.Join(nearly, strings.Repeat("e", 100)), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	l := listAll(t, newDir(t, root, nil))
	if !slices.Equal(l.keys, []string{"a", "c"}) {
		t.Errorf("keys %q, want [a c]", l.keys)
	}
	if len(l.errs) != 3 {
		t.Fatalf("errors %v, want 3", l.errs)
	}
	// In key order: the bad file name, then the directory whose keys would
	// all be too long, then the file whose key is.
	for i, frag := range []string{`file "` + root + `/b\xfe"`, "directory", "file"} {
		err := l.errs[i]
		if !errors.Is(err, insitu.InvalidArgument) || !strings.Contains(err.Error(), frag) {
			t.Errorf("error %d: %v, want InvalidArgument about a %s", i, err, frag)
		}
	}
	if !strings.Contains(l.errs[2].Error(), strings.Repeat("e", 100)) {
		t.Errorf("error %v does not name the file", l.errs[2])
	}
}

func TestDirSkipsSinkTempFilesAndSymlinkedDirs(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	files(t, root, "a", "d/b")
	files(t, outside, "target", "dir/inner")
	for _, l := range []struct{ target, link string }{
		{filepath.Join(outside, "target"), "link-to-file"},
		{filepath.Join(outside, "dir"), "link-to-dir"},
		{filepath.Join(outside, "nothing"), "dangling"},
		{"../a", "d/relative-link"},
	} {
		if err := os.Symlink(l.target, filepath.Join(root, filepath.FromSlash(l.link))); err != nil {
			t.Skipf("symlinks unsupported: %v", err)
		}
	}
	files(t, root, ".insitu-tmp-123", "d/.insitu-tmp-abc", ".insitu-tmpnot")
	l := listAll(t, newDir(t, root, nil))
	wantKeys(t, l, ".insitu-tmpnot", "a", "d/b", "d/relative-link", "link-to-file")
	got := map[string]insitu.Object{}
	for _, o := range l.objs {
		got[o.Name.Key] = o
	}
	if o := got["link-to-file"]; o.Size != int64(len("target")) || o.Path != filepath.Join(root, "link-to-file") {
		t.Errorf("link to a file: %+v", o)
	}
	if o := got["d/relative-link"]; o.Size != 1 {
		t.Errorf("relative link: %+v", o)
	}
	// Open and Stat refuse the temp files.
	src := newDir(t, root, nil)
	_, err := src.Open(context.Background(), insitu.Object{Name: insitu.Name{Key: "d/.insitu-tmp-abc"}})
	if !errors.Is(err, insitu.NotFound) {
		t.Errorf("Open of a temp file: %v, want NotFound", err)
	}
}

func TestDirRootErrors(t *testing.T) {
	tmp := t.TempDir()
	file := filepath.Join(tmp, "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		src  *source.DirSource
		code insitu.Code
	}{
		{"missing", newDir(t, filepath.Join(tmp, "missing"), nil), insitu.NotFound},
		{"a file", newDir(t, file, nil), insitu.InvalidArgument},
		{"under a file", newDir(t, filepath.Join(file, "sub"), nil), insitu.InvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := 0
			for obj, err := range tc.src.Objects(context.Background()) {
				n++
				if obj != (insitu.Object{}) || insitu.CodeOf(err) != tc.code {
					t.Errorf("yielded (%+v, %v), want one %v error", obj, err, tc.code)
				}
			}
			if n != 1 {
				t.Errorf("yielded %d items, want 1", n)
			}
		})
	}
}

// TestDirBadArguments checks that Dir returns its argument errors instead
// of a source that fails on use.
func TestDirBadArguments(t *testing.T) {
	for _, tc := range []struct {
		root string
		opts *source.DirOptions
	}{{"", nil}, {"", &source.DirOptions{Bucket: "b"}}, {t.TempDir(), &source.DirOptions{Bucket: "no/slash"}}} {
		if src, err := source.Dir(tc.root, tc.opts); src != nil || !errors.Is(err, insitu.InvalidArgument) {
			t.Errorf("Dir(%q, %+v) = %v, %v; want InvalidArgument", tc.root, tc.opts, src, err)
		}
	}
}

func TestDirCanceledMidListing(t *testing.T) {
	root := t.TempDir()
	files(t, root, "a", "b", "c", "d/e", "f")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var keys []string
	var last error
	for obj, err := range newDir(t, root, nil).Objects(ctx) {
		if err != nil {
			last = err
			continue
		}
		keys = append(keys, obj.Name.Key)
		if len(keys) == 2 {
			cancel()
		}
	}
	if !slices.Equal(keys, []string{"a", "b"}) || last != context.Canceled {
		t.Errorf("keys %q, last error %v; want [a b] and context.Canceled unwrapped", keys, last)
	}
}

func TestDirOpenRefusesNamesOutsideRoot(t *testing.T) {
	parent := t.TempDir()
	root := filepath.Join(parent, "root")
	files(t, parent, "secret", "root/ok")
	src := newDir(t, root, nil)
	ctx := context.Background()
	for _, key := range []string{"../secret", "/etc/passwd", "a/../../secret", "ok\x00", "..", ".", "", "ok/", "a//b",
		strings.Repeat("k", insitu.MaxKeyLen+1), "bad\xffutf8"} {
		name := insitu.Name{Key: key}
		if rc, err := src.Open(ctx, insitu.Object{Name: name, Path: filepath.Join(parent, "secret")}); !errors.Is(err, insitu.InvalidArgument) {
			if rc != nil {
				rc.Close()
			}
			t.Errorf("Open(%q): %v, want InvalidArgument", key, err)
		}
		if _, err := src.Stat(ctx, name); !errors.Is(err, insitu.InvalidArgument) {
			t.Errorf("Stat(%q): %v, want InvalidArgument", key, err)
		}
	}
}

func TestDirOpenAndStat(t *testing.T) {
	root := t.TempDir()
	jpg, err := os.ReadFile(testutil.Testdata(t, "test-image.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	writeTree(t, root, map[string][]byte{"img/test-image.jpg": jpg})
	src := newDir(t, root, &source.DirOptions{Bucket: "b"})
	ctx := context.Background()
	name := insitu.Name{Bucket: "b", Key: "img/test-image.jpg"}

	obj, err := src.Stat(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(root, "img", "test-image.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	if want := (insitu.Object{Name: name, Size: 2246022, Path: filepath.Join(root, "img", "test-image.jpg"),
		Version: fmt.Sprintf("2246022-%d", fi.ModTime().UnixNano())}); obj != want {
		t.Errorf("Stat = %+v, want %+v", obj, want)
	}
	// Open trusts the name, never obj.Path.
	rc, err := src.Open(ctx, insitu.Object{Name: name, Path: "/nonexistent"})
	if err != nil {
		t.Fatal(err)
	}
	h := xxhash.New()
	if _, err := io.Copy(h, rc); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	if got := h.Sum64(); got != 0x4747d15e3ea12932 { // known answer, internal/testdata/README.md
		t.Errorf("xxh64 %016x, want 4747d15e3ea12932", got)
	}

	for _, key := range []string{"img", "missing", "img/test-image.jpg/x", "img/missing/x"} {
		n := insitu.Name{Key: key}
		if _, err := src.Stat(ctx, n); !errors.Is(err, insitu.NotFound) {
			t.Errorf("Stat(%q): %v, want NotFound", key, err)
		}
		if _, err := src.Open(ctx, insitu.Object{Name: n}); !errors.Is(err, insitu.NotFound) {
			t.Errorf("Open(%q): %v, want NotFound", key, err)
		}
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := src.Open(canceled, insitu.Object{Name: name}); err != context.Canceled {
		t.Errorf("Open with a canceled context: %v, want context.Canceled", err)
	}
}

// TestDirUnreadableSubdirectoryChmod is the real-permissions version of
// TestDirUnreadableSubdirectory, for runs as a user chmod binds.
func TestDirUnreadableSubdirectoryChmod(t *testing.T) {
	root := t.TempDir()
	files(t, root, "a", "locked/x", "z")
	locked := filepath.Join(root, "locked")
	if err := os.Chmod(locked, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(locked, 0o755) })
	if _, err := os.ReadDir(locked); err == nil {
		t.Skip("chmod 0 does not stop this user (root) from reading a directory; TestDirUnreadableSubdirectory covers the case")
	}
	l := listAll(t, newDir(t, root, nil))
	if !slices.Equal(l.keys, []string{"a", "z"}) {
		t.Errorf("keys %q, want [a z]", l.keys)
	}
	if len(l.errs) != 1 || !errors.Is(l.errs[0], insitu.PermissionDenied) {
		t.Errorf("errors %v, want one PermissionDenied", l.errs)
	}
}
