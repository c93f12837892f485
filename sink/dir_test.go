package sink_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/testutil"
	"github.com/insitu-data/insitu/sink"
	"github.com/insitu-data/insitu/sink/sinktest"
)

// tree returns every path under dir with its size (-1 for directories).
func tree(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	m := map[string]int64{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		size := int64(-1)
		if !d.IsDir() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			size = fi.Size()
		}
		m[p] = size
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// noTempFiles fails the test if a temporary file of the sink is left under root.
func noTempFiles(t *testing.T, root string) {
	t.Helper()
	if _, err := os.Stat(root); errors.Is(err, fs.ErrNotExist) {
		return
	}
	for p := range tree(t, root) {
		if strings.HasPrefix(filepath.Base(p), sink.TempPrefix) {
			t.Errorf("temporary file left behind: %s", p)
		}
	}
}

// readDir reads an object back through source.Dir, which maps a missing
// file to NotFound.
func readDir(t *testing.T, s insitu.Sink, name insitu.Name) ([]byte, error) {
	src := newDirSource(t, s.(*sink.DirSink).Root())
	rc, err := src.Open(context.Background(), insitu.Object{Name: name})
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func TestDirConformance(t *testing.T) {
	for _, tc := range []struct {
		name   string
		bucket string
		opts   *sink.DirOptions
	}{
		{"defaults", "", nil},
		{"bucket", "bk", nil},
		{"nosync", "", &sink.DirOptions{NoSync: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sinktest.Run(t, sinktest.Harness{
				Bucket: tc.bucket,
				Read:   readDir,
				MakeSink: func(t *testing.T) insitu.Sink {
					root := filepath.Join(t.TempDir(), "out") // created by the first Put
					t.Cleanup(func() { noTempFiles(t, root) })
					return newDir(t, root, tc.opts)
				},
			})
		})
	}
}

func TestDirWritesRootKeyAndIgnoresBucket(t *testing.T) {
	root := filepath.Join(t.TempDir(), "a", "b")
	s := newDir(t, root, nil)
	for _, tc := range []struct{ file, sum string }{
		{"test-text.txt", "4d274921566a7ab3"}, // known answers, internal/testdata/README.md
		{"test-image.jpg", "4747d15e3ea12932"},
	} {
		f, err := os.Open(testutil.Testdata(t, tc.file))
		if err != nil {
			t.Fatal(err)
		}
		name := insitu.Name{Bucket: "ignored", Key: "in/" + tc.file}
		res, err := s.Put(context.Background(), name, f, -1)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if res.Checksum != tc.sum || res.Name != name || res.Owner != "" {
			t.Errorf("%s: result %+v, want checksum %s", tc.file, res, tc.sum)
		}
		p := filepath.Join(root, "in", tc.file)
		fi, err := os.Stat(p)
		if err != nil || fi.Size() != res.Size {
			t.Errorf("%s: file %s: %v, size %v; want %d bytes", tc.file, p, err, fi, res.Size)
		}
		obj, err := s.Stat(context.Background(), name)
		if err != nil || obj != (insitu.Object{Name: name, Size: res.Size, Path: p}) {
			t.Errorf("Stat = %+v, %v", obj, err)
		}
	}
}

// TestDirBadNamesTouchNothingOutsideRoot puts and stats hostile names and
// checks that the root's parent is byte-for-byte untouched (the root is not
// even created).
func TestDirBadNamesTouchNothingOutsideRoot(t *testing.T) {
	parent := t.TempDir()
	if err := os.WriteFile(filepath.Join(parent, "escape"), []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := tree(t, parent)
	s := newDir(t, filepath.Join(parent, "root"), nil)
	keys := append(sinktest.InvalidKeys(), "x/"+sink.TempPrefix+"abc", sink.TempPrefix+"1")
	for _, key := range keys {
		name := insitu.Name{Key: key}
		if _, err := s.Put(context.Background(), name, strings.NewReader("evil"), 4); !errors.Is(err, insitu.InvalidArgument) {
			t.Errorf("Put(%.40q): %v, want InvalidArgument", key, err)
		}
		if _, err := s.Stat(context.Background(), name); err == nil {
			t.Errorf("Stat(%.40q) succeeded", key)
		}
	}
	after := tree(t, parent)
	if len(after) != len(before) {
		t.Errorf("the root's parent changed:\nbefore %v\nafter  %v", before, after)
	}
	for p, size := range before {
		if after[p] != size {
			t.Errorf("%s: size %d, was %d", p, after[p], size)
		}
	}
}

func TestDirKeyCollisions(t *testing.T) {
	root := t.TempDir()
	s := newDir(t, root, nil)
	ctx := context.Background()
	put := func(key, data string) error {
		_, err := s.Put(ctx, insitu.Name{Key: key}, strings.NewReader(data), int64(len(data)))
		return err
	}
	if err := put("a", "file a"); err != nil {
		t.Fatal(err)
	}
	if err := put("d/e", "file d/e"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ key, frag string }{
		{"a/b", `collides with the object "a"`},
		{"a/b/c", `collides with the object "a"`},
		{"d", "is a directory"},
		{"d/e/f", `collides with the object "d/e"`},
	} {
		err := put(tc.key, "new")
		if !errors.Is(err, insitu.InvalidArgument) || !strings.Contains(err.Error(), tc.frag) {
			t.Errorf("Put(%s): %v, want InvalidArgument containing %q", tc.key, err, tc.frag)
		}
	}
	for key, want := range map[string]string{"a": "file a", "d/e": "file d/e"} {
		if b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(key))); err != nil || string(b) != want {
			t.Errorf("%s: %q, %v; want %q intact", key, b, err, want)
		}
	}
	noTempFiles(t, root)
}

// TestDirRootUnderAFile: a root that cannot be a directory fails every Put,
// as root or not, and creates nothing.
func TestDirRootUnderAFile(t *testing.T) {
	parent := t.TempDir()
	file := filepath.Join(parent, "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := tree(t, parent)
	for _, root := range []string{file, filepath.Join(file, "sub")} {
		s := newDir(t, root, nil)
		_, err := s.Put(context.Background(), insitu.Name{Key: "k/v"}, strings.NewReader("data"), 4)
		if !errors.Is(err, insitu.InvalidArgument) || !strings.Contains(err.Error(), "sink root") {
			t.Errorf("root %s: %v, want InvalidArgument about the sink root", root, err)
		}
	}
	if after := tree(t, parent); len(after) != len(before) {
		t.Errorf("files appeared: %v", after)
	}
	if s, err := sink.Dir("", nil); s != nil || !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("sink.Dir of an empty root: %v, %v; want InvalidArgument", s, err)
	}
}

func TestDirUnwritableDestination(t *testing.T) {
	root := t.TempDir()
	if err := os.Chmod(root, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(root, 0o755) })
	probe := filepath.Join(root, "probe")
	if err := os.WriteFile(probe, nil, 0o644); err == nil {
		os.Remove(probe)
		t.Skip("chmod 0500 does not stop this user (root) from writing; TestDirRootUnderAFile covers an unusable destination")
	}
	s := newDir(t, root, nil)
	for _, key := range []string{"k", "sub/k"} {
		_, err := s.Put(context.Background(), insitu.Name{Key: key}, strings.NewReader("data"), 4)
		if !errors.Is(err, insitu.PermissionDenied) {
			t.Errorf("Put(%s) into a read-only directory: %v, want PermissionDenied", key, err)
		}
	}
}

