// Package sinktest holds the conformance suite that every [insitu.Sink]
// that stores objects passes, in the manner of gocloud.dev's
// blob/drivertest: an implementation's tests call [Run] with a [Harness]
// that makes sinks of that kind and reads objects back from them.
package sinktest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/insitu-data/insitu"
)

// Harness makes the sinks under test.
type Harness struct {
	// MakeSink returns a new, empty sink for the test t. Required.
	MakeSink func(t *testing.T) insitu.Sink
	// Read returns the bytes stored under name in s, or an error for which
	// errors.Is(err, insitu.NotFound) holds when there is no such object.
	// It must read what the sink stored, not what a cache remembers.
	// Required.
	Read func(t *testing.T, s insitu.Sink, name insitu.Name) ([]byte, error)
	// Bucket is the bucket of the names the suite puts. Default "".
	Bucket string
}

// Run runs the suite against the sinks h makes, each check as a subtest:
// Put/Read roundtrips of 0 B, 1 B, 1 MiB and 16 MiB+1 from readers that
// cannot seek, with known and unknown sizes; PutResult's size and checksum;
// Stat after Put and of a missing name; overwrites; a failing reader, a
// context canceled mid-put and a size mismatch leave nothing (and leave an
// older object whole), a reader failing right at the size too; a size
// mismatch is InvalidArgument whether the input is short, or longer in the
// read that reaches the size or only in a later one, and a longer input is
// read no further than one byte past the size; a nil reader, a size below
// -1 and invalid names are InvalidArgument and store nothing; 64
// concurrent Puts of distinct names; concurrent Puts of one name leave one
// whole version. For a sink that is an [insitu.OriginSink]: PutOrigin
// stores the bytes with the origin that Stat then gives, a Put or a
// PutOrigin over it replaces the origin with none or its own, a failed
// PutOrigin leaves the old object and origin, and an origin over
// insitu.MaxOriginLen is not recorded.
func Run(t *testing.T, h Harness) {
	if h.MakeSink == nil || h.Read == nil {
		t.Fatal("sinktest: Harness.MakeSink and Harness.Read are required")
	}
	tests := []struct {
		name string
		fn   func(*testing.T, Harness)
	}{
		{"Roundtrip", testRoundtrip},
		{"Stat", testStat},
		{"StatMissing", testStatMissing},
		{"Overwrite", testOverwrite},
		{"FailingReaderLeavesNothing", testFailingReader},
		{"CanceledMidPutLeavesNothing", testCanceledMidPut},
		{"CanceledBeforePut", testCanceledBeforePut},
		{"SizeMismatch", testSizeMismatch},
		{"LongInputReadOneBytePastSize", testLongInputProbe},
		{"NilReader", testNilReader},
		{"NegativeSize", testNegativeSize},
		{"InvalidNames", testInvalidNames},
		{"ConcurrentDistinctNames", testConcurrentDistinct},
		{"ConcurrentSameName", testConcurrentSameName},
		{"Origin", testOrigin},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, h) })
	}
}

// InvalidKeys returns keys every sink must refuse with InvalidArgument:
// ".." segments, absolute, NUL, invalid UTF-8, over-long and empty keys.
func InvalidKeys() []string {
	return []string{
		"", "..", ".", "../escape", "a/../../escape", "/abs/path", "/", "a//b", "a/", "./a",
		"nul\x00byte", "../nul\x00", "bad\xffutf8", strings.Repeat("k", insitu.MaxKeyLen+1),
		strings.Repeat("../", 400) + "etc/passwd",
	}
}

// Content returns n deterministic pseudo-random bytes derived from seed.
func Content(seed string, n int) []byte {
	r := rand.New(rand.NewPCG(xxhash.Sum64String(seed), 1))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := i; j < min(i+8, n); j++ {
			b[j] = byte(v)
			v >>= 8
		}
	}
	return b
}

// stream is a reader that cannot seek (nor be type-asserted to anything
// but an io.Reader) and returns at most chunk bytes per Read.
type stream struct {
	data  []byte
	chunk int
}

