package loader_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/loader"
	"github.com/insitu-data/insitu/node/nodetest"
	"github.com/insitu-data/insitu/source"
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
func handLoop(ctx context.Context, src insitu.Source, names []insitu.Name, par int, t insitu.Transform) int {
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
				if err := t.Transform(ctx, &insitu.Input{Object: insitu.Object{Name: name}, Body: rc}, &buf); err != nil {
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
// parallelism, and the same samples held at most: the loop's par in its
// channel and par in its workers', the loader's Prefetch of 2×par. ratio
// is loader/loop (the target: at least 0.95).
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
	var tLoop, tLoader, cLoop, cLoader time.Duration
	var ratios []float64
	epoch := 0
	loop := func() time.Duration {
		t0, c0 := time.Now(), cpuTime()
		if n := handLoop(ctx, src, names, par, invert); n != benchSamples {
			b.Fatal(n)
		}
		cLoop += cpuTime() - c0
		d := time.Since(t0)
		tLoop += d
		return d
	}
	load := func() time.Duration {
		t0, c0 := time.Now(), cpuTime()
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
		cLoader += cpuTime() - c0
		d := time.Since(t0)
		tLoader += d
		return d
	}
	for range l.Samples(ctx, 0) { // list once, outside the measure
		break
	}
	for b.Loop() {
		// Alternate which runs first, as the machine's load changes.
		var dl, dr time.Duration
		if epoch%2 == 0 {
			dl = loop()
			dr = load()
		} else {
			dr = load()
			dl = loop()
		}
		ratios = append(ratios, dl.Seconds()/dr.Seconds())
		epoch++
	}
	total := float64(benchSamples * epoch)
	b.ReportMetric(total/tLoader.Seconds(), "loader-samples/s")
	b.ReportMetric(total/tLoop.Seconds(), "loop-samples/s")
	b.ReportMetric(tLoop.Seconds()/tLoader.Seconds(), "ratio")
	b.ReportMetric(median(ratios), "median-ratio")
	b.ReportMetric(slices.Min(ratios), "min-ratio")
	b.ReportMetric(slices.Max(ratios), "max-ratio")
	b.ReportMetric(float64(cLoader.Nanoseconds())/total, "loader-cpu-ns/sample")
	b.ReportMetric(float64(cLoop.Nanoseconds())/total, "loop-cpu-ns/sample")
}

// benchSideEnv, set in the environment of a child process of
// BenchmarkSamplesProcesses, names the side the child runs: "loop" or
// "loader".
const benchSideEnv = "INSITU_LOADER_BENCH_SIDE"

// benchSideEpochs is the number of epochs a child of
// BenchmarkSamplesProcesses measures, after one it does not.
const benchSideEpochs = 2

// benchFigures are what a child of BenchmarkSamplesProcesses measured.
type benchFigures struct {
	wall, cpu time.Duration
	samples   int
}

// benchSide runs side ("loop" or "loader") as BenchmarkSamples does, one
// epoch to warm up and benchSideEpochs measured, and prints its figures
// for BenchmarkSamplesProcesses; it returns the exit status.
func benchSide(side string) int {
	ctx := context.Background()
	src := &genSource{n: benchSamples, size: benchSize}
	par := 2 * runtime.GOMAXPROCS(0)
	var epoch func(e int) int
	switch side {
	case "loop":
		var names []insitu.Name
		for obj := range src.Objects(ctx) {
			names = append(names, obj.Name)
		}
		epoch = func(int) int { return handLoop(ctx, src, names, par, invert) }
	case "loader":
		l, err := loader.New(src, &loader.Options{Seed: 1, Transform: invert, Concurrency: par, Prefetch: 2 * par})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		epoch = func(e int) int {
			n := 0
			for _, err := range l.Samples(ctx, e) {
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					return -1
				}
				n++
			}
			return n
		}
	default:
		fmt.Fprintf(os.Stderr, "%s=%q; want loop or loader\n", benchSideEnv, side)
		return 2
	}
	if n := epoch(0); n != benchSamples {
		fmt.Fprintf(os.Stderr, "%s: %d samples; want %d\n", side, n, benchSamples)
		return 1
	}
	t0, c0 := time.Now(), cpuTime()
	n := 0
	for e := 1; e <= benchSideEpochs; e++ {
		n += epoch(e)
	}
	wall, cpu := time.Since(t0), cpuTime()-c0
	if n != benchSideEpochs*benchSamples {
		fmt.Fprintf(os.Stderr, "%s: %d samples; want %d\n", side, n, benchSideEpochs*benchSamples)
		return 1
	}
	fmt.Printf("wall-ns %d cpu-ns %d samples %d\n", wall.Nanoseconds(), cpu.Nanoseconds(), n)
	return 0
}

