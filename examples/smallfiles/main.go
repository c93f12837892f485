// Command smallfiles measures insitu on many small objects against floors
// that do the same work in a minimal program with the same parallelism, in
// one run, interleaved (issue 16: "small objects at the speed of the file
// system").
//
//	go run ./examples/smallfiles                       # every mode, defaults below
//	go run ./examples/smallfiles -modes discard -n 100000 -rounds 5
//
// The modes, each a pair of configurations:
//
//   - discard: pipeline.Run(source.Dir, insitu.Identity, sink.Discard) over
//     -n files with -workers workers, against a floor that walks the tree (os.ReadDir on
//     one goroutine, as the runner lists on one) and reads every file to
//     its end on -workers goroutines (open, read, close, one buffer per
//     goroutine);
//   - dir: pipeline.Run(source.Dir, insitu.Identity, sink.Dir) over -dir-n
//     files against a floor that reads each file and writes it with the
//     durability of sink.Dir: a temporary file created exclusively,
//     written, fsynced, closed, renamed to its name, and the directory
//     fsynced; and against dir/grouped, that floor with its syncs grouped
//     (64 files a worker written unsynced, one syncfs, the renames, one
//     fsync a directory), which shows what grouping would gain while each
//     file still appears whole or not at all;
//   - cluster: a job (cluster.Run, the in-process transform "identity") on
//     an embedded cluster of -nodes storage nodes over -cluster-n objects
//     of -cluster-size bytes, against the dir floor run on every node's
//     directory at once with the job's parallelism (-workers a node; the
//     job's Workers).
//     With -placement key the cluster's map places by key
//     (locality.ByKey), so that an output, which keeps its input's key,
//     is put on its input's node; its inputs are then a dataset of their
//     own.
//
// Every configuration runs in a child process of its own (this command,
// re-executed), so that its peak RSS is the kernel's high-water mark of
// that process alone (getrusage's ru_maxrss) and its CPU time is that
// process's while it is timed (getrusage before and after: what a cluster
// does when it starts, such as sweeping its stores for temporary files,
// is not counted). The inputs are generated once under -data and kept for later
// runs (with the same -n and -size) and read once, untimed, before the
// rounds; the outputs of each run go to a directory (a bucket) of their
// own, are checked (count, bytes and a sample byte for byte) outside the
// timing, and are all removed at the end: a removal between runs would
// slow the next run's file creations (see runOne). The table gives per
// configuration the median seconds of the -rounds rounds with their
// min–max, objects/s, the CPU per object, the peak RSS, and each mode's
// ratio insitu/floor: of the medians, and the median of the ratios of the
// rounds (each round runs both, one after the other, in an order that
// alternates).
//
// The children inherit the environment, GOMAXPROCS with it:
// GOMAXPROCS=4 smallfiles runs every configuration with 4 Ps and the same
// -workers.
//
// The exit status is 0 when every run stored what it should, 1 when one did
// not, 2 on a usage error.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// config is the command line.
type config struct {
	n, dirN, size       int
	clusterN, clusterSz int
	nodes               int
	workers             int
	placement           string // the cluster's: "name" or "key"
	rounds              int
	data                string
	modes               []string
	jsonOut             string
	child               string // set in a child: the configuration to run
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var c config
	fs := flag.NewFlagSet("smallfiles", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.n, "n", 1_000_000, "files of the discard mode")
	fs.IntVar(&c.dirN, "dir-n", 20_000, "files of the dir mode (each costs two fsyncs: about 1 ms here)")
	fs.IntVar(&c.size, "size", 16, "bytes of each file of the discard and dir modes")
	fs.IntVar(&c.clusterN, "cluster-n", 100_000, "objects of the cluster mode")
	fs.IntVar(&c.clusterSz, "cluster-size", 4096, "bytes of each object of the cluster mode")
	fs.IntVar(&c.nodes, "nodes", 3, "storage nodes of the cluster mode")
	fs.IntVar(&c.workers, "workers", 2, "objects in flight (the runner's Workers; the floors' goroutines)")
	fs.IntVar(&c.rounds, "rounds", 3, "rounds; each runs every configuration once")
	fs.StringVar(&c.placement, "placement", "name", `the cluster mode's placement: "name" (bucket and key, the default) or "key" (the key alone: each output stays on its input's node)`)
	fs.StringVar(&c.data, "data", filepath.Join(os.TempDir(), "insitu-smallfiles"), "where the inputs are generated and kept")
	modes := fs.String("modes", "discard,dir,cluster", "the modes to run: discard, dir, cluster")
	fs.StringVar(&c.jsonOut, "json", "", "also write the rows as JSON to this file")
	fs.StringVar(&c.child, "child", "", "(internal) run one configuration and print its result")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	c.modes = strings.Split(*modes, ",")
	for _, m := range c.modes {
		if !slices.Contains([]string{"discard", "dir", "cluster"}, m) {
			fmt.Fprintf(stderr, "smallfiles: unknown mode %q: want discard, dir or cluster\n", m)
			return 2
		}
	}
	if c.placement != "name" && c.placement != "key" {
		fmt.Fprintf(stderr, "smallfiles: -placement %q: want name or key\n", c.placement)
		return 2
	}
	if c.n < 1 || c.dirN < 1 || c.size < 0 || c.clusterN < 1 || c.clusterSz < 0 || c.nodes < 1 || c.workers < 1 || c.rounds < 1 {
		fmt.Fprintln(stderr, "smallfiles: -n, -cluster-n, -nodes, -workers and -rounds must be at least 1, sizes at least 0")
		return 2
	}
	if c.child != "" {
		return runChild(ctx, c, stdout, stderr)
	}
	return runParent(ctx, c, stdout, stderr)
}

