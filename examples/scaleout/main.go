// Command scaleout measures how insitu's advantage grows with the number of
// storage hosts, on hosts emulated on one Linux machine (package
// internal/netemu): each host is a network namespace with its own link
// (tbf: -mbit each way, and -latency with sch_netem) and its own CPU cap (a
// cgroup: -cpu CPUs), and runs insitu-node processes; the client is a
// namespace with one such link and cap.
//
//	sudo go run ./examples/scaleout -json scaleout.json -plot docs/img   # the full run, ~25 minutes
//	sudo go run ./examples/scaleout -hosts 1,3 -rounds 1 -n 30 -identity-n 30 -cpu 0.25   # a quick look
//
// It needs root, iproute2 (ip, tc), a cgroup hierarchy with the cpu
// controller, and ffmpeg for the flagship job; it says what is missing and
// exits 2 when it cannot run. It builds cmd/insitu-node with the go tool
// unless -node-bin names a binary.
//
// The jobs (-jobs): "wav", the flagship, FLAC → WAV with ffmpeg (16 kHz
// mono clips of 5 to 15 s, -n of them, args "-ac 1 -ar 16000"; the clips
// are kept in -work for a later run), and
// "identity", a copy of -identity-n objects of -size bytes. Each runs, in
// -rounds interleaved rounds (the order reversed every other round):
//
//   - client-side: the client lists the largest cluster, GETs each object
//     over its link, transforms it under its own CPU cap and PUTs the output
//     back (pipeline.Run over source.Cluster and sink.Cluster, -workers in
//     flight): the baseline, bound by one host's share of CPU and link;
//   - insitu on 1, 3 and 6 hosts (-hosts): cluster.Run from the client,
//     each node transforming the objects it owns (the transform registered
//     with insitu-node -transforms) and putting each output to its owner.
//
// Each cluster has its own nodes (one per host, ports 7000+N) and its own
// copy of the inputs, placed on the owners' disks before the runs. Its map
// places names by bucket and key; with -placement key, by the key alone
// (locality.ByKey), so that an output that keeps its input's key, as the
// identity job's do, is stored on its input's host. Every
// output is checked byte for byte (SHA-256 against the transform run
// here) after its run, outside the timing, and removed.
//
// The table gives per row the seconds (median [min–max] of the rounds), the
// speedup over client-side (and, for insitu, that speedup divided by the
// 1-host one: linear scaling is the number of hosts), the bytes that crossed
// the client's link (median) and over the hosts' links (summed over the
// hosts: what the hosts sent each other, counted at both ends), and each
// host's CPU seconds from its cgroup (median per host) with the client's. -json writes it as JSON, -plot DIR
// draws scaleout-time-JOB and scaleout-speedup as .png and .svg, and -table
// prints the table of a -json file without measuring (and, with -plot,
// draws its plots).
//
// The exit status is 0 when every run produced the expected outputs, 1 when
// one did not (the table is still printed, those rows marked), 2 on a usage
// error or when the machine cannot run it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/insitu-data/insitu/locality"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == clientRole {
		os.Exit(clientMain(os.Stdin, os.Stdout, os.Stderr))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// options are the command-line flags.