// runSide runs side in a child process (this test binary, with the
// GOMAXPROCS of this one) and returns its figures.
func runSide(b *testing.B, side string) benchFigures {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), benchSideEnv+"="+side, fmt.Sprintf("GOMAXPROCS=%d", runtime.GOMAXPROCS(0)))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("%s: %v\n%s", side, err, &stderr)
	}
	var wall, cpu int64
	var f benchFigures
	if _, err := fmt.Sscanf(string(out), "wall-ns %d cpu-ns %d samples %d\n", &wall, &cpu, &f.samples); err != nil || f.samples != benchSideEpochs*benchSamples {
		b.Fatalf("%s: %q: %v", side, out, err)
	}
	f.wall, f.cpu = time.Duration(wall), time.Duration(cpu)
	return f
}

// BenchmarkSamplesProcesses is BenchmarkSamples with each side in a
// process of its own, so that each has its own heap, garbage collector
// and scheduler: each iteration runs the loop's process and the loader's
// in turn (alternating which goes first), each measuring
// benchSideEpochs epochs after one to warm up. ratio is loader/loop in
// samples/s (the target: at least 0.95), median-ratio the median of the
// iterations', cpu-ns/sample the medians of each side's.
func BenchmarkSamplesProcesses(b *testing.B) {
	var ratios, cpuLoader, cpuLoop []float64
	var tLoop, tLoader time.Duration
	i := 0
	for b.Loop() {
		var loop, load benchFigures
		if i%2 == 0 {
			loop = runSide(b, "loop")
			load = runSide(b, "loader")
		} else {
			load = runSide(b, "loader")
			loop = runSide(b, "loop")
		}
		tLoop, tLoader = tLoop+loop.wall, tLoader+load.wall
		ratios = append(ratios, loop.wall.Seconds()/load.wall.Seconds())
		cpuLoader = append(cpuLoader, float64(load.cpu.Nanoseconds())/float64(load.samples))
		cpuLoop = append(cpuLoop, float64(loop.cpu.Nanoseconds())/float64(loop.samples))
		i++
	}
	total := float64(benchSideEpochs * benchSamples * i)
	b.ReportMetric(total/tLoader.Seconds(), "loader-samples/s")
	b.ReportMetric(total/tLoop.Seconds(), "loop-samples/s")
	b.ReportMetric(tLoop.Seconds()/tLoader.Seconds(), "ratio")
	b.ReportMetric(median(ratios), "median-ratio")
	b.ReportMetric(slices.Min(ratios), "min-ratio")
	b.ReportMetric(slices.Max(ratios), "max-ratio")
	b.ReportMetric(median(cpuLoader), "loader-cpu-ns/sample")
	b.ReportMetric(median(cpuLoop), "loop-cpu-ns/sample")
}