// result is what a child prints: what it did and how long it took.
type result struct {
	Objects int64 `json:"objects"`
	Bytes   int64 `json:"bytes"`
	Elapsed int64 `json:"elapsed_ns"`
	CPU     int64 `json:"cpu_ns"` // the process's user and system time while timed
}

// A configuration's name is "<mode>/<insitu|floor>"; the dir mode also has
// "dir/grouped", the floor with its syncs grouped.
func configs(modes []string) []string {
	var out []string
	for _, m := range modes {
		out = append(out, m+"/floor")
		if m == "dir" {
			out = append(out, m+"/grouped")
		}
		out = append(out, m+"/insitu")
	}
	return out
}

// objectsOf returns the number of objects of mode.
func objectsOf(c config, mode string) int {
	switch mode {
	case "dir":
		return c.dirN
	case "cluster":
		return c.clusterN
	}
	return c.n
}

// inputsDir is the directory that holds mode's inputs.
func inputsDir(c config, mode string) string {
	if mode == "cluster" {
		return clusterDir(c)
	}
	return filesDir(c, objectsOf(c, mode))
}

// sizeOf returns the size of mode's objects.
func sizeOf(c config, mode string) int {
	if mode == "cluster" {
		return c.clusterSz
	}
	return c.size
}

// sample is one child run as the parent saw it.
type sample struct {
	seconds float64
	cpu     time.Duration
	rss     int64 // bytes
}

func runParent(ctx context.Context, c config, stdout, stderr io.Writer) int {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(stderr, "smallfiles:", err)
		return 1
	}
	if err := os.MkdirAll(c.data, 0o755); err != nil {
		fmt.Fprintln(stderr, "smallfiles:", err)
		return 1
	}
	for _, m := range c.modes {
		var err error
		t := time.Now()
		switch m {
		case "discard", "dir":
			err = generate(ctx, filesDir(c, objectsOf(c, m)), objectsOf(c, m), c.size)
		case "cluster":
			err = seedCluster(ctx, c)
		}
		if err == nil {
			// Read them all once, untimed, so that the first round does
			// not meet a cold page cache that later rounds do not.
			var r result
			err = readFloor(ctx, inputsDir(c, m), c.workers, &r)
		}
		if err != nil {
			fmt.Fprintln(stderr, "smallfiles: generating the inputs:", err)
			return 1
		}
		fmt.Fprintf(stderr, "inputs of %s ready and read once (%.1fs)\n", m, time.Since(t).Seconds())
	}
	fmt.Fprintf(stdout, "smallfiles: GOMAXPROCS %d, workers %d, %d rounds; discard: %d files of %d B; dir: %d files; cluster: %d nodes, %d objects of %d B, placement by %s\n",
		runtime.GOMAXPROCS(0), c.workers, c.rounds, c.n, c.size, c.dirN, c.nodes, c.clusterN, c.clusterSz, c.placement)

	names := configs(c.modes)
	samples := map[string][]sample{}
	runs := 0
	defer func() { removeOutputs(c, runs) }()
	failed := false
	for r := range c.rounds {
		order := slices.Clone(names)
		if r%2 == 1 {
			slices.Reverse(order)
		}
		for _, name := range order {
			runs++
			s, err := runOne(ctx, self, c, name, runs, stderr)
			if err != nil {
				fmt.Fprintf(stderr, "round %d, %s: %v\n", r+1, name, err)
				failed = true
				if ctx.Err() != nil {
					return 1
				}
				continue
			}
			fmt.Fprintf(stderr, "round %d, %-15s %7.2fs  cpu %6.2fs  rss %5.1f MiB\n", r+1, name, s.seconds, s.cpu.Seconds(), float64(s.rss)/(1<<20))
			samples[name] = append(samples[name], s)
		}
	}
	rows := table(c, names, samples)
	printTable(stdout, rows)
	if c.jsonOut != "" {
		b, _ := json.MarshalIndent(rows, "", "  ")
		if err := os.WriteFile(c.jsonOut, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintln(stderr, "smallfiles:", err)
			failed = true
		}
	}
	if failed {
		return 1
	}
	return 0
}