type options struct {
	hosts      []int
	jobs       []string
	cpu        float64
	mbit       int64
	latency    time.Duration
	n          int
	identityN  int
	size       int64
	rounds     int
	workers    int
	nodeWork   int
	placement  locality.Placement
	baseline   bool
	jsonFile   string
	plotDir    string
	work       string
	nodeBin    string
	table      string
	runTimeout time.Duration
	quiet      bool
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	var hosts, jobs, placement string
	fs := flag.NewFlagSet("scaleout", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: scaleout [flags]   (root on Linux, with iproute2, cgroups and ffmpeg)\n\n"+
			"Runs the flagship job and an identity job on 1, 3 and 6 emulated hosts against the client-side\n"+
			"baseline, and prints one table.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&hosts, "hosts", "1,3,6", "the cluster sizes to measure, comma-separated")
	fs.StringVar(&jobs, "jobs", "wav,identity", `the jobs: "wav" (FLAC → WAV with ffmpeg) and "identity"`)
	fs.Float64Var(&o.cpu, "cpu", 0.1, "each host's and the client's CPU cap, in CPUs (6 hosts at 0.1 leave room on a shared 2-CPU machine)")
	fs.Int64Var(&o.mbit, "mbit", 1000, "each host's and the client's link rate, in Mbit/s each way")
	fs.DurationVar(&o.latency, "latency", 0, "one-way delay added to each machine's packets (needs sch_netem)")
	fs.IntVar(&o.n, "n", 480, "clips of the wav job (hash placement spreads fewer unevenly over 6 hosts)")
	fs.IntVar(&o.identityN, "identity-n", 240, "objects of the identity job")
	fs.Int64Var(&o.size, "size", 1<<20, "bytes of each object of the identity job")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds: each configuration runs this many times, in turn")
	fs.IntVar(&o.workers, "workers", 8, "objects in flight in the client-side baseline")
	fs.IntVar(&o.nodeWork, "node-workers", 0, "objects (or batches) in flight per node in insitu jobs (default: the node's, GOMAXPROCS)")
	fs.StringVar(&placement, "placement", "name", `the clusters' placement: "name" (bucket and key, the default) or "key" (the key alone: an output keeps its input's host when it keeps its key, as the identity job's do)`)
	fs.BoolVar(&o.baseline, "baseline", true, "measure the client-side baseline")
	fs.StringVar(&o.jsonFile, "json", "", "also write the table as JSON to this file")
	fs.StringVar(&o.plotDir, "plot", "", "draw the plots into this directory")
	fs.StringVar(&o.work, "work", "", "working directory (default: a temporary directory, removed at exit)")
	fs.StringVar(&o.nodeBin, "node-bin", "", "the insitu-node binary (default: built with go build)")
	fs.StringVar(&o.table, "table", "", "print the table of a file written with -json (and draw its plots with -plot), and measure nothing")
	fs.DurationVar(&o.runTimeout, "run-timeout", 10*time.Minute, "the longest one run may take")
	fs.BoolVar(&o.quiet, "q", false, "print only the table")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var bad string
	for f := range strings.SplitSeq(hosts, ",") {
		h, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || h < 1 || h > 64 {
			bad = fmt.Sprintf("-hosts: %q is not a number of hosts (1 to 64)", f)
			break
		}
		if !slices.Contains(o.hosts, h) {
			o.hosts = append(o.hosts, h)
		}
	}
	slices.Sort(o.hosts)
	for f := range strings.SplitSeq(jobs, ",") {
		f = strings.TrimSpace(f)
		if f != jobWAV && f != jobIdentity {
			bad = fmt.Sprintf("-jobs: unknown job %q", f)
			break
		}
		if !slices.Contains(o.jobs, f) {
			o.jobs = append(o.jobs, f)
		}
	}
	switch placement {
	case "name":
		o.placement = locality.ByName
	case "key":
		o.placement = locality.ByKey
	default:
		if bad == "" {
			bad = fmt.Sprintf("-placement: %q is neither name nor key", placement)
		}
	}
	switch {
	case bad != "":
	case fs.NArg() > 0:
		bad = fmt.Sprintf("unexpected argument %q", fs.Arg(0))
	case o.cpu < 0.01:
		bad = "-cpu must be at least 0.01"
	case o.mbit < 1:
		bad = "-mbit must be at least 1"
	case o.n < 1 || o.identityN < 1:
		bad = "-n and -identity-n must be at least 1"
	case o.size < 1:
		bad = "-size must be at least 1"
	case o.rounds < 1:
		bad = "-rounds must be at least 1"
	case o.workers < 1:
		bad = "-workers must be at least 1"
	case o.nodeWork < 0:
		bad = "-node-workers must not be negative"
	case o.runTimeout <= 0:
		bad = "-run-timeout must be positive"
	}
	if bad != "" {
		fmt.Fprintln(stderr, "scaleout:", bad)
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
			fmt.Fprintln(stderr, "scaleout:", err)
			return 1
		}
		printTable(stdout, res)
		if o.plotDir != "" {
			if err := writePlots(o.plotDir, res); err != nil {
				fmt.Fprintln(stderr, "scaleout:", err)
				return 1
			}
		}
		return 0
	}
	res, err := measure(ctx, o, stdout, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "scaleout:", err)
		var ce cannotRun
		if errors.As(err, &ce) {
			return 2
		}
		return 1
	}
	printTable(stdout, res)
	if o.jsonFile != "" {
		if err := writeJSON(o.jsonFile, res); err != nil {
			fmt.Fprintln(stderr, "scaleout:", err)
			return 1
		}
	}
	if o.plotDir != "" {
		if err := writePlots(o.plotDir, res); err != nil {
			fmt.Fprintln(stderr, "scaleout:", err)
			return 1
		}
	}
	status := 0
	for _, row := range res.Rows {
		if row.Error != "" {
			fmt.Fprintf(stderr, "scaleout: %s: %s\n", row.label(), row.Error)
			status = 1
		}
	}
	return status
}

// cannotRun is a machine that cannot run the benchmark: exit status 2.
type cannotRun struct{ err error }

func (e cannotRun) Error() string { return e.err.Error() }
func (e cannotRun) Unwrap() error { return e.err }
