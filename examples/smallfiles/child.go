package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/cluster"
	"github.com/insitu-data/insitu/node/nodetest"
	"github.com/insitu-data/insitu/pipeline"
	"github.com/insitu-data/insitu/sink"
	"github.com/insitu-data/insitu/source"
)

// runChild runs the configuration c.child once and prints its result as
// JSON; the outputs go to $SMALLFILES_OUT (the dir mode) or the bucket
// $SMALLFILES_BUCKET (the cluster mode).
func runChild(ctx context.Context, c config, stdout, stderr io.Writer) int {
	out, bucket := os.Getenv("SMALLFILES_OUT"), os.Getenv("SMALLFILES_BUCKET")
	if p := os.Getenv("SMALLFILES_CPUPROFILE"); p != "" {
		// A profile of the child's run, for looking into one configuration.
		f, err := os.Create(p)
		if err != nil {
			fmt.Fprintln(stderr, "smallfiles:", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "smallfiles:", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	if p := os.Getenv("SMALLFILES_TRACE"); p != "" {
		// An execution trace of the child's run (go tool trace).
		f, err := os.Create(p)
		if err != nil {
			fmt.Fprintln(stderr, "smallfiles:", err)
			return 1
		}
		defer f.Close()
		if err := trace.Start(f); err != nil {
			fmt.Fprintln(stderr, "smallfiles:", err)
			return 1
		}
		defer trace.Stop()
	}
	var res result
	var err error
	switch c.child {
	case "discard/floor":
		res, err = timed(func(r *result) error { return readFloor(ctx, filesDir(c, c.n), c.workers, r) })
	case "discard/insitu":
		res, err = runPipeline(ctx, filesDir(c, c.n), c.workers, sink.Discard())
	case "dir/floor":
		res, err = timed(func(r *result) error { return writeFloor(ctx, filesDir(c, c.dirN), out, c.workers, r) })
	case "dir/grouped":
		res, err = timed(func(r *result) error { return groupedFloor(ctx, filesDir(c, c.dirN), out, c.workers, r) })
	case "dir/insitu":
		var dst *sink.DirSink
		if dst, err = sink.Dir(out, nil); err == nil {
			res, err = runPipeline(ctx, filesDir(c, c.dirN), c.workers, dst)
		}
	case "cluster/floor":
		res, err = clusterFloor(ctx, c, bucket)
	case "cluster/insitu":
		res, err = clusterJob(ctx, c, bucket)
	default:
		err = fmt.Errorf("unknown configuration %q", c.child)
	}
	if err != nil {
		fmt.Fprintf(stderr, "smallfiles %s: %v\n", c.child, err)
		return 1
	}
	b, _ := json.Marshal(res)
	fmt.Fprintf(stdout, "%s\n", b)
	return 0
}

// timed runs f and sets the result's elapsed time.
func timed(f func(*result) error) (result, error) {
	var r result
	cpu0 := cpuTime()
	t := time.Now()
	err := f(&r)
	r.Elapsed = int64(time.Since(t))
	r.CPU = cpuTime() - cpu0
	return r, err
}

// cpuTime is the user and system time of the process so far, in
// nanoseconds, all its threads included.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// runPipeline runs Dir(root) → Identity → dst with workers workers.
func runPipeline(ctx context.Context, root string, workers int, dst insitu.Sink) (result, error) {
	src, err := source.Dir(root, nil)
	if err != nil {
		return result{}, err
	}
	return timed(func(r *result) error {
		rep, err := pipeline.Run(ctx, src, insitu.Identity, dst, &pipeline.Options{Workers: workers})
		r.Objects, r.Bytes = rep.Transformed, rep.BytesOut
		return err
	})
}

// walk sends the path of every regular file under root, relative to root,
// in the order of os.ReadDir (sorted), and closes paths at the end.
func walk(ctx context.Context, root string, paths chan<- string) error {
	defer close(paths)
	var dir func(rel string) error
	dir = func(rel string) error {
		des, err := os.ReadDir(filepath.Join(root, rel))
		if err != nil {
			return err
		}
		for _, de := range des {
			p := filepath.Join(rel, de.Name())
			switch {
			case de.IsDir():
				if err := dir(p); err != nil {
					return err
				}
			case de.Type().IsRegular():
				select {
				case paths <- p:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		}
		return nil
	}
	return dir("")
}

// readFloor walks root on one goroutine and reads every file to its end on
// workers goroutines, one buffer each.
func readFloor(ctx context.Context, root string, workers int, r *result) error {
	return fanOut(ctx, root, workers, r, func(_ int, rel string, buf []byte) (int64, error) {
		f, err := os.Open(filepath.Join(root, rel))
		if err != nil {
			return 0, err
		}
		defer f.Close()
		var n int64
		for {
			k, err := f.Read(buf)
			n += int64(k)
			if err == io.EOF {
				return n, nil
			}
			if err != nil {
				return n, err
			}
		}
	})
}

// writeFloor walks root and, on workers goroutines, reads each file and
// writes it under out with sink.Dir's durability: a temporary file made
// exclusively, written, fsynced and closed, renamed to its name, and its
// directory fsynced.
func writeFloor(ctx context.Context, root, out string, workers int, r *result) error {
	var made sync.Map
	var seq atomic.Int64
	return fanOut(ctx, root, workers, r, func(_ int, rel string, buf []byte) (int64, error) {
		b, err := readAll(filepath.Join(root, rel), buf)
		if err != nil {
			return 0, err
		}
		dst := filepath.Join(out, rel)
		dir := filepath.Dir(dst)
		if _, ok := made.Load(dir); !ok {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return 0, err
			}
			made.Store(dir, true)
		}
		tmp := filepath.Join(dir, ".tmp-"+strconv.FormatInt(seq.Add(1), 10))
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return 0, err
		}
		if _, err := f.Write(b); err != nil {
			f.Close()
			return 0, err
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return 0, err
		}
		if err := f.Close(); err != nil {
			return 0, err
		}
		if err := os.Rename(tmp, dst); err != nil {
			return 0, err
		}
		d, err := os.Open(dir)
		if err != nil {
			return 0, err
		}
		defer d.Close()
		return int64(len(b)), d.Sync()
	})
}

// readAll reads the file p into buf, which it grows when the file is
// larger, and returns the bytes read.
func readAll(p string, buf []byte) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	n := 0
	for {
		if n == len(buf) {
			buf = append(buf, 0)[:n]
			buf = buf[:cap(buf)]
		}
		k, err := f.Read(buf[n:])
		n += k
		if err == io.EOF {
			return buf[:n], nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// fanOut walks root on one goroutine and calls do for each file on workers
// goroutines, each with its number and its own 32 KiB buffer, summing what
// they report.
func fanOut(ctx context.Context, root string, workers int, r *result, do func(w int, rel string, buf []byte) (int64, error)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	paths := make(chan string, 64)
	var walkErr error
	var wg sync.WaitGroup
	wg.Go(func() { walkErr = walk(ctx, root, paths) })
	var objects, bytes atomic.Int64
	errs := make([]error, workers)
	for w := range workers {
		wg.Go(func() {
			buf := make([]byte, 32<<10)
			for p := range paths {
				n, err := do(w, p, buf)
				if err != nil {
					errs[w] = err
					cancel()
					for range paths {
					}
					return
				}
				objects.Add(1)
				bytes.Add(n)
			}
		})
	}
	wg.Wait()
	r.Objects, r.Bytes = objects.Load(), bytes.Load()
	if walkErr != nil {
		return walkErr
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// clusterFloor runs the write floor on every node's directory at once, from
// its input bucket to its output bucket, with -workers goroutines a node:
// the job's Workers.
func clusterFloor(ctx context.Context, c config, bucket string) (result, error) {
	dir := clusterDir(c)
	return timed(func(r *result) error {
		parts := make([]result, c.nodes)
		errs := make([]error, c.nodes)
		var wg sync.WaitGroup
		for i := range c.nodes {
			id := fmt.Sprintf("n%d", i+1)
			wg.Go(func() {
				errs[i] = writeFloor(ctx, filepath.Join(dir, id, inBucket), filepath.Join(dir, id, bucket), c.workers, &parts[i])
			})
		}
		wg.Wait()
		for i := range c.nodes {
			r.Objects += parts[i].Objects
			r.Bytes += parts[i].Bytes
			if errs[i] != nil {
				return errs[i]
			}
		}
		return nil
	})
}

// clusterJob starts the embedded cluster on its directory and times one
// identity job from the input bucket to the output bucket.
func clusterJob(ctx context.Context, c config, bucket string) (result, error) {
	cl, err := nodetest.Start(ctx, c.nodes, &nodetest.Options{Dir: clusterDir(c), Placement: placement(c),
		Transforms: map[string]insitu.Transform{"identity": insitu.Identity}})
	if err != nil {
		return result{}, err
	}
	defer cl.Close()
	return timed(func(r *result) error {
		rep, err := cluster.Run(ctx, cl.Client(), cluster.JobSpec{Bucket: inBucket, DstBucket: bucket, Transform: "identity", Workers: c.workers}, nil)
		r.Objects, r.Bytes = rep.Transformed, rep.BytesOut
		return err
	})
}