// runOne runs the configuration name in a child process, as run number k,
// and checks what it stored. Its outputs go to a directory (or, in the
// cluster mode, a bucket) of their own, all removed at the end of the
// command: removing them between runs would time the next run's file
// creations against the file system's recently deleted inodes (ext4
// without a journal skips those for half a minute, and that cost more
// than the writes).
func runOne(ctx context.Context, self string, c config, name string, k int, stderr io.Writer) (sample, error) {
	out := outDir(c, k)
	args := []string{"-child", name, "-data", c.data, "-workers", fmt.Sprint(c.workers),
		"-n", fmt.Sprint(c.n), "-dir-n", fmt.Sprint(c.dirN), "-size", fmt.Sprint(c.size),
		"-cluster-n", fmt.Sprint(c.clusterN), "-cluster-size", fmt.Sprint(c.clusterSz), "-nodes", fmt.Sprint(c.nodes),
		"-placement", c.placement}
	cmd := exec.CommandContext(ctx, self, args...)
	cmd.Env = append(os.Environ(), "SMALLFILES_OUT="+out, "SMALLFILES_BUCKET="+outBucketOf(k))
	cmd.Stderr = stderr
	b, err := cmd.Output()
	if err != nil {
		return sample{}, fmt.Errorf("child: %w", err)
	}
	var res result
	if err := json.Unmarshal(b, &res); err != nil {
		return sample{}, fmt.Errorf("child printed %q: %w", b, err)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	s := sample{
		seconds: time.Duration(res.Elapsed).Seconds(),
		cpu:     time.Duration(res.CPU),
		rss:     ru.Maxrss * 1024,
	}
	mode, _, _ := strings.Cut(name, "/")
	want, wantBytes := int64(objectsOf(c, mode)), int64(objectsOf(c, mode))*int64(sizeOf(c, mode))
	if res.Objects != want || res.Bytes != wantBytes {
		return s, fmt.Errorf("did %d objects of %d bytes in all, want %d of %d", res.Objects, res.Bytes, want, wantBytes)
	}
	if err := check(c, name, out, outBucketOf(k)); err != nil {
		return s, err
	}
	return s, nil
}

// row is one configuration's line of the table.
type row struct {
	Config        string    `json:"config"`
	Objects       int       `json:"objects"`
	Seconds       []float64 `json:"seconds"`
	Median        float64   `json:"median_s"`
	Min           float64   `json:"min_s"`
	Max           float64   `json:"max_s"`
	PerSecond     float64   `json:"objects_per_s"`
	CPUPerObject  float64   `json:"cpu_us_per_object"`
	PeakRSS       float64   `json:"peak_rss_mib"`
	RatioMedians  float64   `json:"ratio_of_medians,omitempty"`
	RatioOfRounds float64   `json:"median_ratio_of_rounds,omitempty"`
}

func table(c config, names []string, samples map[string][]sample) []row {
	var rows []row
	for _, name := range names {
		ss := samples[name]
		if len(ss) == 0 {
			continue
		}
		mode, _, _ := strings.Cut(name, "/")
		n := objectsOf(c, mode)
		secs := make([]float64, len(ss))
		cpus := make([]float64, len(ss))
		var rss int64
		for i, s := range ss {
			secs[i] = s.seconds
			cpus[i] = s.cpu.Seconds()
			rss = max(rss, s.rss)
		}
		med := median(secs)
		r := row{Config: name, Objects: n, Seconds: secs, Median: med, Min: slices.Min(secs), Max: slices.Max(secs),
			PerSecond: float64(n) / med, CPUPerObject: median(cpus) / float64(n) * 1e6, PeakRSS: float64(rss) / (1 << 20)}
		if !strings.HasSuffix(name, "/floor") {
			if fl := samples[mode+"/floor"]; len(fl) > 0 {
				flSecs := make([]float64, len(fl))
				for i, s := range fl {
					flSecs[i] = s.seconds
				}
				r.RatioMedians = med / median(flSecs)
				var per []float64
				for i := range min(len(fl), len(ss)) {
					per = append(per, ss[i].seconds/fl[i].seconds)
				}
				r.RatioOfRounds = median(per)
			}
		}
		rows = append(rows, r)
	}
	return rows
}

func printTable(w io.Writer, rows []row) {
	fmt.Fprintf(w, "\n| configuration | objects | seconds, median [min–max] | objects/s | CPU µs/object | peak RSS MiB | insitu/floor (medians; median of rounds) |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		ratio := ""
		if r.RatioMedians > 0 {
			ratio = fmt.Sprintf("%.2fx; %.2fx", r.RatioMedians, r.RatioOfRounds)
		}
		fmt.Fprintf(w, "| %s | %d | %.2f [%.2f–%.2f] | %.0f | %.1f | %.1f | %s |\n",
			r.Config, r.Objects, r.Median, r.Min, r.Max, r.PerSecond, r.CPUPerObject, r.PeakRSS, ratio)
	}
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
