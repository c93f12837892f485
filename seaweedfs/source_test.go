package seaweedfs_test

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/seaweedfs"
	"github.com/insitu-data/insitu/sink/sinktest"
)

// list collects a listing's keys and errors.
func list(t *testing.T, src *seaweedfs.Source) (keys []string, errs []error) {
	t.Helper()
	for obj, err := range src.Objects(t.Context()) {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		keys = append(keys, obj.Name.Key)
	}
	return keys, errs
}

// The listing is in bytewise key order however the filer orders names
// within a directory, page after page, with directories that the filer
// made of files (SeaweedFS keeps both "a" and "a/b") listed as objects
// too; Prefix and StartAfter keep the keys that pass.
func TestListingOrderPagesAndFilters(t *testing.T) {
	t.Parallel()
	c := shared(t)
	client := newClient(t, c, nil)
	dir := client.Root() + "/order"
	// Put in an order of their own; "p" is put before "p/q", so the filer
	// makes p a directory that keeps its bytes.
	keys := []string{"a0", "a/c/d", "a b", "a!/x", "a-b", "a.txt", "a/b", "é", "z", "p", "p/q", "p.q", "deep/1/2/3/4", "~"}
	for _, k := range keys {
		filerPut(t, c, dir+"/"+k, []byte(k), "")
	}
	sorted := slices.Sorted(slices.Values(keys))
	for _, page := range []int{1, 2, 3, 1000} {
		src, err := seaweedfs.NewSource(client, "order", &seaweedfs.SourceOptions{PageSize: page})
		if err != nil {
			t.Fatal(err)
		}
		got, errs := list(t, src)
		if len(errs) > 0 || !slices.Equal(got, sorted) {
			t.Errorf("PageSize %d: listed\n  %q, %v\nwant\n  %q", page, got, errs, sorted)
		}
	}
	// "p" reads as the object it was, through the volume servers.
	src, _ := seaweedfs.NewSource(client, "order", nil)
	if b, err := readAll(t, src, insitu.Object{Name: insitu.Name{Key: "p"}}); err != nil || string(b) != "p" {
		t.Errorf("Open(p), a directory holding bytes: %q, %v", b, err)
	}
	for _, tc := range []struct {
		prefix, after string
	}{
		{"a", ""}, {"a/", ""}, {"a/c/", ""}, {"a/c", ""}, {"deep/1/2/", ""}, {"nothing/", ""}, {"a.txt/", ""},
		{"", "a/"}, {"", "a-b"}, {"", "a/b"}, {"a", "a/b"}, {"", "z"}, {"", "~"}, {"p", "p"},
	} {
		src, err := seaweedfs.NewSource(client, "order", &seaweedfs.SourceOptions{Prefix: tc.prefix, StartAfter: tc.after, PageSize: 2})
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, k := range sorted {
			if strings.HasPrefix(k, tc.prefix) && k > tc.after {
				want = append(want, k)
			}
		}
		got, errs := list(t, src)
		if len(errs) > 0 || !slices.Equal(got, want) {
			t.Errorf("Prefix %q, StartAfter %q: listed %q, %v; want %q", tc.prefix, tc.after, got, errs, want)
		}
	}
}