// TestDirPutInProgressIsInvisible holds a Put midway and checks that only
// its temporary file exists, which source.Dir does not list.
func TestDirPutInProgressIsInvisible(t *testing.T) {
	root := t.TempDir()
	s := newDir(t, root, nil)
	name := insitu.Name{Key: "dir/obj"}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := s.Put(context.Background(), name, pr, -1)
		done <- err
	}()
	// Write returns once Put has read the bytes: its temp file exists.
	if _, err := pw.Write([]byte("first half ")); err != nil {
		t.Fatal(err)
	}
	temps, _ := filepath.Glob(filepath.Join(root, "dir", sink.TempPrefix+"*"))
	if len(temps) != 1 {
		t.Errorf("temporary files during the Put: %q, want 1", temps)
	}
	if _, err := os.Stat(filepath.Join(root, "dir", "obj")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("final file visible during the Put: %v", err)
	}
	for obj, err := range newDirSource(t, root).Objects(context.Background()) {
		t.Errorf("listed during the Put: %+v, %v", obj, err)
	}
	if _, err := s.Stat(context.Background(), name); !errors.Is(err, insitu.NotFound) {
		t.Errorf("Stat during the Put: %v, want NotFound", err)
	}
	pw.Write([]byte("second half"))
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var keys []string
	for obj, err := range newDirSource(t, root).Objects(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, obj.Name.Key)
	}
	if !slices.Equal(keys, []string{"dir/obj"}) {
		t.Errorf("listed %q after the Put", keys)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "dir", "obj")); string(b) != "first half second half" {
		t.Errorf("stored %q", b)
	}
}

