package loader_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/loader"
	"github.com/insitu-data/insitu/source"
)

func TestMain(m *testing.M) {
	if side := os.Getenv(benchSideEnv); side != "" {
		os.Exit(benchSide(side)) // a child of BenchmarkSamplesProcesses
	}
	goleak.VerifyTestMain(m)
}

// dataset writes n files s-0000 ... under a new directory, each holding
// its own key, and returns the source of it.
func dataset(t testing.TB, n int) *source.DirSource {
	t.Helper()
	dir := t.TempDir()
	for i := range n {
		key := fmt.Sprintf("s-%04d", i)
		if err := os.WriteFile(filepath.Join(dir, key), []byte(key), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	src, err := source.Dir(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// newLoader makes a loader or fails the test.
func newLoader(t testing.TB, src insitu.Source, o *loader.Options) *loader.Loader {
	t.Helper()
	l, err := loader.New(src, o)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// epoch returns the keys an epoch yields, checking each sample's Data and
// Index.
func epoch(t testing.TB, l *loader.Loader, e int) []string {
	t.Helper()
	var keys []string
	first := int64(-1)
	for s, err := range l.Samples(context.Background(), e) {
		if err != nil {
			t.Fatalf("epoch %d: %v", e, err)
		}
		if first < 0 {
			first = s.Index
		}
		if s.Index != first+int64(len(keys)) {
			t.Fatalf("epoch %d: sample %d has Index %d", e, len(keys), s.Index)
		}
		if string(s.Data) != s.Name.Key {
			t.Fatalf("epoch %d: %s holds %q", e, s.Name.Key, s.Data)
		}
		keys = append(keys, s.Name.Key)
	}
	return keys
}

func sorted(keys []string) []string { return slices.Sorted(slices.Values(keys)) }

func allKeys(n int) []string {
	var keys []string
	for i := range n {
		keys = append(keys, fmt.Sprintf("s-%04d", i))
	}
	return keys
}

var modes = []loader.ShuffleMode{loader.ShuffleGlobal, loader.ShuffleBuffer, loader.ShuffleNone}

// jitter is an in-process transform that yields the processor a varying
// number of times before copying, so that reads end out of order.
var jitter = insitu.TransformFunc(func(_ context.Context, in *insitu.Input, out io.Writer) error {
	for range len(in.Name.Key) * int(in.Name.Key[len(in.Name.Key)-1]) % 50 {
		runtime.Gosched()
	}
	_, err := io.Copy(out, in.Body)
	return err
})

// TestOrderIsDeterministic: the same seed and epoch give the same order
// whatever the parallelism and the timing; each epoch is a permutation of
// the dataset; another seed or epoch gives another order.
func TestOrderIsDeterministic(t *testing.T) {
	t.Parallel()
	const n = 300
	src := dataset(t, n)
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			opts := func(seed uint64, conc int) *loader.Options {
				return &loader.Options{Seed: seed, Shuffle: mode, BufferSize: 50, Prefetch: 16, Concurrency: conc, Transform: jitter}
			}
			a := epoch(t, newLoader(t, src, opts(7, 1)), 0)
			b := epoch(t, newLoader(t, src, opts(7, 16)), 0)
			if !slices.Equal(a, b) {
				t.Fatal("one reader and 16 readers give different orders")
			}
			if !slices.Equal(sorted(a), allKeys(n)) {
				t.Fatalf("the epoch is not the dataset: %d samples", len(a))
			}
			other := epoch(t, newLoader(t, src, opts(8, 4)), 0)
			next := epoch(t, newLoader(t, src, opts(7, 4)), 1)
			if mode == loader.ShuffleNone {
				if !slices.Equal(a, allKeys(n)) || !slices.Equal(other, a) || !slices.Equal(next, a) {
					t.Fatal("ShuffleNone is not the listing's order")
				}
				return
			}
			if slices.Equal(a, allKeys(n)) {
				t.Fatal("not shuffled")
			}
			if slices.Equal(other, a) {
				t.Fatal("another seed gives the same order")
			}
			if slices.Equal(next, a) {
				t.Fatal("the next epoch has the same order")
			}
		})
	}
}

// TestBufferShuffleIsLocal: a sample moves less than about the buffer's
// size backwards in ShuffleBuffer.
func TestBufferShuffleIsLocal(t *testing.T) {
	t.Parallel()
	src := dataset(t, 500)
	keys := epoch(t, newLoader(t, src, &loader.Options{Shuffle: loader.ShuffleBuffer, BufferSize: 20, Seed: 3}), 0)
	for pos, k := range keys[:450] {
		var i int
		fmt.Sscanf(k, "s-%d", &i)
		if i > pos+20 {
			t.Fatalf("sample %d delivered at %d, before it could have entered the buffer", i, pos)
		}
	}
}

// TestSplits: every rank × worker split of an epoch is disjoint from the
// others and together they are the epoch, in every mode.
func TestSplits(t *testing.T) {
	t.Parallel()
	const n = 301
	src := dataset(t, n)
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			seen := map[string]string{}
			for rank := range 3 {
				for worker := range 2 {
					l := newLoader(t, src, &loader.Options{Seed: 5, Shuffle: mode, BufferSize: 30, Rank: rank, WorldSize: 3, Worker: worker, Workers: 2})
					keys := epoch(t, l, 2)
					if len(keys) != n/6 && len(keys) != n/6+1 {
						t.Errorf("rank %d worker %d: %d samples; want %d or %d", rank, worker, len(keys), n/6, n/6+1)
					}
					who := fmt.Sprintf("rank %d worker %d", rank, worker)
					for _, k := range keys {
						if prev, ok := seen[k]; ok {
							t.Fatalf("%s delivered to %s and %s", k, prev, who)
						}
						seen[k] = who
					}
				}
			}
			if len(seen) != n {
				t.Fatalf("the splits cover %d samples of %d", len(seen), n)
			}
		})
	}
}

