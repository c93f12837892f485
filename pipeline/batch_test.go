package pipeline_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/pipeline"
)

// batchUpper upper-cases its inputs, in batches or alone. An input whose
// key ends in one of bad fails: alone with InvalidArgument, and in a
// batch it fails the batch. It records every call and checks that every
// output it returned was closed.
type batchUpper struct {
	bad     []string
	panicOn string // a key whose batch panics
	nilFor  string // a key whose output the batch leaves nil

	mu      sync.Mutex
	batches [][]string // the keys of each TransformBatch call
	alone   []string   // the keys of each Transform call
	open    atomic.Int64
}

func (b *batchUpper) isBad(key string) bool {
	for _, s := range b.bad {
		if strings.HasSuffix(key, s) {
			return true
		}
	}
	return false
}

func (b *batchUpper) Transform(ctx context.Context, in *insitu.Input, out io.Writer) error {
	b.mu.Lock()
	b.alone = append(b.alone, in.Name.Key)
	b.mu.Unlock()
	if b.isBad(in.Name.Key) {
		return &insitu.Error{Code: insitu.InvalidArgument, Name: in.Name, Msg: "not upper-caseable"}
	}
	return upper.Transform(ctx, in, out)
}

func (b *batchUpper) TransformBatch(ctx context.Context, ins []*insitu.Input) ([]io.ReadCloser, error) {
	var keys []string
	for _, in := range ins {
		keys = append(keys, in.Name.Key)
	}
	b.mu.Lock()
	b.batches = append(b.batches, keys)
	b.mu.Unlock()
	outs := make([]io.ReadCloser, 0, len(ins))
	for _, in := range ins {
		if in.Name.Key == b.panicOn {
			panic("batchUpper: " + in.Name.Key)
		}
		if b.isBad(in.Name.Key) {
			for _, o := range outs {
				o.Close()
			}
			return nil, errors.New("batchUpper: a bad input in the batch")
		}
		data, err := io.ReadAll(in.Body)
		if err != nil {
			return nil, err
		}
		if in.Name.Key == b.nilFor {
			outs = append(outs, nil)
			continue
		}
		b.open.Add(1)
		outs = append(outs, &closeCounter{Reader: bytes.NewReader(bytes.ToUpper(data)), n: &b.open})
	}
	return outs, nil
}

type closeCounter struct {
	io.Reader
	n    *atomic.Int64
	once sync.Once
}

func (c *closeCounter) Close() error {
	c.once.Do(func() { c.n.Add(-1) })
	return nil
}

// check fails t when an output was left open or a batch broke its bounds.
func (b *batchUpper) check(t *testing.T, maxSize int) {
	t.Helper()
	if n := b.open.Load(); n != 0 {
		t.Errorf("%d batch outputs left open", n)
	}
	for _, keys := range b.batches {
		if len(keys) > maxSize || len(keys) < 2 {
			t.Errorf("a batch of %d objects; want 2 to %d", len(keys), maxSize)
		}
	}
}

func (b *batchUpper) batched() (n int) {
	for _, keys := range b.batches {
		n += len(keys)
	}
	return n
}

func checkUpper(t *testing.T, src *memSource, dst *memSink, except ...string) {
	t.Helper()
	for k, in := range src.objs {
		got, ok := dst.get(insitu.Name{Bucket: "in", Key: k})
		if slices.Contains(except, k) {
			if ok {
				t.Errorf("%s: stored, want no output", k)
			}
			continue
		}
		if !ok || !bytes.Equal(got, bytes.ToUpper(in)) {
			t.Errorf("%s: output wrong (present %v)", k, ok)
		}
	}
}