func (s *stream) Read(p []byte) (int, error) {
	if len(s.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), s.chunk)], s.data)
	s.data = s.data[n:]
	return n, nil
}

func newStream(b []byte) io.Reader { return &stream{data: b, chunk: 100_000} }

func (h Harness) name(key string) insitu.Name { return insitu.Name{Bucket: h.Bucket, Key: key} }

// put stores b under key, failing the test on error, and checks the result.
func put(t *testing.T, s insitu.Sink, name insitu.Name, b []byte, size int64) insitu.PutResult {
	t.Helper()
	res, err := s.Put(context.Background(), name, newStream(b), size)
	if err != nil {
		t.Fatalf("Put(%s, %d bytes, size %d): %v", name, len(b), size, err)
	}
	if res.Name != name || res.Size != int64(len(b)) {
		t.Errorf("Put(%s): result %+v, want Name %s and Size %d", name, res, name, len(b))
	}
	if want := fmt.Sprintf("%016x", xxhash.Sum64(b)); res.Checksum != "" && res.Checksum != want {
		t.Errorf("Put(%s): Checksum %q, want XXH64 %q", name, res.Checksum, want)
	}
	return res
}

// wantStored checks that name holds exactly b.
func wantStored(t *testing.T, h Harness, s insitu.Sink, name insitu.Name, b []byte) {
	t.Helper()
	got, err := h.Read(t, s, name)
	if err != nil {
		t.Errorf("Read(%s): %v", name, err)
		return
	}
	if len(got) != len(b) || xxhash.Sum64(got) != xxhash.Sum64(b) || !bytes.Equal(got, b) {
		t.Errorf("Read(%s): %d bytes (xxh64 %016x), want %d bytes (xxh64 %016x)",
			name, len(got), xxhash.Sum64(got), len(b), xxhash.Sum64(b))
	}
}

// wantNothing checks that name holds nothing.
func wantNothing(t *testing.T, h Harness, s insitu.Sink, name insitu.Name) {
	t.Helper()
	got, err := h.Read(t, s, name)
	if !errors.Is(err, insitu.NotFound) {
		t.Errorf("Read(%s) after a failed Put: %d bytes, %v; want NotFound", name, len(got), err)
	}
	if _, err := s.Stat(context.Background(), name); !errors.Is(err, insitu.NotFound) {
		t.Errorf("Stat(%s) after a failed Put: %v; want NotFound", name, err)
	}
}

func testRoundtrip(t *testing.T, h Harness) {
	s := h.MakeSink(t)
	for _, n := range []int{0, 1, 1 << 20, 16<<20 + 1} {
		for _, known := range []bool{true, false} {
			size := int64(n)
			if !known {
				size = -1
			}
			name := h.name(fmt.Sprintf("roundtrip/%d-%v.bin", n, known))
			b := Content(name.Key, n)
			put(t, s, name, b, size)
			wantStored(t, h, s, name, b)
		}
	}
	// Keys with several levels and non-ASCII segments.
	for _, key := range []string{"top", "a/b/c/d/e", "é/ü ß/日本.txt", "dots/a..b/.hidden", "x-y/z_1"} {
		b := []byte("contents of " + key)
		put(t, s, h.name(key), b, int64(len(b)))
		wantStored(t, h, s, h.name(key), b)
	}
}

func testStat(t *testing.T, h Harness) {
	s := h.MakeSink(t)
	name := h.name("stat/obj")
	b := Content("stat", 12345)
	put(t, s, name, b, -1)
	obj, err := s.Stat(context.Background(), name)
	if err != nil {
		t.Fatalf("Stat(%s): %v", name, err)
	}
	if obj.Name != name || obj.Size != int64(len(b)) {
		t.Errorf("Stat(%s) = %+v, want Name %s, Size %d", name, obj, name, len(b))
	}
}

