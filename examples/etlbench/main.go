// Command etlbench measures insitu against the floor and the client-side
// baseline on the same work: FFmpeg .flac → .wav over a set of speech-like
// clips, in one process run on one machine.
//
//	go run ./examples/etlbench                 # 300 generated clips, 3 rounds
//	go run ./examples/etlbench -n 50 -repeat 1 # a quick look
//	go run ./examples/etlbench -src ~/LibriSpeech/dev-clean -json out.json
//	go run ./examples/etlbench -json out.json -plot docs/img  # also as plots
//	go run ./examples/etlbench -table out.json -plot docs/img # redraw, measuring nothing
//
// It measures, alternating for -repeat rounds (in a fixed order, backwards
// in the even rounds):
//
//   - the floor: ffmpeg run directly on the local files, one process per
//     file, as many at once as there are CPUs, with the very arguments of
//     the transform (ffmpeg.WAV.Command);
//   - the batched floor: ffmpeg run directly on the local files, one
//     process per -batch files, as many processes at once as there are
//     CPUs, with the same arguments (ffmpeg.WAV.BatchCommand);
//   - the client-side baseline: the files in a real S3 server (versitygw
//     on 127.0.0.1), listed, fetched, transcoded here one ffmpeg process
//     per object and stored back, 24 objects in flight (ClientSide in
//     baseline.go), and the same with the transform taking batches of
//     -batch objects, one ffmpeg process per batch;
//   - insitu on an embedded 3-node cluster, in every configuration of
//     mode × transport × local-file input × direct put that the library
//     offers, one ffmpeg process per object, and the configurations that
//     can hand ffmpeg batches of -batch objects doing so (see configs.go);
//   - on SeaweedFS (a master, -nodes volume servers, a filer and the S3
//     gateway, weed processes on 127.0.0.1, the inputs spread over the
//     volume servers; -seaweedfs=false leaves it out): insitu's remote
//     mode next to the volume servers over each transport, each output
//     stored on its input's volume server (see seaweedfs.go), and the
//     client-side baseline through SeaweedFS's S3 gateway.
//
// Every run must produce one valid WAV per input, byte for byte the WAV the
// floor produced; the outputs are checked after each run, outside the
// timing, and removed. The table, sorted by the median time, gives per
// configuration the seconds, objects/s, the ratios to the floor and to the
// batched floor, the speedup
// over the client-side baseline, the peak RSS of this process while that
// configuration ran (the resident size from /proc/self/statm, sampled
// every 50ms; the ffmpeg processes, versitygw and weed are other
// processes and are not in it), and the CPU time of a run: this
// process's, the ffmpeg processes' and the servers' (versitygw and the
// weed processes), which on a shared machine is steadier than the elapsed
// time.
//
// The exit status is 0 when every run produced the expected outputs, 1 when
// one did not (the table is still printed, the failing rows marked), and 2
// on a usage error or a missing tool (ffmpeg, versitygw, weed).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"runtime"
	"syscall"
	"time"

	"github.com/insitu-data/insitu/cluster"
	"github.com/insitu-data/insitu/pipeline"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// options are the command-line flags.
