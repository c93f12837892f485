package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/node/nodetest"
	"github.com/insitu-data/insitu/pipeline"
	"github.com/insitu-data/insitu/s3/s3test"
	"github.com/insitu-data/insitu/source"
	"github.com/insitu-data/insitu/transform/ffmpeg"
	"github.com/insitu-data/insitu/transform/ffmpeg/ffmpegtest"
	"github.com/insitu-data/insitu/transport"
	"github.com/minio/minio-go/v7"
	"github.com/sourcegraph/conc/pool"
)

// The buckets and the transform name the benchmark uses.
const (
	srcBucket          = "flac"
	transformName      = "wav"       // one ffmpeg process per object
	batchTransformName = "wav-batch" // one ffmpeg process per batch of objects
	seedWorkers        = 8           // uploads in flight while filling the stores (not measured)
)

// rename is the outputs' naming: a.flac → a.wav.
var rename = pipeline.ReplaceExt(".flac", ".wav")

// input is one .flac file of the set.
type input struct {
	key  string // its key in the buckets, "/"-separated
	path string // the file on this machine
	size int64
}

// bench holds what the runs share: the inputs, the transform, the
// embedded cluster and the S3 server, both filled with the inputs.
type bench struct {
	o       options
	log     io.Writer // progress lines; io.Discard with -q
	work    string
	tmpWork bool

	inputs     []input
	inputBytes int64
	want       map[string]bool       // the output keys every run must produce
	wavT       *ffmpeg.WAV           // the floor runs its Command
	transform  insitu.Transform      // wavT within -ffmpeg-slots, one object per call: what the other configurations run
	batchT     insitu.BatchTransform // wavT within -ffmpeg-slots, taking batches: what the batched configurations run
	cluster    *nodetest.Cluster
	// batchCluster is a second embedded cluster, of the same inputs,
	// whose transform servers take batches (the batched sidecar and
	// remote rows); nil unless such a row is measured.
	batchCluster *nodetest.Cluster
	s3           *s3test.Server
	sw           *swStore // nil unless a SeaweedFS row is measured
	configs      []*config
	machine      machine
}