func testStatMissing(t *testing.T, h Harness) {
	s := h.MakeSink(t)
	put(t, s, h.name("dir/obj"), []byte("x"), 1)
	for _, key := range []string{"missing", "dir/missing", "dir", "dir/obj/deeper"} {
		if obj, err := s.Stat(context.Background(), h.name(key)); !errors.Is(err, insitu.NotFound) {
			t.Errorf("Stat(%s) = %+v, %v; want NotFound", h.name(key), obj, err)
		}
	}
}

func testOverwrite(t *testing.T, h Harness) {
	s := h.MakeSink(t)
	name := h.name("over/write")
	put(t, s, name, Content("v1", 1<<20), 1<<20)
	v2 := Content("v2", 1000)
	put(t, s, name, v2, 1000)
	wantStored(t, h, s, name, v2)
}

// failing gives the bytes of r, then fails with err: in the Read after the
// last bytes, or in the same one when withLast.
type failing struct {
	r        io.Reader
	err      error
	withLast bool
}

func (f *failing) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, f.err
	}
	if f.withLast && err == nil {
		if s, ok := f.r.(*stream); ok && len(s.data) == 0 {
			return n, f.err
		}
	}
	return n, err
}

var errBoom = errors.New("sinktest: the input broke")

func testFailingReader(t *testing.T, h Harness) {
	s := h.MakeSink(t)
	old := h.name("fail/old")
	oldBytes := Content("old", 3000)
	put(t, s, old, oldBytes, -1)
	for _, tc := range []struct {
		name     insitu.Name
		size     int64
		withLast bool
	}{
		{h.name("fail/new"), -1, false},
		{h.name("fail/new-sized"), 2 << 20, false},
		{old, -1, false},
		// The reader gives all the bytes of its size, then fails: the
		// object must not be stored whole (it did not end well).
		{h.name("fail/at-size"), 1 << 20, false},
		{h.name("fail/at-size-with-last"), 1 << 20, true},
		{h.name("fail/unknown-with-last"), -1, true},
	} {
		r := &failing{r: newStream(Content("partial", 1<<20)), err: errBoom, withLast: tc.withLast}
		_, err := s.Put(context.Background(), tc.name, r, tc.size)
		if !errors.Is(err, errBoom) {
			t.Errorf("Put(%s, size %d) from a failing reader: %v; want an error wrapping the reader's", tc.name, tc.size, err)
		}
		if tc.name != old {
			wantNothing(t, h, s, tc.name)
		}
	}
	wantStored(t, h, s, old, oldBytes) // the failed overwrite left it whole
}

// cancelingReader cancels its context after the first Read, then keeps
// giving data up to its end, so a sink that ignores ctx would store it.
type cancelingReader struct {
	r      io.Reader
	cancel context.CancelFunc
	reads  int
}

func (c *cancelingReader) Read(p []byte) (int, error) {
	c.reads++
	if c.reads == 2 {
		c.cancel()
	}
	return c.r.Read(p)
}

func testCanceledMidPut(t *testing.T, h Harness) {
	s := h.MakeSink(t)
	old := h.name("cancel/old")
	oldBytes := Content("old", 5000)
	put(t, s, old, oldBytes, -1)
	for _, name := range []insitu.Name{h.name("cancel/new"), old} {
		ctx, cancel := context.WithCancel(context.Background())
		data := Content("canceled", 4<<20)
		_, err := s.Put(ctx, name, &cancelingReader{r: newStream(data), cancel: cancel}, int64(len(data)))
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Put(%s) with ctx canceled midway: %v; want context.Canceled", name, err)
		}
		if name != old {
			wantNothing(t, h, s, name)
		}
	}
	wantStored(t, h, s, old, oldBytes)
}

func testCanceledBeforePut(t *testing.T, h Harness) {
	s := h.MakeSink(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	name := h.name("precanceled")
	if _, err := s.Put(ctx, name, newStream([]byte("abc")), 3); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with a canceled ctx: %v; want context.Canceled", err)
	}
	wantNothing(t, h, s, name)
}