// Files whose paths are not valid insitu names are yielded as
// InvalidArgument errors naming the path, and the listing goes on.
func TestListingInvalidNames(t *testing.T) {
	t.Parallel()
	c := shared(t)
	client := newClient(t, c, nil)
	dir := client.Root() + "/invalid"
	filerPut(t, c, dir+"/good1", []byte("1"), "")
	filerPut(t, c, dir+"/nul\x00byte", []byte("2"), "")
	filerPut(t, c, dir+"/zz/good2", []byte("3"), "")
	// A key of 5 × 250 bytes and more: over insitu.MaxKeyLen, but each
	// segment is within the filer's limit of 255.
	long := strings.Repeat(strings.Repeat("d", 250)+"/", 5)
	filerPut(t, c, dir+"/long/"+long+"file", []byte("4"), "")
	filerPut(t, c, dir+"/long/ok", []byte("5"), "")
	src, err := seaweedfs.NewSource(client, "invalid", nil)
	if err != nil {
		t.Fatal(err)
	}
	keys, errs := list(t, src)
	if want := []string{"good1", "long/ok", "zz/good2"}; !slices.Equal(keys, want) {
		t.Errorf("listed %q, want %q", keys, want)
	}
	if len(errs) != 2 {
		t.Fatalf("%d errors, want 2: %v", len(errs), errs)
	}
	for _, err := range errs {
		if !errors.Is(err, insitu.InvalidArgument) {
			t.Errorf("error %v; want InvalidArgument", err)
		}
	}
	if msg := errs[0].Error() + errs[1].Error(); !strings.Contains(msg, `nul\x00byte`) || !strings.Contains(msg, "/long/dddd") {
		t.Errorf("errors do not name the paths: %v", errs)
	}
}