// TestResume stops at random points, saves the state as JSON, resumes from
// it, and checks that the samples of both runs are those of a run that
// never stopped, in every mode and with a split.
func TestResume(t *testing.T) {
	t.Parallel()
	const n, epochs = 97, 3
	src := dataset(t, n)
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			o := loader.Options{Seed: 11, Shuffle: mode, BufferSize: 10, Rank: 1, WorldSize: 2, Prefetch: 8}
			var want []string
			whole := newLoader(t, src, &o)
			for e := range epochs {
				want = append(want, epoch(t, whole, e)...)
			}
			r := rand.New(rand.NewPCG(1, uint64(mode)))
			stops := 40
			if testing.Short() {
				stops = 8
			}
			for range stops {
				stop := r.IntN(len(want) + 1) // samples delivered before stopping
				var got []string
				l := newLoader(t, src, &o)
				var saved []byte
			run:
				for e := range epochs {
					for s, err := range l.Samples(context.Background(), e) {
						if err != nil {
							t.Fatal(err)
						}
						got = append(got, s.Name.Key)
						if len(got) == stop {
							break run
						}
					}
				}
				saved, err := json.Marshal(l.State())
				if err != nil {
					t.Fatal(err)
				}
				var st loader.State
				if err := json.Unmarshal(saved, &st); err != nil {
					t.Fatal(err)
				}
				ro := o
				ro.Resume = &st
				l = newLoader(t, src, &ro)
				for e := st.Epoch; e < epochs; e++ {
					got = append(got, epoch(t, l, e)...)
				}
				if !slices.Equal(got, want) {
					t.Fatalf("stopped after %d samples (state %s): the samples differ from a run that never stopped", stop, saved)
				}
			}
		})
	}
}