func testSizeMismatch(t *testing.T, h Harness) {
	s := h.MakeSink(t)
	old := h.name("size/old")
	oldBytes := []byte("old contents")
	put(t, s, old, oldBytes, int64(len(oldBytes)))
	for _, tc := range []struct {
		key  string
		n    int
		size int64
	}{
		{"size/short", 1000, 1001},
		{"size/long", 1001, 1000},
		{"size/empty", 0, 1},
		{"size/zero", 1, 0},
		{"size/old", 10, 11},
		// The stream gives 100,000 bytes a Read: the extra byte comes in
		// a Read of its own, after exactly the size.
		{"size/long-later", 200_001, 200_000},
		{"size/short-chunk", 200_000, 200_001},
		{"size/much-longer", 1 << 20, 300_000},
	} {
		name := h.name(tc.key)
		_, err := s.Put(context.Background(), name, newStream(Content(tc.key, tc.n)), tc.size)
		if !errors.Is(err, insitu.InvalidArgument) {
			t.Errorf("Put(%s) of %d bytes with size %d: %v; want InvalidArgument", name, tc.n, tc.size, err)
		}
		if name != old {
			wantNothing(t, h, s, name)
		}
	}
	wantStored(t, h, s, old, oldBytes)
}

// endless gives bytes for ever and counts them.
type endless struct{ n int64 }

func (e *endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	e.n += int64(len(p))
	return len(p), nil
}

func testLongInputProbe(t *testing.T, h Harness) {
	s := h.MakeSink(t)
	for _, size := range []int64{0, 1000, 300_000} {
		name := h.name(fmt.Sprintf("probe/%d", size))
		r := &endless{}
		_, err := s.Put(context.Background(), name, r, size)
		if !errors.Is(err, insitu.InvalidArgument) {
			t.Errorf("Put(%s) of an endless input with size %d: %v; want InvalidArgument", name, size, err)
		}
		if r.n > size+1 {
			t.Errorf("Put(%s) with size %d read %d bytes of an endless input; want at most %d", name, size, r.n, size+1)
		}
		wantNothing(t, h, s, name)
	}
}

func testNilReader(t *testing.T, h Harness) {
	s := h.MakeSink(t)
	name := h.name("nil-reader")
	for _, size := range []int64{0, -1} {
		if _, err := s.Put(context.Background(), name, nil, size); !errors.Is(err, insitu.InvalidArgument) {
			t.Errorf("Put(%s, nil reader, size %d): %v; want InvalidArgument", name, size, err)
		}
	}
	wantNothing(t, h, s, name)
}

func testNegativeSize(t *testing.T, h Harness) {
	s := h.MakeSink(t)
	name := h.name("negative-size")
	if _, err := s.Put(context.Background(), name, newStream([]byte("abc")), -2); !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("Put(%s, size -2): %v; want InvalidArgument", name, err)
	}
	wantNothing(t, h, s, name)
}

func testInvalidNames(t *testing.T, h Harness) {
	s := h.MakeSink(t)
	for _, key := range InvalidKeys() {
		_, err := s.Put(context.Background(), h.name(key), newStream([]byte("x")), 1)
		if !errors.Is(err, insitu.InvalidArgument) {
			t.Errorf("Put(%.40q): %v; want InvalidArgument", key, err)
		}
	}
	if _, err := s.Put(context.Background(), insitu.Name{Bucket: "bad/bucket", Key: "k"}, newStream(nil), 0); !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("Put with an invalid bucket: %v; want InvalidArgument", err)
	}
}

func testConcurrentDistinct(t *testing.T, h Harness) {
	s := h.MakeSink(t)
	const n = 64
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			name := h.name(fmt.Sprintf("conc/%02d/obj", i%8) + fmt.Sprint(i))
			b := Content(name.Key, 64<<10+i)
			res, err := s.Put(context.Background(), name, newStream(b), int64(len(b)))
			if err == nil && res.Size != int64(len(b)) {
				err = fmt.Errorf("size %d, want %d", res.Size, len(b))
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("concurrent Put %d: %v", i, err)
		}
	}
	for i := range n {
		name := h.name(fmt.Sprintf("conc/%02d/obj", i%8) + fmt.Sprint(i))
		wantStored(t, h, s, name, Content(name.Key, 64<<10+i))
	}
}