// Chunks that do not tile the file (a write at an offset over older
// bytes) are read through the filer, which assembles them; a text file the
// volume server stores compressed reads back as it was.
func TestOpenThroughFilerAndCompressed(t *testing.T) {
	t.Parallel()
	c := shared(t)
	logs := &logRecorder{}
	client := newClient(t, c, &seaweedfs.Options{Logger: slog.New(logs)})
	dir := client.Root() + "/read"
	filerPut(t, c, dir+"/overlap.bin", bytes.Repeat([]byte("a"), 1000), "")
	req, _ := http.NewRequest(http.MethodPut, c.FilerURL+escape(dir+"/overlap.bin")+"?offset=500", bytes.NewReader(bytes.Repeat([]byte("b"), 100)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if e := filerMeta(t, c, dir+"/overlap.bin"); len(e.Chunks) != 2 {
		t.Fatalf("overlap.bin has %d chunks, want 2 overlapping", len(e.Chunks))
	}
	text := []byte(strings.Repeat("compressible text, ", 5000))
	filerPut(t, c, dir+"/notes.txt", text, "")
	if e := filerMeta(t, c, dir+"/notes.txt"); len(e.Chunks) != 1 || !e.Chunks[0].IsCompressed {
		t.Fatalf("notes.txt: chunks %+v; want one, compressed", e.Chunks)
	}

	src, err := seaweedfs.NewSource(client, "read", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Concat(bytes.Repeat([]byte("a"), 500), bytes.Repeat([]byte("b"), 100), bytes.Repeat([]byte("a"), 400))
	if got, err := readAll(t, src, insitu.Object{Name: insitu.Name{Key: "overlap.bin"}}); err != nil || !bytes.Equal(got, want) {
		t.Errorf("Open(overlap.bin): %q…, %v", got[:min(len(got), 20)], err)
	}
	if m := logs.messages(); len(m) != 1 {
		t.Errorf("logged %q; want one read through the filer", m)
	}
	if got, err := readAll(t, src, insitu.Object{Name: insitu.Name{Key: "notes.txt"}}); err != nil || !bytes.Equal(got, text) {
		t.Errorf("Open(notes.txt): %d bytes, %v; want %d", len(got), err, len(text))
	}
	if m := logs.messages(); len(m) != 1 {
		t.Errorf("logged %q; want the text file read from its volume server", m)
	}
}

// Empty directories are not objects; an empty bucket
// lists nothing; a missing bucket is NotFound, as is a bucket that is a
// file.
func TestListingNotObjects(t *testing.T) {
	t.Parallel()
	c := shared(t)
	client := newClient(t, c, nil)
	filerMkdir(t, c, client.Root()+"/b1/empty/dir")
	filerPut(t, c, client.Root()+"/b1/x", sinktest.Content("x", 10), "")
	filerPut(t, c, client.Root()+"/file", []byte("f"), "")
	for _, tc := range []struct {
		bucket string
		want   []string
		code   insitu.Code
	}{
		{"b1", []string{"x"}, 0},
		{"missing", nil, insitu.NotFound},
		{"file", nil, insitu.NotFound},
	} {
		src, err := seaweedfs.NewSource(client, tc.bucket, nil)
		if err != nil {
			t.Fatal(err)
		}
		keys, errs := list(t, src)
		if !slices.Equal(keys, tc.want) {
			t.Errorf("%s: listed %q, want %q", tc.bucket, keys, tc.want)
		}
		switch {
		case tc.code == 0 && len(errs) > 0:
			t.Errorf("%s: %v", tc.bucket, errs)
		case tc.code != 0 && (len(errs) != 1 || !errors.Is(errs[0], tc.code)):
			t.Errorf("%s: %v; want one %v error", tc.bucket, errs, tc.code)
		case tc.code != 0 && !strings.Contains(errs[0].Error(), client.Root()+"/"+tc.bucket):
			t.Errorf("%s: %v does not name the directory", tc.bucket, errs[0])
		}
	}
}

// Keys with the characters that URLs treat specially go through the
// filer's paths unchanged, both ways.
func TestSpecialCharacters(t *testing.T) {
	t.Parallel()
	c := shared(t)
	client := newClient(t, c, nil)
	sink, _ := seaweedfs.NewSink(client, nil)
	keys := []string{"q?x=1", "hash#frag", "pct%41%zz", "plus+sign", "semi;colon", "sp ace/tab\tx", "amp&eq=", "back\\slash", "quote\"'", "new\nline", "é/日本/ü"}
	for _, k := range keys {
		if _, err := sink.Put(t.Context(), insitu.Name{Bucket: "chars", Key: k}, strings.NewReader(k), int64(len(k))); err != nil {
			t.Errorf("Put(%q): %v", k, err)
		}
	}
	src, _ := seaweedfs.NewSource(client, "chars", nil)
	got, errs := list(t, src)
	if want := slices.Sorted(slices.Values(keys)); len(errs) > 0 || !slices.Equal(got, want) {
		t.Errorf("listed %q, %v; want %q", got, errs, want)
	}
	for _, k := range keys {
		b, err := readAll(t, src, insitu.Object{Name: insitu.Name{Key: k}})
		if err != nil || string(b) != k {
			t.Errorf("Open(%q): %q, %v", k, b, err)
		}
	}
}

// The listing and Stat give each object a Version that changes when its
// bytes are written again, even at the same size at once, and stays when
// they are not: what SkipUnchanged compares.
func TestSourceVersion(t *testing.T) {
	t.Parallel()
	c := shared(t)
	client := newClient(t, c, nil)
	dir := client.Root() + "/versions"
	filerPut(t, c, dir+"/same", []byte("same bytes"), "")
	filerPut(t, c, dir+"/changed", []byte("first"), "")
	src, err := seaweedfs.NewSource(client, "versions", nil)
	if err != nil {
		t.Fatal(err)
	}
	versions := func() map[string]string {
		v := map[string]string{}
		for obj, err := range src.Objects(t.Context()) {
			if err != nil {
				t.Fatal(err)
			}
			if obj.Version == "" {
				t.Fatalf("%s has no version", obj.Name)
			}
			v[obj.Name.Key] = obj.Version
		}
		return v
	}
	before := versions()
	filerPut(t, c, dir+"/changed", []byte("again"), "") // the same size
	after := versions()
	if before["same"] != after["same"] || before["changed"] == after["changed"] || len(after) != 2 {
		t.Fatalf("versions before %v, after rewriting changed %v", before, after)
	}
	if obj, err := src.Stat(t.Context(), insitu.Name{Bucket: "versions", Key: "changed"}); err != nil || obj.Version != after["changed"] {
		t.Fatalf("Stat: %+v, %v; want version %s", obj, err, after["changed"])
	}
}