// TestResumeRefusesOtherStates: a state of another seed, mode or split is
// refused by New, one of another listing by the first iteration.
func TestResumeRefusesOtherStates(t *testing.T) {
	t.Parallel()
	src := dataset(t, 50)
	l := newLoader(t, src, &loader.Options{Seed: 1})
	for range l.Samples(context.Background(), 0) {
		break
	}
	st := l.State()
	for _, o := range []loader.Options{
		{Seed: 2, Resume: &st},
		{Seed: 1, Shuffle: loader.ShuffleBuffer, Resume: &st},
		{Seed: 1, WorldSize: 2, Resume: &st},
	} {
		if _, err := loader.New(src, &o); !errors.Is(err, insitu.InvalidArgument) {
			t.Errorf("%+v: %v; want InvalidArgument", o, err)
		}
	}
	// Another listing: one more file.
	if err := os.WriteFile(filepath.Join(src.Root(), "s-0050"), []byte("s-0050"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []loader.ShuffleMode{loader.ShuffleGlobal, loader.ShuffleNone} {
		l := newLoader(t, src, &loader.Options{Seed: 1, Shuffle: mode})
		stop := 0
		for range l.Samples(context.Background(), 0) {
			if stop++; stop == 10 {
				break
			}
		}
		st := l.State()
		// The listing changes before the state's position: a file sorted first.
		if err := os.WriteFile(filepath.Join(src.Root(), "a-first"+mode.String()), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		r := newLoader(t, src, &loader.Options{Seed: 1, Shuffle: mode, Resume: &st})
		var last error
		count := 0
		for _, err := range r.Samples(context.Background(), 0) {
			last = err
			count++
		}
		if count != 1 || !errors.Is(last, insitu.InvalidArgument) || !strings.Contains(last.Error(), "listing") {
			t.Errorf("%v: resumed over a changed listing: %d yields, last %v; want one InvalidArgument error", mode, count, last)
		}
	}
	bad := st
	bad.Digest = "xyz"
	if _, err := loader.New(src, &loader.Options{Seed: 1, Resume: &bad}); !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("bad digest: %v; want InvalidArgument", err)
	}
}

// TestBatches: batches of a size, the last short or dropped, and a state
// taken in a batch loop resumes after the batch.
func TestBatches(t *testing.T) {
	t.Parallel()
	src := dataset(t, 23)
	want := epoch(t, newLoader(t, src, &loader.Options{Seed: 4}), 0)
	for _, drop := range []bool{false, true} {
		l := newLoader(t, src, &loader.Options{Seed: 4, DropLast: drop})
		var got []string
		var sizes []int
		for b, err := range l.Batches(context.Background(), 0, 5) {
			if err != nil {
				t.Fatal(err)
			}
			sizes = append(sizes, len(b))
			for _, s := range b {
				got = append(got, s.Name.Key)
			}
		}
		wantSizes, wantKeys := []int{5, 5, 5, 5, 3}, want
		if drop {
			wantSizes, wantKeys = wantSizes[:4], want[:20]
		}
		if !slices.Equal(sizes, wantSizes) || !slices.Equal(got, wantKeys) {
			t.Errorf("DropLast %v: sizes %v; want %v (same keys: %v)", drop, sizes, wantSizes, slices.Equal(got, wantKeys))
		}
	}
	l := newLoader(t, src, &loader.Options{Seed: 4})
	for range l.Batches(context.Background(), 0, 5) {
		break
	}
	st := l.State()
	if st.Next != 5 {
		t.Errorf("state after one batch of 5: Next %d", st.Next)
	}
	if _, err := first(newLoader(t, src, nil).Batches(context.Background(), 0, 0)); !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("batch size 0: %v; want InvalidArgument", err)
	}
}

// first returns the first yield of seq.
func first[V any](seq iter.Seq2[V, error]) (V, error) {
	for v, err := range seq {
		return v, err
	}
	var zero V
	return zero, nil
}

// TestBadSamples: an empty object is an empty sample; one over
// MaxSampleSize is a TooLarge error, one deleted since the listing a
// NotFound error, a transform's ErrSkip a skip; the epoch goes on past
// each, and Stats counts them.
func TestBadSamples(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	files := map[string]string{"a": "", "b": "bbbbbbbbbbbb", "c": "cc", "d": "dd", "e": "skip me"}
	for k, v := range files {
		if err := os.WriteFile(filepath.Join(dir, k), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	src, _ := source.Dir(dir, nil)
	skip := insitu.TransformFunc(func(_ context.Context, in *insitu.Input, out io.Writer) error {
		if in.Name.Key == "e" {
			return insitu.ErrSkip
		}
		_, err := io.Copy(out, in.Body)
		return err
	})
	l := newLoader(t, src, &loader.Options{Shuffle: loader.ShuffleNone, MaxSampleSize: 10, Transform: skip})
	got := map[string]string{}
	for s, err := range l.Samples(context.Background(), 0) {
		if s.Name.Key == "c" { // list it, then delete d
			os.Remove(filepath.Join(dir, "d"))
		}
		switch {
		case err == nil && s.Data == nil:
			got[s.Name.Key] = "nil data"
		case err == nil:
			got[s.Name.Key] = string(s.Data)
		default:
			got[s.Name.Key] = insitu.CodeOf(err).String()
		}
	}
	// d may have been read before c was delivered (prefetch): either way.
	if got["d"] == "dd" {
		got["d"] = "not_found"
	}
	want := map[string]string{"a": "", "b": "too_large", "c": "cc", "d": "not_found"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v; want %v", got, want)
	}
	st := l.Stats()
	if st.Samples+st.Errors != 4 || st.Skipped != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestBadOptions: each bad option is an InvalidArgument error.
func TestBadOptions(t *testing.T) {
	t.Parallel()
	src := dataset(t, 1)
	for _, o := range []loader.Options{
		{WorldSize: 0, Rank: 1},
		{WorldSize: 2, Rank: 2},
		{WorldSize: -1},
		{Workers: 3, Worker: 3},
		{Worker: -1},
		{Shuffle: 9},
		{Prefetch: 2, Concurrency: 3},
		{BufferSize: -1},
	} {
		if _, err := loader.New(src, &o); !errors.Is(err, insitu.InvalidArgument) {
			t.Errorf("%+v: %v; want InvalidArgument", o, err)
		}
	}
	if _, err := loader.New(nil, nil); !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("nil source: %v", err)
	}
	l := newLoader(t, src, nil)
	if _, err := first(l.Samples(context.Background(), -1)); !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("epoch -1: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := first(l.Samples(ctx, 0)); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}
	if _, err := first(newLoader(t, source.Names(src), nil).Samples(context.Background(), 0)); err != nil {
		t.Errorf("empty source: %v", err)
	}
}

// TestStopEarly: leaving the loop at once, in the middle and when ctx ends
// stops every goroutine (TestMain's goleak checks it).
func TestStopEarly(t *testing.T) {
	src := dataset(t, 100)
	for _, mode := range modes {
		l := newLoader(t, src, &loader.Options{Shuffle: mode, Prefetch: 8, Transform: jitter})
		for range l.Samples(context.Background(), 0) {
			break
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		i := 0
		var last error
		for _, err := range l.Samples(ctx, 0) {
			if i++; i == 30 {
				cancel()
			}
			last = err
		}
		if !errors.Is(last, context.Canceled) {
			t.Errorf("%v: last yield after cancel: %v", mode, last)
		}
		cancel()
	}
}

// TestPrefetchBound: the readers never run more than Prefetch samples
// ahead of the consumer, however slow it is.
func TestPrefetchBound(t *testing.T) {
	t.Parallel()
	src := dataset(t, 200)
	const prefetch = 6
	var mu sync.Mutex
	started := -1
	track := insitu.TransformFunc(func(_ context.Context, in *insitu.Input, out io.Writer) error {
		var i int
		fmt.Sscanf(in.Name.Key, "s-%d", &i)
		mu.Lock()
		started = max(started, i)
		mu.Unlock()
		_, err := io.Copy(out, in.Body)
		return err
	})
	l := newLoader(t, src, &loader.Options{Shuffle: loader.ShuffleNone, Prefetch: prefetch, Concurrency: 3, Transform: track})
	ahead := 0
	for s, err := range l.Samples(context.Background(), 0) {
		if err != nil {
			t.Fatal(err)
		}
		for range 100 { // a slow consumer: the readers may run ahead
			runtime.Gosched()
		}
		mu.Lock()
		ahead = max(ahead, started-int(s.Index))
		mu.Unlock()
	}
	t.Logf("at most %d samples ahead of the consumer", ahead)
	if ahead > prefetch {
		t.Errorf("the readers ran %d samples ahead; Prefetch is %d", ahead, prefetch)
	}
	if ahead < 2 {
		t.Errorf("the readers ran only %d samples ahead: no prefetch", ahead)
	}
}