func TestBatchTransformsEveryObject(t *testing.T) {
	t.Parallel()
	src := newMemSource(100, 100)
	dst := newMemSink()
	bt := &batchUpper{}
	rep, err := pipeline.Run(t.Context(), src, bt, dst, &pipeline.Options{Workers: 2, Batch: &pipeline.BatchOptions{Size: 16, Wait: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	checkCounts(t, rep)
	if rep.Transformed != 100 {
		t.Fatalf("report %+v, want 100 transformed", rep)
	}
	checkUpper(t, src, dst)
	bt.check(t, 16)
	// With an hour's wait, every batch is full but the last: 6×16 + 4.
	if len(bt.batches) != 7 || bt.batched() != 100 || len(bt.alone) != 0 {
		t.Errorf("%d batches of %d objects and %d alone; want 7 batches of 100", len(bt.batches), bt.batched(), len(bt.alone))
	}
	var total int64
	for _, b := range src.objs {
		total += int64(len(b))
	}
	if rep.BytesIn != total || rep.BytesOut != total {
		t.Errorf("bytes in/out %d/%d, want %d", rep.BytesIn, rep.BytesOut, total)
	}
}

// TestBatchBadInputFailsAlone: a batch with bad inputs is done again one
// by one, and exactly the bad inputs fail, with their names and codes.
func TestBatchBadInputFailsAlone(t *testing.T) {
	t.Parallel()
	src := newMemSource(50, 10)
	dst := newMemSink()
	bt := &batchUpper{bad: []string{"-0007", "-0041"}}
	rep, err := pipeline.Run(t.Context(), src, bt, dst, &pipeline.Options{
		Workers: 2, ContinueOnError: true, Batch: &pipeline.BatchOptions{Size: 10, Wait: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	checkCounts(t, rep)
	if rep.Transformed != 48 || rep.Failed != 2 {
		t.Fatalf("report %+v, want 48 transformed and 2 failed", rep)
	}
	slicesSortFunc(rep.Failures)
	for i, k := range []string{"obj-0007", "obj-0041"} {
		f := rep.Failures[i]
		if f.Name.Key != k || f.Code != insitu.InvalidArgument {
			t.Errorf("failure %d: %+v, want %s with invalid_argument", i, f, k)
		}
	}
	checkUpper(t, src, dst, "obj-0007", "obj-0041")
	bt.check(t, 10)
	// The two failed batches (objects 0-9 and 40-49) were done again one by one.
	if len(bt.alone) != 20 {
		t.Errorf("%d objects transformed alone, want the 20 of the two bad batches", len(bt.alone))
	}
}

// TestBatchPanicIsRetriedAlone: a batch call that panics fails no object
// by itself; its objects are done alone.
func TestBatchPanicIsRetriedAlone(t *testing.T) {
	t.Parallel()
	src := newMemSource(8, 10)
	dst := newMemSink()
	bt := &batchUpper{panicOn: "obj-0003"}
	rep, err := pipeline.Run(t.Context(), src, bt, dst, &pipeline.Options{Workers: 1, Batch: &pipeline.BatchOptions{Size: 4, Wait: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Transformed != 8 || len(bt.alone) != 4 {
		t.Fatalf("report %+v, %d alone; want 8 transformed, 4 of them alone", rep, len(bt.alone))
	}
	checkUpper(t, src, dst)
}

func TestBatchBounds(t *testing.T) {
	t.Parallel()
	t.Run("bytes", func(t *testing.T) {
		src := newMemSource(30, 100) // 100 to 106 bytes each
		bt := &batchUpper{}
		rep, err := pipeline.Run(t.Context(), src, bt, newMemSink(), &pipeline.Options{
			Workers: 1, Batch: &pipeline.BatchOptions{Size: 100, Bytes: 450, Wait: time.Hour}})
		if err != nil || rep.Transformed != 30 {
			t.Fatalf("Run = %+v, %v", rep, err)
		}
		for _, keys := range bt.batches {
			var n int
			for _, k := range keys {
				n += len(src.objs[k])
			}
			if n > 450 {
				t.Errorf("a batch of %d objects, %d bytes; want at most 450 bytes", len(keys), n)
			}
		}
		if len(bt.batches) < 7 {
			t.Errorf("%d batches, want at least 30/4", len(bt.batches))
		}
	})
	t.Run("size 1 turns batching off", func(t *testing.T) {
		src := newMemSource(5, 10)
		bt := &batchUpper{}
		rep, err := pipeline.Run(t.Context(), src, bt, newMemSink(), &pipeline.Options{Batch: &pipeline.BatchOptions{Size: 1}})
		if err != nil || rep.Transformed != 5 || len(bt.batches) != 0 || len(bt.alone) != 5 {
			t.Fatalf("Run = %+v, %v; %d batches, %d alone", rep, err, len(bt.batches), len(bt.alone))
		}
	})
	t.Run("negative", func(t *testing.T) {
		_, err := pipeline.Run(t.Context(), newMemSource(1, 1), &batchUpper{}, newMemSink(), &pipeline.Options{Batch: &pipeline.BatchOptions{Wait: -1}})
		if insitu.CodeOf(err) != insitu.InvalidArgument {
			t.Fatalf("Run = %v, want invalid_argument", err)
		}
	})
}

// trickleSource lists its next object only once the sink stored the
// last one's output: a batch that waited to fill would never go.
type trickleSource struct {
	*memSource
	stored chan struct{}
}

func (s trickleSource) Objects(ctx context.Context) iter.Seq2[insitu.Object, error] {
	return func(yield func(insitu.Object, error) bool) {
		first := true
		for obj, err := range s.memSource.Objects(ctx) {
			if !first {
				select {
				case <-s.stored:
				case <-ctx.Done():
					return
				}
			}
			first = false
			if !yield(obj, err) {
				return
			}
		}
	}
}

type notifySink struct {
	*memSink
	stored chan struct{}
}

func (s notifySink) Put(ctx context.Context, name insitu.Name, r io.Reader, size int64) (insitu.PutResult, error) {
	res, err := s.memSink.Put(ctx, name, r, size)
	s.stored <- struct{}{}
	return res, err
}

func TestBatchTrickleIsNotHeldBack(t *testing.T) {
	t.Parallel()
	stored := make(chan struct{}, 1)
	src := trickleSource{newMemSource(5, 10), stored}
	dst := notifySink{newMemSink(), stored}
	bt := &batchUpper{}
	rep, err := pipeline.Run(t.Context(), src, bt, dst, &pipeline.Options{Batch: &pipeline.BatchOptions{Size: 16, Wait: time.Millisecond}})
	if err != nil || rep.Transformed != 5 {
		t.Fatalf("Run = %+v, %v", rep, err)
	}
	// Each object went alone, after the wait.
	if len(bt.batches) != 0 || len(bt.alone) != 5 {
		t.Errorf("%d batches and %d alone, want 5 alone", len(bt.batches), len(bt.alone))
	}
	checkUpper(t, src.memSource, dst.memSink)
}

// flakySink fails the first put of each name in fail with Unavailable,
// after reading the output.
type flakySink struct {
	*memSink
	mu   sync.Mutex
	fail map[string]bool
}

func (s *flakySink) Put(ctx context.Context, name insitu.Name, r io.Reader, size int64) (insitu.PutResult, error) {
	s.mu.Lock()
	f := s.fail[name.Key]
	delete(s.fail, name.Key)
	s.mu.Unlock()
	if f {
		io.Copy(io.Discard, r)
		return insitu.PutResult{}, insitu.Errorf(insitu.Unavailable, "flaky")
	}
	return s.memSink.Put(ctx, name, r, size)
}

// TestBatchPutRetriedAlone: an output of a good batch whose put is
// unavailable is made again alone and stored.
func TestBatchPutRetriedAlone(t *testing.T) {
	t.Parallel()
	src := newMemSource(12, 10)
	dst := &flakySink{memSink: newMemSink(), fail: map[string]bool{"obj-0005": true}}
	bt := &batchUpper{}
	rep, err := pipeline.Run(t.Context(), src, bt, dst, &pipeline.Options{Workers: 1, Backoff: time.Millisecond, Batch: &pipeline.BatchOptions{Size: 6, Wait: time.Hour}})
	if err != nil || rep.Transformed != 12 {
		t.Fatalf("Run = %+v, %v", rep, err)
	}
	if !slices.Equal(bt.alone, []string{"obj-0005"}) {
		t.Errorf("alone: %v, want [obj-0005]", bt.alone)
	}
	checkUpper(t, src, dst.memSink)
	bt.check(t, 6)
}

// TestBatchCanceledCountsEveryObject: a run canceled while batches are
// gathered and in flight counts each listed object exactly once and
// leaves nothing running (goleak, in TestMain).
func TestBatchCanceledCountsEveryObject(t *testing.T) {
	t.Parallel()
	for _, stopAfter := range []int{0, 1, 3, 17} {
		t.Run(fmt.Sprint(stopAfter), func(t *testing.T) {
			src := newMemSource(200, 10)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			var puts atomic.Int64
			dst := putHook{memSink: newMemSink(), after: func() {
				if puts.Add(1) == int64(stopAfter) {
					cancel()
				}
			}}
			if stopAfter == 0 {
				cancel()
			}
			bt := &batchUpper{}
			rep, err := pipeline.Run(ctx, src, bt, dst, &pipeline.Options{Workers: 2, Batch: &pipeline.BatchOptions{Size: 8, Wait: time.Hour}})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Run = %v, want context.Canceled", err)
			}
			checkCounts(t, rep)
			if rep.Transformed >= 200 {
				t.Errorf("report %+v: everything done despite the cancel", rep)
			}
			if n := bt.open.Load(); n != 0 {
				t.Errorf("%d outputs left open", n)
			}
		})
	}
}

type putHook struct {
	*memSink
	after func()
}

func (s putHook) Put(ctx context.Context, name insitu.Name, r io.Reader, size int64) (insitu.PutResult, error) {
	res, err := s.memSink.Put(ctx, name, r, size)
	s.after()
	return res, err
}

// TestBatchNilOutputGoesAlone: a batch that breaks its contract with a
// nil output crashes nothing; that object is done alone.
func TestBatchNilOutputGoesAlone(t *testing.T) {
	t.Parallel()
	src := newMemSource(8, 10)
	dst := newMemSink()
	bt := &batchUpper{nilFor: "obj-0002"}
	rep, err := pipeline.Run(t.Context(), src, bt, dst, &pipeline.Options{Workers: 1, Batch: &pipeline.BatchOptions{Size: 4, Wait: time.Hour}})
	if err != nil || rep.Transformed != 8 {
		t.Fatalf("Run = %+v, %v", rep, err)
	}
	if !slices.Equal(bt.alone, []string{"obj-0002"}) {
		t.Errorf("alone: %v, want [obj-0002]", bt.alone)
	}
	checkUpper(t, src, dst)
	bt.check(t, 4)
}
