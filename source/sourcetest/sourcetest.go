// Package sourcetest holds the conformance suite that every [insitu.Source]
// passes, in the manner of gocloud.dev's blob/drivertest: an
// implementation's tests call [Run] with a [Harness] that makes sources of
// that kind over given objects.
package sourcetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/insitu-data/insitu"
)

// Harness makes the sources under test.
type Harness struct {
	// MakeSource returns a source listing exactly objects (key → contents),
	// freshly created for the test t. The keys are valid insitu keys that
	// can coexist as files (no key is a "directory" of another). Required.
	MakeSource func(t *testing.T, objects map[string][]byte) insitu.Source
	// Bucket is the bucket the source lists its objects in. Default "".
	Bucket string
	// SizesUnknown says that the source lists objects with Size -1 (such as
	// source.Names over a source that cannot stat). Default false: every
	// listed Size must be the object's length.
	SizesUnknown bool
}

// Run runs the suite against the sources h makes, each check as a subtest:
// the listing is in bytewise key order, complete and sized; Open returns the
// exact bytes of 0 B, 1 B and 1 MiB objects, from a listed Object or from a
// Name alone; a missing name is NotFound; breaking out of a listing early
// is fine; two listings agree; Opens run concurrently; a canceled context
// ends the listing.
func Run(t *testing.T, h Harness) {
	if h.MakeSource == nil {
		t.Fatal("sourcetest: Harness.MakeSource is nil")
	}
	tests := []struct {
		name string
		fn   func(*testing.T, Harness)
	}{
		{"ListSortedComplete", testList},
		{"ListEmpty", testListEmpty},
		{"OpenExactBytes", testOpen},
		{"OpenNameOnly", testOpenNameOnly},
		{"OpenMissing", testOpenMissing},
		{"EarlyBreak", testEarlyBreak},
		{"ListTwice", testListTwice},
		{"ConcurrentOpens", testConcurrentOpens},
		{"CanceledListing", testCanceledListing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, h) })
	}
}

