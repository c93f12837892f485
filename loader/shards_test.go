package loader_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cespare/xxhash/v2"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/loader"
	"github.com/insitu-data/insitu/source"
)

// member is one file of a shard.
type member struct {
	name string
	body []byte
}

// writeShard writes a tar of members to dir/name.
func writeShard(t testing.TB, dir, name string, members []member) {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, m := range members {
		if err := tw.WriteHeader(&tar.Header{Name: m.name, Mode: 0o644, Size: int64(len(m.body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(m.body)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// shardSet writes shards shard-00.tar ... of per samples each, sample
// "sNN-MMMM" with fields "txt" (its key) and "cls" (its number), and
// returns their source.
func shardSet(t testing.TB, shards, per int) *source.DirSource {
	t.Helper()
	dir := t.TempDir()
	for i := range shards {
		var ms []member
		for j := range per {
			key := fmt.Sprintf("d/s%02d-%04d", i, j)
			ms = append(ms, member{key + ".txt", []byte(key)}, member{key + ".cls", []byte(fmt.Sprint(j))})
		}
		writeShard(t, dir, fmt.Sprintf("shard-%02d.tar", i), ms)
	}
	src, err := source.Dir(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// shardEpoch returns the keys of an epoch of shard samples, checking
// their fields.
func shardEpoch(t testing.TB, l *loader.Loader, e int) []string {
	t.Helper()
	var keys []string
	for s, err := range l.Samples(context.Background(), e) {
		if err != nil {
			t.Fatalf("epoch %d: %v", e, err)
		}
		var j int
		fmt.Sscanf(s.Key, "d/s%02d-%04d", new(int), &j)
		if string(s.Fields["txt"]) != s.Key || string(s.Fields["cls"]) != fmt.Sprint(j) || len(s.Fields) != 2 || s.Data != nil {
			t.Fatalf("epoch %d: sample %s of %s: fields %q", e, s.Key, s.Name.Key, s.Fields)
		}
		keys = append(keys, s.Name.Key+"#"+s.Key)
	}
	return keys
}

// TestShards: every sample of every shard once per epoch, in an order
// that depends on the seed and epoch only, shuffled across shards by the
// sample buffer; splits by shard are disjoint and cover the epoch.
func TestShards(t *testing.T) {
	t.Parallel()
	src := shardSet(t, 8, 25)
	o := func(seed uint64, conc int) *loader.Options {
		return &loader.Options{Shards: true, Seed: seed, SampleBuffer: 40, Concurrency: conc, Prefetch: 8}
	}
	a := shardEpoch(t, newLoader(t, src, o(1, 1)), 0)
	b := shardEpoch(t, newLoader(t, src, o(1, 8)), 0)
	if len(a) != 200 || !slices.Equal(a, b) {
		t.Fatalf("%d and %d samples, equal %v", len(a), len(b), slices.Equal(a, b))
	}
	if s := slices.Compact(slices.Sorted(slices.Values(a))); len(s) != 200 {
		t.Fatalf("%d distinct samples", len(s))
	}
	if c := shardEpoch(t, newLoader(t, src, o(2, 4)), 0); slices.Equal(a, c) {
		t.Fatal("another seed gives the same order")
	}
	// Consecutive samples from different shards: the buffer mixes them.
	mixed := 0
	for i := 1; i < len(a); i++ {
		if a[i][:12] != a[i-1][:12] {
			mixed++
		}
	}
	if mixed < 50 {
		t.Errorf("only %d shard changes in 200 samples", mixed)
	}
	none := shardEpoch(t, newLoader(t, src, &loader.Options{Shards: true, Shuffle: loader.ShuffleNone}), 0)
	if !slices.IsSorted(none) {
		t.Error("ShuffleNone: not in shard and member order")
	}
	seen := map[string]bool{}
	for w := range 3 {
		for _, k := range shardEpoch(t, newLoader(t, src, &loader.Options{Shards: true, Seed: 1, Worker: w, Workers: 3}), 1) {
			if seen[k] {
				t.Fatalf("%s in two splits", k)
			}
			seen[k] = true
		}
	}
	if len(seen) != 200 {
		t.Fatalf("splits cover %d of 200", len(seen))
	}
}

// TestShardsResume: stopped at random points and resumed from the JSON
// state, shard samples come as in a run that never stopped.
func TestShardsResume(t *testing.T) {
	t.Parallel()
	src := shardSet(t, 5, 13)
	o := loader.Options{Shards: true, Seed: 9, SampleBuffer: 20, Prefetch: 6}
	whole := newLoader(t, src, &o)
	var want []string
	for e := range 2 {
		want = append(want, shardEpoch(t, whole, e)...)
	}
	r := rand.New(rand.NewPCG(2, 2))
	for range 20 {
		stop := 1 + r.IntN(len(want))
		l := newLoader(t, src, &o)
		var got []string
	run:
		for e := range 2 {
			for s, err := range l.Samples(context.Background(), e) {
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, s.Name.Key+"#"+s.Key)
				if len(got) == stop {
					break run
				}
			}
		}
		saved, _ := json.Marshal(l.State())
		var st loader.State
		if err := json.Unmarshal(saved, &st); err != nil {
			t.Fatal(err)
		}
		// From the state as it is (its shard cursor: only the buffered
		// samples and the shard under way are read again), and without
		// its cursor (every shard before the position is).
		slow := st
		slow.Shard = nil
		for _, st := range []loader.State{st, slow} {
			ro := o
			ro.Resume = &st
			l = newLoader(t, src, &ro)
			resumed := slices.Clone(got)
			for e := st.Epoch; e < 2; e++ {
				resumed = append(resumed, shardEpoch(t, l, e)...)
			}
			if !slices.Equal(resumed, want) {
				t.Fatalf("stopped after %d (state %s, cursor %v): not the samples of a run that never stopped", stop, saved, st.Shard != nil)
			}
		}
	}
}

// readCounter is a source that counts the bytes read from its objects.
type readCounter struct {
	insitu.Source
	n atomic.Int64
}

func (s *readCounter) Open(ctx context.Context, obj insitu.Object) (io.ReadCloser, error) {
	rc, err := s.Source.Open(ctx, obj)
	if err != nil {
		return nil, err
	}
	return &countingReader{rc, &s.n}, nil
}

type countingReader struct {
	io.ReadCloser
	n *atomic.Int64
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	r.n.Add(int64(n))
	return n, err
}

// TestShardsResumeReads: resumed late in an epoch from a state with its
// shard cursor, a loader reads far fewer bytes than by reading every
// shard before the position, for the same samples; a state whose
// buffered sample is not in its shard is an InvalidArgument error.
func TestShardsResumeReads(t *testing.T) {
	t.Parallel()
	src := &readCounter{Source: shardSet(t, 40, 25)}
	o := loader.Options{Shards: true, Seed: 4, SampleBuffer: 30, Prefetch: 8, Concurrency: 2}
	l := newLoader(t, src, &o)
	var st loader.State
	n := 0
	for _, err := range l.Samples(context.Background(), 0) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 900 {
			st = l.State()
			break
		}
	}
	if st.Shard == nil || len(st.Shard.Buffer) != 30 {
		t.Fatalf("state %+v", st)
	}
	slow := st
	slow.Shard = nil
	var rest [2][]string
	var read [2]int64
	for i, st := range []loader.State{st, slow} {
		ro := o
		ro.Resume = &st
		src.n.Store(0)
		rest[i] = shardEpoch(t, newLoader(t, src, &ro), 0)
		read[i] = src.n.Load()
	}
	t.Logf("resumed at 900 of 1000: %d bytes read with the cursor, %d without", read[0], read[1])
	if len(rest[0]) != 100 || !slices.Equal(rest[0], rest[1]) {
		t.Fatalf("%d and %d samples, equal %v", len(rest[0]), len(rest[1]), slices.Equal(rest[0], rest[1]))
	}
	if read[0]*2 > read[1] {
		t.Errorf("with the cursor, %d bytes read; without, %d", read[0], read[1])
	}
	bad := st
	sh := *st.Shard
	sh.Buffer = slices.Clone(sh.Buffer)
	sh.Buffer[3].Key = "d/nope"
	bad.Shard = &sh
	ro := o
	ro.Resume = &bad
	if _, err := first(newLoader(t, src, &ro).Samples(context.Background(), 0)); !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("a buffered sample not in its shard: %v", err)
	}
}

// TestBadShards: a truncated shard yields its whole samples then an
// InvalidArgument error; a member over MaxSampleSize a TooLarge error for
// its sample; a sample without a required field an InvalidArgument error;
// the epoch goes on past each.
func TestBadShards(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeShard(t, dir, "a.tar", []member{
		{"x1.txt", []byte("x1")}, {"x1.cls", []byte("1")},
		{"x2.txt", bytes.Repeat([]byte("x"), 100)}, {"x2.cls", []byte("2")},
		{"x3.txt", []byte("x3")}, // no cls
		{"x4.txt", []byte("x4")}, {"x4.cls", []byte("4")}, {"x4.jpg", []byte("dropped")},
		{"x5.txt", []byte("")}, {"x5.cls", []byte("5")},
	})
	writeShard(t, dir, "b.tar", []member{{"y1.txt", []byte("y1")}, {"y1.cls", []byte("1")}, {"y2.txt", bytes.Repeat([]byte("y"), 2000)}, {"y2.cls", []byte("2")}})
	full, _ := os.ReadFile(filepath.Join(dir, "b.tar"))
	os.WriteFile(filepath.Join(dir, "b.tar"), full[:3000], 0o644) // y1 whole, y2.txt cut
	writeShard(t, dir, "c.tar", []member{{"z1.txt", []byte("z1")}, {"z1.cls", []byte("1")}})
	src, _ := source.Dir(dir, nil)
	l := newLoader(t, src, &loader.Options{Shards: true, Shuffle: loader.ShuffleNone, MaxSampleSize: 50, Fields: []string{"txt", "cls"}})
	var got []string
	for s, err := range l.Samples(context.Background(), 0) {
		if err != nil {
			got = append(got, fmt.Sprintf("%s#%s:%v", s.Name.Key, s.Key, insitu.CodeOf(err)))
			continue
		}
		got = append(got, fmt.Sprintf("%s#%s:%d", s.Name.Key, s.Key, len(s.Fields)))
	}
	want := []string{
		"a.tar#x1:2", "a.tar#x2:too_large", "a.tar#x3:invalid_argument", "a.tar#x4:2", "a.tar#x5:2",
		"b.tar#y1:2", "b.tar#:invalid_argument",
		"c.tar#z1:2",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if st := l.Stats(); st.Samples != 5 || st.Errors != 3 {
		t.Errorf("stats %+v", st)
	}
	if _, err := loader.New(src, &loader.Options{Fields: []string{"txt"}}); !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("Fields without Shards: %v", err)
	}
}

// TestShardFormats: shards written in the USTAR (a long name split into
// its prefix), PAX and GNU formats (long names, a PAX size), with
// directories, links and a global PAX header between the files, yield
// the samples archive/tar reads in them, byte for byte; a header with a
// bad checksum is an InvalidArgument error.
func TestShardFormats(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	long := strings.Repeat("d", 90) + "/" + strings.Repeat("e", 60) // 151 bytes: a ustar prefix
	longer := strings.Repeat("f", 130) + "/" + strings.Repeat("g", 120)
	var want []string
	for i, format := range []tar.Format{tar.FormatUSTAR, tar.FormatPAX, tar.FormatGNU} {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		write := func(h *tar.Header, body []byte) {
			if h.Format = format; h.Typeflag != tar.TypeXGlobalHeader {
				h.Mode = 0o644
			}
			if err := tw.WriteHeader(h); err != nil {
				t.Fatal(err)
			}
			tw.Write(body)
		}
		if format == tar.FormatPAX {
			write(&tar.Header{Typeflag: tar.TypeXGlobalHeader, PAXRecords: map[string]string{"comment": "global"}}, nil)
		}
		write(&tar.Header{Typeflag: tar.TypeDir, Name: "dir/"}, nil)
		names := []string{long + ".a.txt", long + ".cls", "dir/x.txt"}
		if format != tar.FormatUSTAR {
			names = append(names, longer+".bin")
		}
		for j, name := range names {
			body := bytes.Repeat([]byte{byte('a' + j)}, 100*j+i)
			write(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(body))}, body)
			if j == 0 {
				write(&tar.Header{Typeflag: tar.TypeSymlink, Name: "link.txt", Linkname: "dir/x.txt"}, nil)
			}
		}
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		shard := fmt.Sprintf("%d.tar", i)
		os.WriteFile(filepath.Join(dir, shard), b.Bytes(), 0o644)
		// What archive/tar reads, as the loader should yield it.
		tr := tar.NewReader(bytes.NewReader(b.Bytes()))
		var fields []string
		key := ""
		flush := func() {
			if key != "" {
				slices.Sort(fields)
				want = append(want, shard+"#"+key+":"+strings.Join(fields, ","))
			}
			fields = nil
		}
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			if h.Typeflag != tar.TypeReg {
				continue
			}
			body, _ := io.ReadAll(tr)
			base := h.Name[strings.LastIndex(h.Name, "/")+1:]
			k, ext, _ := strings.Cut(base, ".")
			if k = h.Name[:len(h.Name)-len(base)] + k; k != key {
				flush()
				key = k
			}
			fields = append(fields, fmt.Sprintf("%s=%x", ext, xxhash.Sum64(body)))
		}
		flush()
	}
	src, _ := source.Dir(dir, nil)
	l := newLoader(t, src, &loader.Options{Shards: true, Shuffle: loader.ShuffleNone})
	var got []string
	for s, err := range l.Samples(context.Background(), 0) {
		if err != nil {
			t.Fatal(err)
		}
		var fields []string
		for ext, b := range s.Fields {
			fields = append(fields, fmt.Sprintf("%s=%x", ext, xxhash.Sum64(b)))
		}
		slices.Sort(fields)
		got = append(got, s.Name.Key+"#"+s.Key+":"+strings.Join(fields, ","))
	}
	if len(want) != 8 || !slices.Equal(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}

	// A bad checksum in the third header (the link's, between the two
	// members of the first sample): an InvalidArgument error, and no
	// sample of what comes after.
	b, _ := os.ReadFile(filepath.Join(dir, "0.tar"))
	b[2*512+100]++ // the mode
	bad := t.TempDir()
	os.WriteFile(filepath.Join(bad, "0.tar"), b, 0o644)
	src, _ = source.Dir(bad, nil)
	l = newLoader(t, src, &loader.Options{Shards: true, Shuffle: loader.ShuffleNone})
	var codes []string
	for s, err := range l.Samples(context.Background(), 0) {
		codes = append(codes, fmt.Sprintf("%s:%v", s.Key, insitu.CodeOf(err)))
	}
	if want := []string{":invalid_argument"}; !slices.Equal(codes, want) {
		t.Errorf("bad checksum: got %q, want %q", codes, want)
	}
}

// TestSkipIncomplete: with SkipIncomplete, a sample that lacks a field
// is dropped and counted in Stats.Skipped, and a resumed loader skips
// the same ones; without it (the default), it is an InvalidArgument error.
func TestSkipIncomplete(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var ms []member
	for i := range 30 {
		key := fmt.Sprintf("k%02d", i)
		ms = append(ms, member{key + ".txt", []byte(key)})
		if i%3 != 0 {
			ms = append(ms, member{key + ".cls", []byte("c")})
		}
	}
	writeShard(t, dir, "a.tar", ms[:len(ms)/2])
	writeShard(t, dir, "b.tar", ms[len(ms)/2:])
	src, _ := source.Dir(dir, nil)
	o := loader.Options{Shards: true, Seed: 3, SampleBuffer: 5, Fields: []string{"txt", "cls"}, SkipIncomplete: true}
	l := newLoader(t, src, &o)
	var all []string
	for s, err := range l.Samples(context.Background(), 0) {
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, s.Key)
	}
	if st := l.Stats(); len(all) != 20 || st.Samples != 20 || st.Skipped != 10 || st.Errors != 0 {
		t.Fatalf("%d samples, stats %+v; want 20 samples and 10 skipped", len(all), st)
	}
	for stop := 1; stop < len(all); stop += 3 {
		l := newLoader(t, src, &o)
		var got []string
		for s, err := range l.Samples(context.Background(), 0) {
			if err != nil {
				t.Fatal(err)
			}
			if got = append(got, s.Key); len(got) == stop {
				break
			}
		}
		st := l.State()
		ro := o
		ro.Resume = &st
		for s, err := range newLoader(t, src, &ro).Samples(context.Background(), 0) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, s.Key)
		}
		if !slices.Equal(got, all) {
			t.Fatalf("stopped after %d: %q; want %q", stop, got, all)
		}
	}
	o.SkipIncomplete = false
	errs := 0
	for _, err := range newLoader(t, src, &o).Samples(context.Background(), 0) {
		if err != nil {
			if !errors.Is(err, insitu.InvalidArgument) {
				t.Fatal(err)
			}
			errs++
		}
	}
	if errs != 10 {
		t.Errorf("without SkipIncomplete: %d errors; want 10", errs)
	}
	if _, err := loader.New(src, &loader.Options{Shards: true, SkipIncomplete: true}); !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("SkipIncomplete without Fields: %v", err)
	}
}

