package pipeline_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/pipeline"
)

// sizeSink records the size each Put was told and the bytes it read.
type sizeSink struct {
	*memSink
	mu    sync.Mutex
	sizes map[string]int64
}

func (s *sizeSink) Put(ctx context.Context, name insitu.Name, r io.Reader, size int64) (insitu.PutResult, error) {
	s.mu.Lock()
	s.sizes[name.Key] = size
	s.mu.Unlock()
	return s.memSink.Put(ctx, name, r, size)
}

// repeatTransform writes its input n times.
func repeatTransform(n int) insitu.Transform {
	return insitu.TransformFunc(func(_ context.Context, in *insitu.Input, out io.Writer) error {
		b, err := io.ReadAll(in.Body)
		if err != nil {
			return err
		}
		for range n {
			if _, err := out.Write(b); err != nil {
				return err
			}
		}
		return nil
	})
}

// An output of up to 32 KiB reaches the sink in one piece with its size;
// a larger one streams, size unknown; both byte for byte.
func TestHeldOutputSize(t *testing.T) {
	for _, tc := range []struct {
		repeat int
		small  bool
	}{{1, true}, {300, true}, {3000, false}} {
		t.Run(fmt.Sprint(tc.repeat), func(t *testing.T) {
			src := newMemSource(20, 100) // objects of 100–106 bytes
			dst := &sizeSink{memSink: newMemSink(), sizes: map[string]int64{}}
			rep, err := pipeline.Run(context.Background(), src, repeatTransform(tc.repeat), dst, &pipeline.Options{Workers: 3})
			if err != nil || rep.Transformed != 20 || rep.Failed != 0 {
				t.Fatalf("Run: %v, %+v", err, rep)
			}
			var out int64
			for key, in := range src.objs {
				want := bytes.Repeat(in, tc.repeat)
				name := insitu.Name{Bucket: "in", Key: key}
				got, ok := dst.get(name)
				if !ok || xxhash.Sum64(got) != xxhash.Sum64(want) || len(got) != len(want) {
					t.Fatalf("%s: %d bytes stored, want %d (checksums differ or missing)", key, len(got), len(want))
				}
				out += int64(len(want))
				wantSize := int64(len(want))
				if !tc.small {
					wantSize = -1
				}
				if dst.sizes[key] != wantSize {
					t.Errorf("%s: Put told size %d, want %d", key, dst.sizes[key], wantSize)
				}
			}
			if rep.BytesOut != out {
				t.Errorf("BytesOut %d, want %d", rep.BytesOut, out)
			}
		})
	}
}

// A transform that fails after writing a small output never reaches the
// sink; one that fails after a large output has begun streaming fails the
// sink's read, so nothing is stored either way.
func TestFailedOutputNotStored(t *testing.T) {
	for _, n := range []int{10, 100 << 10} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			boom := errors.New("boom")
			tr := insitu.TransformFunc(func(_ context.Context, in *insitu.Input, out io.Writer) error {
				if _, err := out.Write(make([]byte, n)); err != nil {
					return err
				}
				return boom
			})
			src := newMemSource(5, 10)
			dst := newMemSink()
			rep, err := pipeline.Run(context.Background(), src, tr, dst, &pipeline.Options{ContinueOnError: true})
			if err != nil || rep.Failed != 5 || rep.Transformed != 0 {
				t.Fatalf("Run: %v, %+v", err, rep)
			}
			if dst.len() != 0 {
				t.Errorf("%d outputs stored", dst.len())
			}
			wantPuts := int64(0)
			if n > 32<<10 {
				wantPuts = 5
			}
			if got := dst.puts.Load(); got != wantPuts {
				t.Errorf("%d Puts, want %d", got, wantPuts)
			}
		})
	}
}

// A transform that ignores its context is left behind at the object's
// deadline; when it wakes and writes more than the runner holds, its
// writes fail instead of waiting for ever on a pipe nobody reads.
func TestAbandonedTransformWritesFail(t *testing.T) {
	release := make(chan struct{})
	writeErr := make(chan error, 1)
	tr := insitu.TransformFunc(func(_ context.Context, in *insitu.Input, out io.Writer) error {
		<-release
		_, err := out.Write(make([]byte, 100<<10))
		writeErr <- err
		return err
	})
	src := newMemSource(1, 10)
	dst := newMemSink()
	rep, err := pipeline.Run(context.Background(), src, tr, dst, &pipeline.Options{Timeout: 20 * time.Millisecond})
	if !errors.Is(err, insitu.DeadlineExceeded) || rep.Failed != 1 {
		t.Fatalf("Run: %v, %+v; want one DeadlineExceeded failure", err, rep)
	}
	close(release)
	select {
	case err := <-writeErr:
		if err == nil {
			t.Error("the abandoned transform's write succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the abandoned transform's write is still blocked after 10s")
	}
	if dst.len() != 0 {
		t.Errorf("%d outputs stored", dst.len())
	}
}

// A panic outside the transform (in Rename) ends the run and is raised
// again by Run, after its workers are done, even with a long listing that
// would otherwise fill the workers' queue.
func TestRenamePanicRaised(t *testing.T) {
	src := newMemSource(500, 1)
	opts := &pipeline.Options{Workers: 2, Rename: func(n insitu.Name) (insitu.Name, error) {
		if n.Key == "obj-0003" {
			panic("rename bug")
		}
		return n, nil
	}}
	defer func() {
		rec := recover()
		if rec == nil || !bytes.Contains(fmt.Append(nil, rec), []byte("rename bug")) {
			t.Fatalf("recovered %v, want the rename panic", rec)
		}
	}()
	pipeline.Run(context.Background(), src, insitu.Identity, newMemSink(), opts)
	t.Fatal("Run returned")
}