// Content returns n deterministic pseudo-random bytes derived from seed.
func Content(seed string, n int) []byte {
	r := rand.New(rand.NewPCG(xxhash.Sum64String(seed), 0))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// fixture is the object set most checks use: keys whose bytewise order
// differs from a naive directory walk ("a-b" < "a.txt" < "a/b" < "a0"),
// nested and non-ASCII keys, and objects of 0 B, 1 B and 1 MiB.
func fixture() map[string][]byte {
	objs := map[string][]byte{}
	for _, k := range []string{"a-b", "a.txt", "a/b", "a/c/d.txt", "a0", "z/y/x", "z/é/ü.txt", "~tilde"} {
		objs[k] = Content(k, 100+len(k))
	}
	objs["sizes/empty"] = []byte{}
	objs["sizes/one"] = []byte{'x'}
	objs["sizes/mib"] = Content("mib", 1<<20)
	return objs
}

func sortedKeys(objs map[string][]byte) []string {
	keys := make([]string, 0, len(objs))
	for k := range objs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// list collects a whole listing, failing the test on any error.
func list(t *testing.T, src insitu.Source) []insitu.Object {
	t.Helper()
	var objs []insitu.Object
	for obj, err := range src.Objects(context.Background()) {
		if err != nil {
			t.Fatalf("listing: unexpected error: %v", err)
		}
		objs = append(objs, obj)
	}
	return objs
}

func keysOf(objs []insitu.Object) []string {
	keys := make([]string, len(objs))
	for i, o := range objs {
		keys[i] = o.Name.Key
	}
	return keys
}

// read opens obj and returns its bytes.
func read(ctx context.Context, src insitu.Source, obj insitu.Object) ([]byte, error) {
	rc, err := src.Open(ctx, obj)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	_, err = io.Copy(&buf, rc)
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	return buf.Bytes(), err
}

// sameBytes compares by length and XXH64, to keep 1 MiB out of messages.
func sameBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if len(got) != len(want) || xxhash.Sum64(got) != xxhash.Sum64(want) || !bytes.Equal(got, want) {
		t.Errorf("%s: got %d bytes (xxh64 %016x), want %d bytes (xxh64 %016x)",
			what, len(got), xxhash.Sum64(got), len(want), xxhash.Sum64(want))
	}
}

func testList(t *testing.T, h Harness) {
	objs := fixture()
	src := h.MakeSource(t, objs)
	got := list(t, src)
	want := sortedKeys(objs)
	if keys := keysOf(got); !slices.Equal(keys, want) {
		t.Fatalf("listed keys:\n  %q\nwant (bytewise order):\n  %q", keys, want)
	}
	for _, o := range got {
		if o.Name.Bucket != h.Bucket {
			t.Errorf("%s: bucket %q, want %q", o.Name, o.Name.Bucket, h.Bucket)
		}
		want := int64(len(objs[o.Name.Key]))
		if h.SizesUnknown {
			want = -1
		}
		if o.Size != want {
			t.Errorf("%s: Size %d, want %d", o.Name, o.Size, want)
		}
	}
}

func testListEmpty(t *testing.T, h Harness) {
	if got := list(t, h.MakeSource(t, map[string][]byte{})); len(got) != 0 {
		t.Errorf("empty source listed %d objects: %q", len(got), keysOf(got))
	}
}

func testOpen(t *testing.T, h Harness) {
	objs := fixture()
	src := h.MakeSource(t, objs)
	n := 0
	for _, o := range list(t, src) {
		got, err := read(context.Background(), src, o)
		if err != nil {
			t.Errorf("Open(%s): %v", o.Name, err)
			continue
		}
		sameBytes(t, "Open("+o.Name.String()+")", got, objs[o.Name.Key])
		n++
	}
	if n != len(objs) {
		t.Errorf("opened %d objects, want %d", n, len(objs))
	}
}

func testOpenNameOnly(t *testing.T, h Harness) {
	objs := fixture()
	src := h.MakeSource(t, objs)
	for _, k := range []string{"sizes/empty", "sizes/one", "sizes/mib", "z/é/ü.txt"} {
		name := insitu.Name{Bucket: h.Bucket, Key: k}
		got, err := read(context.Background(), src, insitu.Object{Name: name})
		if err != nil {
			t.Errorf("Open(Object{Name: %s}): %v", name, err)
			continue
		}
		sameBytes(t, "Open("+name.String()+")", got, objs[k])
	}
}

func testOpenMissing(t *testing.T, h Harness) {
	src := h.MakeSource(t, fixture())
	// "a" and "z/y" are prefixes of keys, not objects.
	for _, k := range []string{"missing", "a/missing/x", "a", "z/y", "a/b/c"} {
		name := insitu.Name{Bucket: h.Bucket, Key: k}
		rc, err := src.Open(context.Background(), insitu.Object{Name: name})
		if err == nil {
			rc.Close()
			t.Errorf("Open(%s) of a missing object succeeded", name)
			continue
		}
		if !errors.Is(err, insitu.NotFound) {
			t.Errorf("Open(%s) of a missing object: %v (code %v), want NotFound", name, err, insitu.CodeOf(err))
		}
	}
}

func testEarlyBreak(t *testing.T, h Harness) {
	src := h.MakeSource(t, fixture())
	all := keysOf(list(t, src))
	for _, stop := range []int{1, 3} {
		var got []string
		for obj, err := range src.Objects(context.Background()) {
			if err != nil {
				t.Fatalf("listing: %v", err)
			}
			got = append(got, obj.Name.Key)
			if len(got) == stop {
				break
			}
		}
		if !slices.Equal(got, all[:stop]) {
			t.Errorf("first %d keys: %q, want %q", stop, got, all[:stop])
		}
	}
	// The source still works after abandoned listings.
	if again := keysOf(list(t, src)); !slices.Equal(again, all) {
		t.Errorf("listing after early breaks: %q, want %q", again, all)
	}
}

func testListTwice(t *testing.T, h Harness) {
	src := h.MakeSource(t, fixture())
	a, b := list(t, src), list(t, src)
	if !slices.Equal(a, b) {
		t.Errorf("two listings differ:\n  %+v\n  %+v", a, b)
	}
}

func testConcurrentOpens(t *testing.T, h Harness) {
	objs := fixture()
	src := h.MakeSource(t, objs)
	listed := list(t, src)
	const workers = 8
	errs := make(chan error, workers*len(listed))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range listed {
				o := listed[(i+w)%len(listed)] // each worker starts elsewhere
				got, err := read(context.Background(), src, o)
				switch {
				case err != nil:
					errs <- fmt.Errorf("Open(%s): %w", o.Name, err)
				case !bytes.Equal(got, objs[o.Name.Key]):
					errs <- fmt.Errorf("Open(%s): %d bytes differ from the %d stored", o.Name, len(got), len(objs[o.Name.Key]))
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func testCanceledListing(t *testing.T, h Harness) {
	src := h.MakeSource(t, fixture())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n := 0
	for _, err := range src.Objects(ctx) {
		n++
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("listing with a canceled context yielded %v, want context.Canceled", err)
		}
		if n > 2*len(fixture()) {
			t.Fatal("listing with a canceled context does not end")
		}
	}
}
