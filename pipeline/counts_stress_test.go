package pipeline_test

import (
	"context"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/pipeline"
)

// The counts add up (Listed = Transformed + Skipped + Failed) whatever the
// mix: skips, retried Unavailable failures, transforms that honour or ignore
// their context past a per-object timeout, spilled outputs, and a cancel at
// a random moment.
func TestCountsStress(t *testing.T) {
	for i := range 30 {
		src := newMemSource(400, 10+i%3*20000)
		tr := insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
			switch rand.N(6) {
			case 0:
				return insitu.ErrSkip
			case 1:
				return insitu.Errorf(insitu.Unavailable, "flaky")
			case 2:
				select {
				case <-ctx.Done():
				case <-time.After(time.Duration(rand.N(3)) * time.Millisecond):
				}
			case 3:
				time.Sleep(time.Duration(rand.N(4)) * time.Millisecond) // ignores ctx
			}
			_, err := io.Copy(out, in.Body)
			return err
		})
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(time.Duration(rand.N(30))*time.Millisecond, cancel)
		rep, _ := pipeline.Run(ctx, src, tr, newMemSink(), &pipeline.Options{Workers: 8, Retries: 2, Backoff: time.Millisecond,
			Timeout: time.Duration(1+rand.N(3)) * time.Millisecond, ContinueOnError: i%2 == 0})
		cancel()
		if rep.Listed != rep.Transformed+rep.Skipped+rep.Failed {
			t.Fatalf("run %d: listed %d != %d+%d+%d", i, rep.Listed, rep.Transformed, rep.Skipped, rep.Failed)
		}
	}
	time.Sleep(50 * time.Millisecond)
}

type panicOpen struct{ *memSource }

func (s panicOpen) Open(ctx context.Context, obj insitu.Object) (io.ReadCloser, error) {
	panic("open bug")
}

// A panic in Source.Open is raised again by Run and does not leave the
// body locked (its deferred Close would wait for ever).
func TestOpenPanic(t *testing.T) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() { recover() }()
		pipeline.Run(context.Background(), panicOpen{newMemSource(2, 10)}, insitu.Identity, newMemSink(), &pipeline.Options{ContinueOnError: true})
	}()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("Run hangs after a panic in Source.Open")
	}
}

// An output of exactly 32 KiB copied with io.Copy is still held: Put is
// told its size.
func TestExactly32KiBHeld(t *testing.T) {
	src := newMemSource(1, 32<<10)
	dst := &sizeSink{memSink: newMemSink(), sizes: map[string]int64{}}
	if _, err := pipeline.Run(context.Background(), src, insitu.Identity, dst, nil); err != nil {
		t.Fatal(err)
	}
	if got := dst.sizes["obj-0000"]; got != 32<<10 {
		t.Fatalf("Put told size %d for a 32 KiB output, want %d", got, 32<<10)
	}
}