func testConcurrentSameName(t *testing.T, h Harness) {
	s := h.MakeSink(t)
	name := h.name("same/name")
	const n = 16
	versions := map[uint64]int{}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		b := Content(fmt.Sprint("version", i), 256<<10+i*1000)
		versions[xxhash.Sum64(b)] = len(b)
		wg.Go(func() {
			_, errs[i] = s.Put(context.Background(), name, newStream(b), int64(len(b)))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("concurrent Put %d of one name: %v", i, err)
		}
	}
	got, err := h.Read(t, s, name)
	if err != nil {
		t.Fatalf("Read(%s): %v", name, err)
	}
	if l, ok := versions[xxhash.Sum64(got)]; !ok || l != len(got) {
		t.Errorf("Read(%s): %d bytes (xxh64 %016x) that are none of the versions put: a torn object", name, len(got), xxhash.Sum64(got))
	}
}

func testOrigin(t *testing.T, h Harness) {
	s, ok := h.MakeSink(t).(insitu.OriginSink)
	if !ok {
		t.Skip("not an insitu.OriginSink")
	}
	ctx := context.Background()
	name := h.name("origin/out.bin")
	o1 := insitu.Origin{Input: insitu.Name{Bucket: "in", Key: "a/in.bin"}, Version: "7-1", Transform: "t", Args: insitu.ArgsDigest("")}
	o2 := o1
	o2.Version = "8-2"
	statOrigin := func(want string, what string) {
		t.Helper()
		obj, err := s.Stat(ctx, name)
		if err != nil {
			t.Fatalf("Stat after %s: %v", what, err)
		}
		if obj.Origin != want {
			t.Errorf("Stat after %s: Origin %q, want %q", what, obj.Origin, want)
		}
	}
	putOrigin := func(b []byte, o insitu.Origin) {
		t.Helper()
		res, err := s.PutOrigin(ctx, name, newStream(b), -1, o)
		if err != nil || res.Size != int64(len(b)) {
			t.Fatalf("PutOrigin: %+v, %v", res, err)
		}
	}
	v1 := Content("origin-v1", 5000)
	putOrigin(v1, o1)
	wantStored(t, h, s, name, v1)
	statOrigin(o1.String(), "PutOrigin")

	// A failed PutOrigin leaves the old bytes and origin.
	_, err := s.PutOrigin(ctx, name, &failing{r: newStream(Content("broken", 1<<20)), err: errBoom}, -1, o2)
	if !errors.Is(err, errBoom) {
		t.Errorf("PutOrigin of a failing reader: %v, want its error", err)
	}
	wantStored(t, h, s, name, v1)
	statOrigin(o1.String(), "a failed PutOrigin")

	v2 := Content("origin-v2", 1<<20+3)
	putOrigin(v2, o2)
	wantStored(t, h, s, name, v2)
	statOrigin(o2.String(), "a second PutOrigin")

	// A Put replaces the object and its origin with none.
	v3 := Content("origin-v3", 100)
	put(t, s, name, v3, int64(len(v3)))
	wantStored(t, h, s, name, v3)
	statOrigin("", "a Put")

	// An empty object can have an origin too.
	putOrigin(nil, o1)
	statOrigin(o1.String(), "PutOrigin of an empty object")

	// An origin too long to record: the bytes alone.
	long := o1
	long.Transform = strings.Repeat("\u00e9", insitu.MaxOriginLen/2)
	v4 := Content("origin-v4", 10)
	putOrigin(v4, long)
	wantStored(t, h, s, name, v4)
	statOrigin("", "PutOrigin with an origin over MaxOriginLen")
}