// TestShardsResumeBadShards: with a truncated shard, a sample over
// MaxSampleSize and samples without a field (skipped), stopped at every
// point and resumed with and without the state's shard cursor, a loader
// yields the samples and errors of a run that never stopped.
func TestShardsResumeBadShards(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for i := range 6 {
		var ms []member
		for j := range 9 {
			key := fmt.Sprintf("s%d-%d", i, j)
			body := []byte(key)
			if i == 2 && j == 4 {
				body = bytes.Repeat([]byte("x"), 100) // too large
			}
			ms = append(ms, member{key + ".txt", body})
			if j%4 != 3 {
				ms = append(ms, member{key + ".cls", []byte("c")})
			}
		}
		writeShard(t, dir, fmt.Sprintf("%d.tar", i), ms)
	}
	full, _ := os.ReadFile(filepath.Join(dir, "4.tar"))
	os.WriteFile(filepath.Join(dir, "4.tar"), full[:len(full)/2], 0o644)
	src, _ := source.Dir(dir, nil)
	o := loader.Options{Shards: true, Seed: 8, SampleBuffer: 7, Prefetch: 6, MaxSampleSize: 50, Fields: []string{"txt", "cls"}, SkipIncomplete: true}
	run := func(l *loader.Loader, from int, stop int, out []string) ([]string, bool) {
		for e := from; e < 2; e++ {
			for s, err := range l.Samples(context.Background(), e) {
				if err != nil {
					out = append(out, fmt.Sprintf("%s#%s:%v", s.Name.Key, s.Key, insitu.CodeOf(err)))
				} else {
					out = append(out, s.Name.Key+"#"+s.Key)
				}
				if len(out) == stop {
					return out, true
				}
			}
		}
		return out, false
	}
	want, _ := run(newLoader(t, src, &o), 0, -1, nil)
	if errs := slices.IndexFunc(want, func(s string) bool { return strings.HasSuffix(s, ":too_large") }); errs < 0 || !slices.ContainsFunc(want, func(s string) bool { return strings.HasSuffix(s, ":invalid_argument") }) {
		t.Fatalf("no too_large or no invalid_argument in %q", want)
	}
	for stop := 1; stop < len(want); stop++ {
		l := newLoader(t, src, &o)
		got, _ := run(l, 0, stop, nil)
		st := l.State()
		slow := st
		slow.Shard = nil
		for _, st := range []loader.State{st, slow} {
			ro := o
			ro.Resume = &st
			resumed, _ := run(newLoader(t, src, &ro), st.Epoch, -1, slices.Clone(got))
			if !slices.Equal(resumed, want) {
				t.Fatalf("stopped after %d, cursor %v:\ngot  %q\nwant %q", stop, st.Shard != nil, resumed, want)
			}
		}
	}
}