// newBench prepares everything the runs need, none of it measured. It
// returns the bench even with an error, so that the caller closes what
// was started.
func newBench(ctx context.Context, o options, stdout io.Writer) (*bench, error) {
	b := &bench{o: o, log: stdout, work: o.work}
	if o.quiet {
		b.log = io.Discard
	}
	if _, err := ffmpeg.Lookup(""); err != nil {
		return nil, toolError{fmt.Errorf("ffmpeg is needed: %w", err)}
	}
	if o.baseline {
		if _, err := exec.LookPath("versitygw"); err != nil {
			return nil, toolError{fmt.Errorf("the client-side baseline needs versitygw, which is not on PATH: install it with `%s`, or run with -baseline=false", s3test.InstallHint)}
		}
	}
	if b.work == "" {
		dir, err := os.MkdirTemp("", "etlbench-")
		if err != nil {
			return nil, err
		}
		b.work, b.tmpWork = dir, true
	}
	b.machine = describeMachine(ctx)

	if err := b.loadInputs(ctx); err != nil {
		return b, err
	}
	tmp := filepath.Join(b.work, "tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return b, err
	}
	var err error
	b.wavT, err = ffmpeg.NewWAV(&ffmpeg.WAVOptions{Channels: o.channels, SampleRate: o.rate, TempDir: tmp})
	if err != nil {
		return b, err
	}
	b.transform = limit(b.wavT, o.slots)
	b.batchT = limitBatch(b.wavT, o.slots)

	start := time.Now()
	b.cluster, err = nodetest.Start(ctx, o.nodes, &nodetest.Options{
		Dir:        filepath.Join(b.work, "cluster"),
		Transforms: map[string]insitu.Transform{transformName: b.transform, batchTransformName: b.batchT},
		Sidecar:    b.transform,
	})
	if err != nil {
		return b, fmt.Errorf("starting the embedded cluster: %w", err)
	}
	if err := b.seed(ctx, func(ctx context.Context, in input) error {
		f, err := os.Open(in.path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = b.cluster.Put(ctx, insitu.Name{Bucket: srcBucket, Key: in.key}, f, in.size)
		return err
	}); err != nil {
		return b, fmt.Errorf("filling the cluster: %w", err)
	}
	fmt.Fprintf(b.log, "started a %d-node cluster in %s and stored the inputs (%v)\n", o.nodes, b.cluster.Dir(), time.Since(start).Round(time.Millisecond))

	if b.wantsBatchCluster() {
		start = time.Now()
		b.batchCluster, err = nodetest.Start(ctx, o.nodes, &nodetest.Options{
			Dir:            filepath.Join(b.work, "cluster-batched"),
			Sidecar:        b.batchT,
			SidecarOptions: &transport.ServerOptions{Batch: &transport.BatchOptions{Size: o.batch}},
		})
		if err != nil {
			return b, fmt.Errorf("starting the cluster of the batched transform servers: %w", err)
		}
		if err := b.seed(ctx, func(ctx context.Context, in input) error {
			f, err := os.Open(in.path)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = b.batchCluster.Put(ctx, insitu.Name{Bucket: srcBucket, Key: in.key}, f, in.size)
			return err
		}); err != nil {
			return b, fmt.Errorf("filling the cluster of the batched transform servers: %w", err)
		}
		fmt.Fprintf(b.log, "started a %d-node cluster whose transform servers take batches of %d in %s and stored the inputs (%v)\n",
			o.nodes, o.batch, b.batchCluster.Dir(), time.Since(start).Round(time.Millisecond))
	}

	if o.baseline {
		start = time.Now()
		b.s3, err = s3test.StartProcess(ctx, &s3test.Options{Root: filepath.Join(b.work, "s3")})
		if err != nil {
			return b, fmt.Errorf("starting versitygw: %w", err)
		}
		if err := b.s3.Client.MakeBucket(ctx, srcBucket, minio.MakeBucketOptions{Region: s3test.Region}); err != nil {
			return b, fmt.Errorf("versitygw: %w", err)
		}
		if err := b.seed(ctx, func(ctx context.Context, in input) error {
			_, err := b.s3.Client.FPutObject(ctx, srcBucket, in.key, in.path, minio.PutObjectOptions{ContentType: "audio/flac"})
			return err
		}); err != nil {
			return b, fmt.Errorf("filling s3://%s: %w", srcBucket, err)
		}
		fmt.Fprintf(b.log, "started versitygw at %s and stored the inputs (%v)\n", b.s3.URL, time.Since(start).Round(time.Millisecond))
	}
	if b.wantsSeaweedFS() {
		if err := b.startSeaweedFS(ctx); err != nil {
			return b, err
		}
	}
	b.configs = b.makeConfigs()
	return b, nil
}

// loadInputs generates the clips, or lists the .flac files of -src.
func (b *bench) loadInputs(ctx context.Context) error {
	dir := b.o.src
	if dir == "" {
		dir = filepath.Join(b.work, "flac")
		start := time.Now()
		fmt.Fprintf(b.log, "generating %d clips (16 kHz mono, %v–%v, seed %d) in %s\n", b.o.n, b.o.minDur, b.o.maxDur, b.o.seed, dir)
		if _, err := ffmpegtest.GenerateSet(ctx, "", dir, b.o.n, clipSpec(b.o.seed, b.o.minDur, b.o.maxDur)); err != nil {
			return fmt.Errorf("generating clips: %w", err)
		}
		fmt.Fprintf(b.log, "generated in %v\n", time.Since(start).Round(time.Millisecond))
	}
	src, err := source.Dir(dir, &source.DirOptions{Suffix: ".flac"})
	if err != nil {
		return err
	}
	for obj, err := range src.Objects(ctx) {
		if err != nil {
			return err
		}
		b.inputs = append(b.inputs, input{key: obj.Name.Key, path: obj.Path, size: obj.Size})
		b.inputBytes += obj.Size
	}
	if len(b.inputs) == 0 {
		return fmt.Errorf("no .flac files under %s", dir)
	}
	b.want = make(map[string]bool, len(b.inputs))
	for _, in := range b.inputs {
		out, err := rename(insitu.Name{Bucket: srcBucket, Key: in.key})
		if err != nil {
			return err
		}
		if b.want[out.Key] {
			return fmt.Errorf("two inputs give the output %s", out.Key)
		}
		b.want[out.Key] = true
	}
	fmt.Fprintf(b.log, "%d inputs, %s of FLAC\n", len(b.inputs), humanize.IBytes(uint64(b.inputBytes)))
	return nil
}

// clipSpec describes generated clip i: 16 kHz mono, its length spread
// evenly over [minDur, maxDur] by a hash of (seed, i), its sound picked by
// its own seed. The same seed gives the same set.
func clipSpec(seed int, minDur, maxDur time.Duration) func(i int) ffmpegtest.SampleSpec {
	return func(i int) ffmpegtest.SampleSpec {
		h := uint64(seed)*0x9E3779B97F4A7C15 + uint64(i)*0xBF58476D1CE4E5B9
		h ^= h >> 31
		h *= 0x94D049BB133111EB
		h ^= h >> 29
		span := int64(maxDur-minDur) / int64(time.Millisecond)
		ms := int64(minDur/time.Millisecond) + int64(h%uint64(span+1))
		return ffmpegtest.SampleSpec{Seed: seed*1_000_003 + i, Duration: time.Duration(ms) * time.Millisecond, SampleRate: 16000, Channels: 1}
	}
}

// seed calls put for every input, seedWorkers at once.
func (b *bench) seed(ctx context.Context, put func(context.Context, input) error) error {
	p := pool.New().WithContext(ctx).WithCancelOnError().WithFirstError().WithMaxGoroutines(seedWorkers)
	for _, in := range b.inputs {
		p.Go(func(ctx context.Context) error {
			if err := put(ctx, in); err != nil {
				return fmt.Errorf("%s: %w", in.key, err)
			}
			return nil
		})
	}
	return p.Wait()
}

func (b *bench) close() {
	if b.cluster != nil {
		b.cluster.Close()
	}
	if b.batchCluster != nil {
		b.batchCluster.Close()
	}
	if b.s3 != nil {
		b.s3.Close()
	}
	if b.sw != nil {
		b.sw.close()
	}
	if b.tmpWork {
		os.RemoveAll(b.work)
	}
}

// measure runs every configuration -repeat times, alternating in a fixed
// order (the floor first), checks and removes each run's outputs, and
// returns the results.
func (b *bench) measure(ctx context.Context) (*results, error) {
	rss := startRSS(50 * time.Millisecond)
	defer rss.close()
	if b.o.cpuProfile != "" {
		f, err := os.Create(b.o.cpuProfile)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, err
		}
		defer pprof.StopCPUProfile()
	}
	var ref map[string]uint64 // the (per-file) floor's outputs, by key: the checksums every run must match
	seq := 0
	for round := 1; round <= b.o.repeat; round++ {
		// Odd rounds run the configurations in order, even ones backwards,
		// so that a load that rises or falls through a round does not
		// always meet the same rows. The floor runs first in round 1: its
		// outputs are the reference.
		order := slices.Clone(b.configs)
		if round%2 == 0 {
			slices.Reverse(order)
		}
		for _, c := range order {
			if c.err != nil {
				continue // failed in an earlier round
			}
			seq++
			dst := fmt.Sprintf("wav-%d", seq)
			if err := c.out.prepare(ctx, dst); err != nil {
				return nil, fmt.Errorf("%s: preparing the output: %w", c.name, err)
			}
			// Start each run from the same place: no garbage left by the
			// last one, the heap given back to the system.
			runtime.GC()
			debug.FreeOSMemory()
			rss.reset()
			cpu0, cpuOK := sampleCPU()
			start := time.Now()
			err := c.run(ctx, dst)
			elapsed := time.Since(start)
			cpu1, _ := sampleCPU()
			peak := rss.peak()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if err == nil {
				var sums map[string]uint64
				if sums, err = c.out.check(ctx, dst, wavSpec{b.o.channels, b.o.rate}); err == nil {
					err = b.compare(sums, ref)
				}
				if err == nil && ref == nil {
					ref = sums
				}
			}
			if rerr := c.out.remove(ctx, dst); rerr != nil && err == nil {
				err = fmt.Errorf("removing the outputs: %w", rerr)
			}
			status := "ok"
			if err != nil {
				c.err = err
				status = "FAILED: " + err.Error()
			} else {
				c.times = append(c.times, elapsed)
				c.peakRSS = max(c.peakRSS, peak)
				if cpuOK {
					c.cpu = append(c.cpu, cpu1.sub(cpu0))
				}
			}
			cpuNote := ""
			if cpuOK && err == nil {
				d := cpu1.sub(cpu0)
				cpuNote = fmt.Sprintf("  CPU %.2fs (ffmpeg %.2f, etlbench %.2f, servers %.2f)", d.total().Seconds(), d.children.Seconds(), d.self.Seconds(), d.running.Seconds())
			}
			fmt.Fprintf(b.log, "round %d/%d  %-44s %8.2fs%s  %s\n", round, b.o.repeat, c.name, elapsed.Seconds(), cpuNote, status)
			if ref == nil {
				return nil, fmt.Errorf("the floor failed, so nothing can be compared: %w", err)
			}
		}
	}
	res := b.results()
	res.ProcessPeakRSS = processPeakRSS()
	return res, nil
}

// compare checks a run's outputs: one per input, each byte for byte the
// floor's (ref; nil for the floor's first run).
func (b *bench) compare(sums, ref map[string]uint64) error {
	var missing, extra, differ []string
	for k := range b.want {
		if _, ok := sums[k]; !ok {
			missing = append(missing, k)
		}
	}
	for k, s := range sums {
		switch {
		case !b.want[k]:
			extra = append(extra, k)
		case ref != nil && ref[k] != s:
			differ = append(differ, k)
		}
	}
	var errs []error
	for _, l := range []struct {
		what  string
		names []string
	}{{"missing", missing}, {"unexpected", extra}, {"different from the floor's", differ}} {
		if len(l.names) > 0 {
			slices.Sort(l.names)
			errs = append(errs, fmt.Errorf("%d outputs %s (first: %s)", len(l.names), l.what, l.names[0]))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%d valid outputs, want %d: %w", len(sums)-len(extra), len(b.want), errors.Join(errs...))
	}
	return nil
}