type options struct {
	n              int
	src            string
	seed           int
	minDur, maxDur time.Duration
	channels, rate int
	repeat         int
	jsonFile       string
	plotDir        string
	work           string
	nodes          int
	nodeWorkers    int
	slots          int
	baseWorkers    int
	batch          int
	baseline       bool
	seaweedfs      bool
	only           *regexp.Regexp
	cpuProfile     string
	table          string
	quiet          bool
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	var only string
	fs := flag.NewFlagSet("etlbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: etlbench [flags]\n\n"+
			"Measures FFmpeg .flac → .wav through insitu on an embedded cluster, against ffmpeg\n"+
			"alone (the floor) and the client-side S3 baseline, and prints one table.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.IntVar(&o.n, "n", 300, "number of clips to generate when -src is not given")
	fs.StringVar(&o.src, "src", "", "directory of .flac files to use, read recursively, instead of generated clips")
	fs.IntVar(&o.seed, "seed", 1, "seed of the generated clips: the same seed gives the same clips")
	fs.DurationVar(&o.minDur, "min-duration", 5*time.Second, "shortest generated clip")
	fs.DurationVar(&o.maxDur, "max-duration", 15*time.Second, "longest generated clip")
	fs.IntVar(&o.channels, "ac", 1, "output channels (ffmpeg -ac)")
	fs.IntVar(&o.rate, "ar", 16000, "output sample rate in Hz (ffmpeg -ar)")
	fs.IntVar(&o.repeat, "repeat", 3, "rounds: each configuration runs this many times, the median is reported")
	fs.StringVar(&o.jsonFile, "json", "", "also write the table's rows as JSON to this file")
	fs.StringVar(&o.plotDir, "plot", "", "also draw the table in this directory (created if missing): "+timePlot+" (seconds per configuration, min–max bars)\n"+
		"and, with the client-side baseline, "+speedupPlot+" (speedup over it); with -table, from that file")
	fs.StringVar(&o.work, "work", "", "working directory for clips, stores and outputs (default: a temporary directory, removed at exit)")
	fs.IntVar(&o.nodes, "nodes", 3, "nodes of the embedded cluster")
	fs.IntVar(&o.nodeWorkers, "node-workers", 0, "objects in flight per node in insitu jobs (default: the runner's, GOMAXPROCS)")
	fs.IntVar(&o.slots, "ffmpeg-slots", runtime.NumCPU(), "most ffmpeg processes at once in every configuration but the floors (which run one per CPU), across all nodes; 0: no bound, each runner's workers decide")
	fs.IntVar(&o.baseWorkers, "baseline-workers", 24, "objects in flight in the client-side baseline")
	fs.IntVar(&o.batch, "batch", pipeline.DefaultBatchSize, fmt.Sprintf("objects per ffmpeg process in the batched floor and the batched configurations (1 to %d)", cluster.MaxBatchSize))
	fs.BoolVar(&o.baseline, "baseline", true, "measure the client-side baseline (needs versitygw)")
	fs.BoolVar(&o.seaweedfs, "seaweedfs", true, "measure on SeaweedFS too (needs weed): remote mode next to its volume servers, and the client-side\n"+
		"baseline through its S3 gateway")
	fs.StringVar(&only, "only", "", "measure only the configurations whose name matches this regular expression (the floors always run)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the measured runs to this file")
	fs.BoolVar(&o.quiet, "q", false, "print only the table")
	fs.StringVar(&o.table, "table", "", "print the table of a file written with -json, and measure nothing")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var bad string
	switch {
	case fs.NArg() > 0:
		bad = fmt.Sprintf("unexpected argument %q", fs.Arg(0))
	case o.src == "" && o.n < 1:
		bad = "-n must be at least 1"
	case o.minDur < 100*time.Millisecond:
		bad = "-min-duration must be at least 100ms"
	case o.maxDur < o.minDur:
		bad = "-max-duration must not be shorter than -min-duration"
	case o.channels < 1 || o.rate < 1:
		bad = "-ac and -ar must be at least 1"
	case o.repeat < 1:
		bad = "-repeat must be at least 1"
	case o.nodes < 1:
		bad = "-nodes must be at least 1"
	case o.nodeWorkers < 0:
		bad = "-node-workers must not be negative"
	case o.slots < 0:
		bad = "-ffmpeg-slots must not be negative"
	case o.baseWorkers < 1:
		bad = "-baseline-workers must be at least 1"
	case o.batch < 1 || o.batch > cluster.MaxBatchSize:
		bad = fmt.Sprintf("-batch must be 1 to %d", cluster.MaxBatchSize)
	}
	if bad == "" && only != "" {
		re, err := regexp.Compile(only)
		if err != nil {
			bad = fmt.Sprintf("-only: %v", err)
		}
		o.only = re
	}
	if bad != "" {
		fmt.Fprintln(stderr, "etlbench:", bad)
		fs.Usage()
		return o, errors.New(bad)
	}
	return o, nil
}

// run is the whole program; it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	if o.table != "" {
		res, err := readJSON(o.table)
		if err != nil {
			fmt.Fprintln(stderr, "etlbench:", err)
			return 1
		}
		printTable(stdout, res)
		if err := writePlots(o.plotDir, res); err != nil {
			fmt.Fprintln(stderr, "etlbench:", err)
			return 1
		}
		return 0
	}
	b, err := newBench(ctx, o, stdout)
	if b != nil {
		defer b.close()
	}
	if err != nil {
		fmt.Fprintln(stderr, "etlbench:", err)
		var te toolError
		if errors.As(err, &te) {
			return 2
		}
		return 1
	}
	res, err := b.measure(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "etlbench:", err)
		return 1
	}
	printTable(stdout, res)
	if o.jsonFile != "" {
		if err := writeJSON(o.jsonFile, res); err != nil {
			fmt.Fprintln(stderr, "etlbench:", err)
			return 1
		}
	}
	if err := writePlots(o.plotDir, res); err != nil {
		fmt.Fprintln(stderr, "etlbench:", err)
		return 1
	}
	status := 0
	for _, row := range res.Rows {
		if row.Error != "" {
			fmt.Fprintf(stderr, "etlbench: %s: %s\n", row.Config, row.Error)
			status = 1
		}
	}
	return status
}

// toolError is a missing external tool: a usage problem, exit status 2.
type toolError struct{ err error }

func (e toolError) Error() string { return e.err.Error() }
func (e toolError) Unwrap() error { return e.err }