// TestDirCopyFromSource copies a directory through source.Dir to sink.Dir
// and checks every checksum.
func TestDirCopyFromSource(t *testing.T) {
	in := t.TempDir()
	for _, f := range []string{"test-text.txt", "test-audio-flac.flac", "test-audio-wav.wav"} {
		b, err := os.ReadFile(testutil.Testdata(t, f))
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Join(in, "sub"), 0o755)
		if err := os.WriteFile(filepath.Join(in, "sub", f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	src := newDirSource(t, in)
	dst := newDir(t, filepath.Join(t.TempDir(), "out"), nil)
	n := 0
	for obj, err := range src.Objects(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		rc, err := src.Open(ctx, obj)
		if err != nil {
			t.Fatal(err)
		}
		res, err := dst.Put(ctx, obj.Name, rc, obj.Size)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		back, err := readDir(t, dst, obj.Name)
		orig, _ := os.ReadFile(obj.Path)
		if err != nil || string(back) != string(orig) || res.Size != int64(len(orig)) {
			t.Errorf("%s: copy differs (%v)", obj.Name, err)
		}
		n++
	}
	if n != 3 {
		t.Errorf("copied %d objects, want 3", n)
	}
}

func TestDirPutNilReader(t *testing.T) {
	root := filepath.Join(t.TempDir(), "out")
	s := newDir(t, root, nil)
	for _, size := range []int64{-1, 0, 5} {
		_, err := s.Put(context.Background(), insitu.Name{Key: "k"}, nil, size)
		if !errors.Is(err, insitu.InvalidArgument) || !strings.Contains(err.Error(), "nil reader") {
			t.Errorf("Put(nil reader, size %d): %v, want InvalidArgument \"nil reader\"", size, err)
		}
	}
	if _, err := os.Stat(root); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the root was created for a nil reader: %v", err)
	}
}

// TestDirSymlinks: a Put follows a symbolic link that stays inside the
// root and refuses one that leads out of it, writing nothing there.
func TestDirSymlinks(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "real"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real", filepath.Join(root, "alias")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "out")); err != nil {
		t.Fatal(err)
	}
	s := newDir(t, root, nil)
	ctx := context.Background()
	if _, err := s.Put(ctx, insitu.Name{Key: "alias/in"}, strings.NewReader("inside"), 6); err != nil {
		t.Fatalf("Put through a link inside the root: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "real", "in")); err != nil || string(b) != "inside" {
		t.Errorf("real/in: %q, %v", b, err)
	}
	for _, key := range []string{"out/x", "out/new/dir/x"} {
		_, err := s.Put(ctx, insitu.Name{Key: key}, strings.NewReader("escape"), 6)
		if !errors.Is(err, insitu.PermissionDenied) || !strings.Contains(err.Error(), "leads out of the sink root") {
			t.Errorf("Put(%s) through a link out of the root: %v, want PermissionDenied", key, err)
		}
	}
	if got := tree(t, outside); len(got) != 1 { // outside itself
		t.Errorf("written outside the root: %v", got)
	}
	// Stat goes through the root too: a file behind a link out of it is
	// not the sink's.
	if err := os.WriteFile(filepath.Join(outside, "there"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx, insitu.Name{Key: "out/there"}); !errors.Is(err, insitu.PermissionDenied) {
		t.Errorf("Stat(out/there) through a link out of the root: %v, want PermissionDenied", err)
	}
	if obj, err := s.Stat(ctx, insitu.Name{Key: "alias/in"}); err != nil || obj.Size != 6 {
		t.Errorf("Stat(alias/in) through a link inside the root = %+v, %v", obj, err)
	}
	noTempFiles(t, root)
}

// TestDirLongKeySegment stores a key whose last segment is as long as a
// Linux file name can be: the temporary name must not be longer.
func TestDirLongKeySegment(t *testing.T) {
	root := t.TempDir()
	key := "d/" + strings.Repeat("x", 255)
	res, err := newDir(t, root, nil).Put(context.Background(), insitu.Name{Key: key}, strings.NewReader("long"), 4)
	if err != nil || res.Size != 4 {
		t.Fatalf("Put(255-byte segment) = %+v, %v", res, err)
	}
	if b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(key))); err != nil || string(b) != "long" {
		t.Errorf("read back %q, %v", b, err)
	}
}
