// Command flac2wav converts FLAC files to WAV with ffmpeg, as an insitu
// pipeline: Source → Transform (ffmpeg) → Sink.
//
// Run with no flags, it starts an embedded cluster of 3 storage nodes on
// 127.0.0.1, generates a small set of varied FLAC samples and puts each on
// the node that owns it, then runs the job where the data lives: every node
// converts its own files, reading them from its local disk with an
// in-process ffmpeg transform, and puts each .wav straight to the node that
// owns the output's name. It shows the progress of the whole cluster on
// stderr (one live line on a terminal, a line every few seconds in a log
// or a pipe), prints the report with a per-node breakdown, and checks that
// every .wav exists exactly once, on its owner, with a valid header:
//
//	go run ./examples/flac2wav
//	go run ./examples/flac2wav -nodes 5 -n 40 -ac 1 -ar 16000
//	go run ./examples/flac2wav -src ~/music      # your files, seeded into the cluster
//
// -mode and -transport choose where ffmpeg runs and how it is reached, so
// that every mode of insitu runs from the command line:
//
//	-mode embedded                    each node runs ffmpeg in-process (the default; -transport inproc)
//	-mode sidecar -transport ws       each node streams its files to a transform server next to it
//	-mode sidecar -transport hpush    ... one HTTP PUT per file
//	-mode sidecar -transport hpull    ... one HTTP GET per file; the server fetches the bytes from the node
//	-mode remote -transport ws|hpull  this process sends the transform server next to each file's owner
//	                                  a control message; the server reads the file from its owner
//	-mode remote -transport hpush     ... the bytes go through this process, unless -fqn
//	-mode remote -transport inproc    this process reads every file and runs ffmpeg itself
//
// -fqn (on by default) gives ffmpeg the input's path on the node's disk
// instead of its bytes; -direct-put (on by default) has the transform
// server put each .wav straight to its owner instead of handing it back
// to its caller:
//
//	go run ./examples/flac2wav -mode sidecar -transport hpull -fqn=false -direct-put=false
//	go run ./examples/flac2wav -mode remote -transport ws
//
// -backend seaweedfs runs the job on a real distributed store instead: it
// starts a SeaweedFS cluster on 127.0.0.1 (a master, -nodes volume servers
// and a filer; weed must be installed) and a transform server next to
// each volume server, seeds the samples spread over the volume servers,
// and runs in remote mode: each file goes to the transform server next to
// the volume server that holds it, which reads it from there and stores
// the .wav through the filer on that same volume server. It checks every
// .wav (a valid header, every chunk on its input's volume server):
//
//	go run ./examples/flac2wav -backend seaweedfs
//	go run ./examples/flac2wav -backend seaweedfs -transport hpull -n 30
//
// With -dst it runs on local folders instead, converting -src (or
// generated samples) recursively into -dst with the same layout:
//
//	go run ./examples/flac2wav -src ~/music -dst /tmp/music-wav
//
// It exits with status 1 if any object failed or an output is wrong, 2 on a
// usage error or when ffmpeg (or, with -backend seaweedfs, weed) is
// missing.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/insitu-data/insitu/cluster"
	"github.com/insitu-data/insitu/pipeline"
	"github.com/insitu-data/insitu/sink"
	"github.com/insitu-data/insitu/source"
	"github.com/insitu-data/insitu/transform/ffmpeg"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// config holds the command-line flags.
type config struct {
	src, dst        string
	nodes           int
	samples         int
	channels, rate  int
	workers         int
	batch           int
	timeout         time.Duration
	skipExisting    bool
	continueOnError bool
	failuresFile    string

	// backend is the store of a cluster run: insitu (an embedded cluster
	// of storage nodes) or seaweedfs (see seaweedfs.go).
	backend string

	// How the cluster run reaches the transform (see modes.go).
	mode      string // embedded, sidecar or remote
	transport string // inproc, ws, hpush or hpull
	fqn       bool   // local-file input: the transform gets the input's path
	directPut bool   // the transform server puts each output to its owner
}