// cpuTime returns the CPU time (user and system) of this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// median returns the median of xs (not empty).
func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// BenchmarkFirstBatch compares the time to a loader's first batch of 64
// with the time to read one batch of 64 once running, in each mode: with
// ShuffleGlobal, "global-listing" lists the source first (epoch 0),
// "global" has it listed (a later epoch), "global-given-listing" is a new
// loader given the listing of another (Options.Listing), as the workers
// of a process or the next run of a job would be; "listing" is the time
// to list the source alone.
func BenchmarkFirstBatch(b *testing.B) {
	ctx := context.Background()
	src := &genSource{n: benchSamples, size: benchSize}
	listed, err := loader.New(src, nil)
	if err != nil {
		b.Fatal(err)
	}
	listing, err := listed.Listing(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("listing", func(b *testing.B) {
		for b.Loop() {
			l, _ := loader.New(src, nil)
			if _, err := l.Listing(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, bc := range []struct {
		name    string
		mode    loader.ShuffleMode
		epoch   int
		listing *loader.Listing
	}{
		{"global-listing", loader.ShuffleGlobal, 0, nil},
		{"global", loader.ShuffleGlobal, 1, nil},
		{"global-given-listing", loader.ShuffleGlobal, 0, listing},
		{"buffer-1000", loader.ShuffleBuffer, 0, nil},
		{"none", loader.ShuffleNone, 0, nil},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var first, one time.Duration
			for b.Loop() {
				l, err := loader.New(src, &loader.Options{Seed: 1, Transform: invert, Shuffle: bc.mode, BufferSize: 1000, Listing: bc.listing})
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

// BenchmarkShards compares the samples/s of 1 KiB samples read from tar
// shards of 100 with those of the same samples read as one file each, from
// a local directory; ratio is shards/files (the target: at least 5).
func BenchmarkShards(b *testing.B) {
	const n, per, size = 4000, 100, 1 << 10
	ctx := context.Background()
	filesDir, shardsDir := b.TempDir(), b.TempDir()
	body := bytes.Repeat([]byte{'x'}, size)
	for i := range n {
		if err := os.WriteFile(filepath.Join(filesDir, fmt.Sprintf("s-%05d.bin", i)), body, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	for s := range n / per {
		var ms []member
		for j := range per {
			ms = append(ms, member{fmt.Sprintf("s-%05d.bin", s*per+j), body})
		}
		writeShard(b, shardsDir, fmt.Sprintf("shard-%03d.tar", s), ms)
	}
	files, _ := source.Dir(filesDir, nil)
	shards, _ := source.Dir(shardsDir, nil)
	lf, _ := loader.New(files, &loader.Options{Seed: 1})
	ls, _ := loader.New(shards, &loader.Options{Seed: 1, Shards: true})
	count := func(l *loader.Loader, e int) time.Duration {
		t0 := time.Now()
		c := 0
		for _, err := range l.Samples(ctx, e) {
			if err != nil {
				b.Fatal(err)
			}
			c++
		}
		if c != n {
			b.Fatal(c)
		}
		return time.Since(t0)
	}
	count(lf, 0) // list, and warm the page cache
	count(ls, 0)
	var tf, ts time.Duration
	var ratios []float64
	e := 1
	for b.Loop() {
		// Alternate which runs first, as the machine's load changes.
		var df, ds time.Duration
		if e%2 == 0 {
			df = count(lf, e)
			ds = count(ls, e)
		} else {
			ds = count(ls, e)
			df = count(lf, e)
		}
		tf, ts = tf+df, ts+ds
		ratios = append(ratios, df.Seconds()/ds.Seconds())
		e++
	}
	total := float64(n * (e - 1))
	b.ReportMetric(total/ts.Seconds(), "shard-samples/s")
	b.ReportMetric(total/tf.Seconds(), "file-samples/s")
	b.ReportMetric(tf.Seconds()/ts.Seconds(), "ratio")
	b.ReportMetric(median(ratios), "median-ratio")
}

// BenchmarkCluster reads 4 KiB samples from a 3-node cluster, transformed
// on their owners: a loader over loader.Cluster (batch GETs), a loader
// over source.Cluster (one transformed GET per sample), and a
// hand-written loop of transformed GETs with the loader's parallelism.
func BenchmarkCluster(b *testing.B) {
	const n = 3000
	ctx := context.Background()
	c, err := nodetest.Start(ctx, 3, &nodetest.Options{Transforms: map[string]insitu.Transform{"upper": upper}})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	body := bytes.Repeat([]byte{'x'}, 4<<10)
	var names []insitu.Name
	for i := range n {
		name := insitu.Name{Bucket: "train", Key: fmt.Sprintf("s-%05d", i)}
		if _, err := c.Put(ctx, name, bytes.NewReader(body), -1); err != nil {
			b.Fatal(err)
		}
		names = append(names, name)
	}
	copts := &source.ClusterOptions{Transform: []string{"upper"}}
	batched, _ := loader.Cluster(c.Client(), "train", copts)
	single, _ := source.Cluster(c.Client(), "train", copts)
	par := 2 * runtime.GOMAXPROCS(0)
	lb, _ := loader.New(batched, &loader.Options{Seed: 1, Concurrency: par})
	lg, _ := loader.New(single, &loader.Options{Seed: 1, Concurrency: par, Prefetch: 8 * par})
	var tb, tg, th time.Duration
	epoch := func(l *loader.Loader, e int) time.Duration {
		t0 := time.Now()
		count := 0
		for _, err := range l.Samples(ctx, e) {
			if err != nil {
				b.Fatal(err)
			}
			count++
		}
		if count != n {
			b.Fatal(count)
		}
		return time.Since(t0)
	}
	epoch(lb, 0) // list, outside the measure
	epoch(lg, 0)
	e := 1
	for b.Loop() {
		// Each in turn, as the machine's load changes.
		tb += epoch(lb, e)
		tg += epoch(lg, e)
		t0 := time.Now()
		if count := handLoop(ctx, single, names, par, insitu.Identity); count != n {
			b.Fatal(count)
		}
		th += time.Since(t0)
		e++
	}
	total := float64(n * (e - 1))
	b.ReportMetric(total/tb.Seconds(), "batch-get-samples/s")
	b.ReportMetric(total/tg.Seconds(), "get-samples/s")
	b.ReportMetric(total/th.Seconds(), "hand-loop-samples/s")
	b.ReportMetric(th.Seconds()/tg.Seconds(), "get/hand-loop")
}

// BenchmarkClusterShards compares, on a 3-node cluster, the samples/s of
// 1 KiB samples read from tar shards of 100 (one GET per shard) with
// those of the same samples read as one object each: one GET per sample
// (source.Cluster), and batch GETs of 64 (loader.Cluster). ratio is
// shards/one GET per sample, batch-ratio shards/batch GETs.
func BenchmarkClusterShards(b *testing.B) {
	const n, per, size = 4000, 100, 1 << 10
	ctx := context.Background()
	c, err := nodetest.Start(ctx, 3, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	body := bytes.Repeat([]byte{'x'}, size)
	for i := range n {
		if _, err := c.Put(ctx, insitu.Name{Bucket: "objects", Key: fmt.Sprintf("s-%05d.bin", i)}, bytes.NewReader(body), -1); err != nil {
			b.Fatal(err)
		}
	}
	dir := b.TempDir()
	for s := range n / per {
		var ms []member
		for j := range per {
			ms = append(ms, member{fmt.Sprintf("s-%05d.bin", s*per+j), body})
		}
		name := fmt.Sprintf("shard-%03d.tar", s)
		writeShard(b, dir, name, ms)
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			b.Fatal(err)
		}
		_, err = c.Put(ctx, insitu.Name{Bucket: "shards", Key: name}, f, -1)
		f.Close()
		if err != nil {
			b.Fatal(err)
		}
	}
	par := 2 * runtime.GOMAXPROCS(0)
	single, _ := source.Cluster(c.Client(), "objects", nil)
	batched, _ := loader.Cluster(c.Client(), "objects", nil)
	shards, _ := source.Cluster(c.Client(), "shards", nil)
	lg, _ := loader.New(single, &loader.Options{Seed: 1, Concurrency: par, Prefetch: 8 * par})
	lb, _ := loader.New(batched, &loader.Options{Seed: 1, Concurrency: par})
	ls, _ := loader.New(shards, &loader.Options{Seed: 1, Shards: true})
	count := func(l *loader.Loader, e int) time.Duration {
		t0 := time.Now()
		k := 0
		for _, err := range l.Samples(ctx, e) {
			if err != nil {
				b.Fatal(err)
			}
			k++
		}
		if k != n {
			b.Fatal(k)
		}
		return time.Since(t0)
	}
	ls3 := []*loader.Loader{lg, lb, ls}
	for _, l := range ls3 {
		count(l, 0) // list, outside the measure
	}
	var t [3]time.Duration
	var ratios, bratios []float64
	e := 1
	for b.Loop() {
		// Each in turn, starting with another one each time.
		var d [3]time.Duration
		for k := range 3 {
			i := (k + e) % 3
			d[i] = count(ls3[i], e)
			t[i] += d[i]
		}
		ratios = append(ratios, d[0].Seconds()/d[2].Seconds())
		bratios = append(bratios, d[1].Seconds()/d[2].Seconds())
		e++
	}
	total := float64(n * (e - 1))
	b.ReportMetric(total/t[2].Seconds(), "shard-samples/s")
	b.ReportMetric(total/t[0].Seconds(), "get-samples/s")
	b.ReportMetric(total/t[1].Seconds(), "batch-get-samples/s")
	b.ReportMetric(median(ratios), "median-ratio")
	b.ReportMetric(median(bratios), "median-batch-ratio")
}
