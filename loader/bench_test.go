package loader_test

import (
	"bytes"
	"context"
	"io"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/loader"
)

// invert is a transform with some work per byte: every byte b becomes
// 255-b.
var invert = insitu.TransformFunc(func(_ context.Context, in *insitu.Input, out io.Writer) error {
	b, err := io.ReadAll(in.Body)
	if err != nil {
		return err
	}
	for i := range b {
		b[i] = 255 - b[i]
	}
	_, err = out.Write(b)
	return err
})

const benchSamples, benchSize = 20_000, 4 << 10

// handLoop is the loop one would write by hand: par goroutines read and
// transform the samples of names, in no particular order, and hand them
// to the consumer over a channel. It returns the samples read.
func handLoop(ctx context.Context, src insitu.Source, names []insitu.Name, par int) int {
	jobs := make(chan insitu.Name)
	out := make(chan []byte, par)
	var wg sync.WaitGroup
	for range par {
		wg.Go(func() {
			var buf bytes.Buffer
			for name := range jobs {
				rc, err := src.Open(ctx, insitu.Object{Name: name, Size: -1})
				if err != nil {
					panic(err)
				}
				buf.Reset()
				if err := invert.Transform(ctx, &insitu.Input{Object: insitu.Object{Name: name}, Body: rc}, &buf); err != nil {
					panic(err)
				}
				rc.Close()
				out <- bytes.Clone(buf.Bytes())
			}
		})
	}
	go func() {
		for _, n := range names {
			jobs <- n
		}
		close(jobs)
		wg.Wait()
		close(out)
	}()
	count := 0
	for range out {
		count++
	}
	return count
}

// BenchmarkSamples compares the samples/s of a loader with those of a
// hand-written goroutine loop, with the same source, transform and
// parallelism; ratio is loader/loop (the target: at least 0.95).
func BenchmarkSamples(b *testing.B) {
	ctx := context.Background()
	src := &genSource{n: benchSamples, size: benchSize}
	par := 2 * runtime.GOMAXPROCS(0)
	var names []insitu.Name
	for obj := range src.Objects(ctx) {
		names = append(names, obj.Name)
	}
	l, err := loader.New(src, &loader.Options{Seed: 1, Transform: invert, Concurrency: par, Prefetch: 2 * par})
	if err != nil {
		b.Fatal(err)
	}
	var tLoop, tLoader time.Duration
	epoch := 0
	loop := func() {
		t0 := time.Now()
		if n := handLoop(ctx, src, names, par); n != benchSamples {
			b.Fatal(n)
		}
		tLoop += time.Since(t0)
	}
	load := func() {
		t0 := time.Now()
		n := 0
		for _, err := range l.Samples(ctx, epoch) {
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != benchSamples {
			b.Fatal(n)
		}
		tLoader += time.Since(t0)
	}
	for range l.Samples(ctx, 0) { // list once, outside the measure
		break
	}
	for b.Loop() {
		// Alternate which runs first, as the machine's load changes.
		if epoch%2 == 0 {
			loop()
			load()
		} else {
			load()
			loop()
		}
		epoch++
	}
	total := float64(benchSamples * epoch)
	b.ReportMetric(total/tLoader.Seconds(), "loader-samples/s")
	b.ReportMetric(total/tLoop.Seconds(), "loop-samples/s")
	b.ReportMetric(tLoop.Seconds()/tLoader.Seconds(), "ratio")
}

// BenchmarkFirstBatch compares the time to a loader's first batch of 64
// with the time to read one batch of 64 once running, in each mode: with
// ShuffleGlobal, "global-listing" lists the source first (epoch 0),
// "global" has it listed (a later epoch).
func BenchmarkFirstBatch(b *testing.B) {
	ctx := context.Background()
	src := &genSource{n: benchSamples, size: benchSize}
	for _, bc := range []struct {
		name  string
		mode  loader.ShuffleMode
		epoch int
	}{
		{"global-listing", loader.ShuffleGlobal, 0},
		{"global", loader.ShuffleGlobal, 1},
		{"buffer-1000", loader.ShuffleBuffer, 0},
		{"none", loader.ShuffleNone, 0},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var first, one time.Duration
			for b.Loop() {
				l, err := loader.New(src, &loader.Options{Seed: 1, Transform: invert, Shuffle: bc.mode, BufferSize: 1000})
				if err != nil {
					b.Fatal(err)
				}
				if bc.epoch > 0 {
					for range l.Samples(ctx, 0) {
						break
					}
				}
				t0 := time.Now()
				i := 0
				var t1 time.Time
				for _, err := range l.Batches(ctx, bc.epoch, 64) {
					if err != nil {
						b.Fatal(err)
					}
					switch i++; i {
					case 1:
						first += time.Since(t0)
					case 10:
						t1 = time.Now()
					case 11:
						one += time.Since(t1)
					}
					if i == 11 {
						break
					}
				}
			}
			b.ReportMetric(float64(first.Microseconds())/float64(b.N), "first-batch-µs")
			b.ReportMetric(float64(one.Microseconds())/float64(b.N), "one-batch-µs")
			b.ReportMetric(first.Seconds()/one.Seconds(), "ratio")
		})
	}
}