// run is the whole program; it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	if _, err := ffmpeg.Lookup(""); err != nil {
		fmt.Fprintf(stderr, "flac2wav needs ffmpeg, which is not installed.\n%s\n", ffmpeg.InstallHint)
		return 2
	}
	if cfg.backend == backendSeaweedFS {
		return runSeaweedFS(ctx, cfg, stdout, stderr)
	}
	if cfg.dst == "" {
		return runCluster(ctx, cfg, stdout, stderr)
	}
	if err := prepareDirs(ctx, &cfg, stdout); err != nil {
		fmt.Fprintln(stderr, "flac2wav:", err)
		return 1
	}

	// The pipeline: every .flac file under cfg.src → ffmpeg → a .wav file
	// at the same relative path under cfg.dst.
	src, err := source.Dir(cfg.src, &source.DirOptions{Suffix: ".flac"})
	if err != nil {
		fmt.Fprintln(stderr, "flac2wav:", err)
		return 2
	}
	toWAV, err := ffmpeg.NewWAV(nil)
	if err != nil {
		fmt.Fprintln(stderr, "flac2wav:", err)
		return 2
	}
	dst, err := sink.Dir(cfg.dst, nil)
	if err != nil {
		fmt.Fprintln(stderr, "flac2wav:", err)
		return 2
	}

	failures, err := createFailures(cfg.failuresFile)
	if err != nil {
		fmt.Fprintln(stderr, "flac2wav:", err)
		return 2
	}
	progress := pipeline.AutoProgress(stderr, logEvery)
	report, runErr := pipeline.Run(ctx, src, toWAV, dst, &pipeline.Options{
		Workers:         cfg.workers,
		Batch:           cfg.batchOptions(),
		Rename:          pipeline.ReplaceExt(".flac", ".wav"),
		Args:            cfg.args(),
		Timeout:         cfg.timeout,
		SkipExisting:    cfg.skipExisting,
		ContinueOnError: cfg.continueOnError,
		Progress:        progress,
		OnFailure:       failures.onFailure(),
	})

	fmt.Fprint(stdout, report)
	fmt.Fprintln(stdout, "output:", cfg.dst)
	status := 0
	if runErr != nil {
		fmt.Fprintln(stderr, "flac2wav:", runErr)
		status = 1
	}
	if err := failures.close(); err != nil {
		fmt.Fprintln(stderr, "flac2wav:", err)
		status = 1
	}
	if report.Failed > 0 {
		status = 1
	}
	if ctx.Err() != nil {
		return 1
	}

	// Check what was written: every object that did not fail has its
	// output, a valid WAV with the requested channels and rate.
	checked, problems := verify(ctx, src, report, cfg)
	for _, p := range problems {
		fmt.Fprintln(stderr, "flac2wav: bad output:", p)
	}
	if len(problems) > 0 {
		return 1
	}
	fmt.Fprintf(stdout, "checked %d WAV files: %d ch, %d Hz, sizes consistent\n", checked, cfg.channels, cfg.rate)
	return status
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("flac2wav", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: flac2wav [flags]\n\nConverts .flac files to .wav with ffmpeg on an embedded cluster of -nodes storage nodes,\n"+
			"or on local folders with -dst. Without -src it generates -n sample files to convert.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&c.src, "src", "", "directory of .flac files, read recursively (default: generate samples in a temporary directory)")
	fs.StringVar(&c.dst, "dst", "", "convert on local folders, into this directory with -src's layout, instead of on a cluster")
	fs.StringVar(&c.backend, "backend", backendInsitu, "the store of the cluster: insitu (an embedded cluster of insitu storage nodes) or seaweedfs\n"+
		"(a SeaweedFS cluster started on 127.0.0.1, the job in remote mode next to its volume servers; needs weed)")
	fs.IntVar(&c.nodes, "nodes", 3, "storage nodes of the embedded cluster (volume servers with -backend seaweedfs)")
	fs.IntVar(&c.samples, "n", 12, "number of samples to generate when -src is not given")
	fs.IntVar(&c.channels, "ac", 2, "output channels")
	fs.IntVar(&c.rate, "ar", 44100, "output sample rate in Hz")
	fs.IntVar(&c.workers, "workers", 0, "files converted at once (default: the number of CPUs)")
	fs.IntVar(&c.batch, "batch", pipeline.DefaultBatchSize, "files converted by one ffmpeg process, whose start costs more than a short file (1: a process per file)")
	fs.DurationVar(&c.timeout, "timeout", 0, "time limit per file, e.g. 30s (default: none)")
	fs.BoolVar(&c.skipExisting, "skip-existing", false, "do not convert files whose .wav already exists")
	fs.BoolVar(&c.continueOnError, "continue-on-error", false, "convert the other files when one fails, instead of stopping")
	fs.StringVar(&c.failuresFile, "failures", "", "write failures to this file, one JSON object per line")
	fs.StringVar(&c.mode, "mode", "embedded", "where the transform runs: embedded (in each node), sidecar (in a transform server next to each node,\n"+
		"driven by the node) or remote (in a transform server next to each node, driven by this process)")
	fs.StringVar(&c.transport, "transport", "", "how the transform is reached: inproc, ws, hpush or hpull\n"+
		"(default: inproc with -mode embedded, ws otherwise; -mode remote -transport inproc runs ffmpeg in this process)")
	fs.BoolVar(&c.fqn, "fqn", true, "local-file input: give the transform the input's path on the node's disk instead of its bytes (-fqn=false: the bytes)")
	fs.BoolVar(&c.directPut, "direct-put", true, "the transform server puts each .wav straight to its owner (-direct-put=false: the output goes back\n"+
		"to the node, or to this process in remote mode, which puts it); in-process transforms always go through their runner")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var bad string
	switch {
	case fs.NArg() > 0:
		bad = fmt.Sprintf("unexpected argument %q", fs.Arg(0))
	case c.samples < 1 && c.src == "":
		bad = "-n must be at least 1"
	case c.nodes < 1:
		bad = "-nodes must be at least 1"
	case ffmpeg.CheckArgs(c.args()) != nil:
		bad = ffmpeg.CheckArgs(c.args()).Error()
	case c.workers < 0:
		bad = "-workers must not be negative"
	case c.batch < 1 || c.batch > cluster.MaxBatchSize:
		bad = fmt.Sprintf("-batch must be 1 to %d", cluster.MaxBatchSize)
	case c.timeout < 0:
		bad = "-timeout must not be negative"
	case c.dst != "" && (set["mode"] || set["transport"] || set["fqn"] || set["direct-put"] || set["backend"]):
		bad = "-backend, -mode, -transport, -fqn and -direct-put choose how a cluster runs the job; they do not go with -dst"
	case c.backend != backendInsitu && c.backend != backendSeaweedFS:
		bad = fmt.Sprintf("-backend %q: want insitu or seaweedfs", c.backend)
	case c.backend == backendSeaweedFS:
		bad = resolveSeaweedFS(&c, set)
	default:
		bad = resolveMode(&c)
	}
	if bad != "" {
		fmt.Fprintln(stderr, "flac2wav:", bad)
		fs.Usage()
		return c, errors.New(bad)
	}
	return c, nil
}

// batchOptions are the runner's batch bounds for the -batch flag.
func (c *config) batchOptions() *pipeline.BatchOptions {
	return &pipeline.BatchOptions{Size: c.batch}
}
