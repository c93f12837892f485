// Command migrate moves objects between S3-compatible services, an insitu
// storage cluster and a local directory, transforming them on the way, as
// an insitu pipeline in fallback mode: everything runs in this process,
// S3 objects are read with GET and written with PUT (multipart for large
// or unknown-size outputs, never more than one part in memory per object),
// and outputs bound for a cluster go straight to the node that owns them.
//
// With no -endpoint it starts its own S3 server (versitygw, on 127.0.0.1),
// fills a sample bucket and migrates it, so one command shows it all:
//
//	go run ./examples/migrate
//	go run ./examples/migrate -transform upper -rename .txt:.md -prefix docs/
//	go run ./examples/migrate -to cluster          # S3 → a 3-node cluster, direct put to each owner
//	go run ./examples/migrate -from cluster -to s3 # cluster → S3
//	go run ./examples/migrate -to dir -dst-dir /tmp/out
//
// Against any S3 service (AWS S3, MinIO, Ceph, versitygw...):
//
//	go run ./examples/migrate -endpoint s3.example.com -secure \
//	    -access AKIA... -secret ... -bucket photos -dst-bucket photos-gz \
//	    -transform gzip -args 9 -rename :.gz -skip-existing -workers 32
//
// The paths: -from s3 (default) or cluster; -to s3 (default), cluster or
// dir. The transforms: copy (default), upper (ASCII upper case) and gzip
// (-args is the level, 1 to 9). An interrupted run resumes with
// -skip-existing, moving only what is left; -dry-run transforms and counts
// without writing; -continue-on-error goes on past failures and -failures
// writes them to a file, one JSON object per line, as they happen. The
// progress goes to stderr: one live line on a terminal, a line every few
// seconds in a log or a pipe.
//
// It prints the run's report and checks that every output is in its
// destination (on its owner node, for a cluster), unless -verify=false. It exits with status 1
// if any object failed, 2 on a usage error or when it cannot set up.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/pipeline"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil))
}

// hooks let tests reach into a run.
type hooks struct {
	// wrap, when set, wraps the transform, e.g. to interrupt the run after
	// some objects.
	wrap func(insitu.Transform) insitu.Transform
}

// config holds the command-line flags.
type config struct {
	from, to string

	endpoint, access, secret, region string
	secure                           bool
	bucket, dstBucket                string
	seed                             bool

	nodes         int
	clusterBucket string
	clusterDir    string
	dstDir        string

	prefix, rename, transform, args string
	workers                         int
	timeout                         time.Duration
	skipExisting, dryRun            bool
	continueOnError                 bool
	failuresFile                    string
	verify                          bool
}

// run is the whole program; it returns the exit status. h is nil but in
// tests.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, h *hooks) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	t, err := newTransform(cfg.transform, cfg.args)
	if err != nil {
		fmt.Fprintln(stderr, "migrate:", err)
		return 2
	}
	if h != nil && h.wrap != nil {
		t = h.wrap(t)
	}

	env, err := setup(ctx, &cfg, stdout)
	if env != nil {
		defer env.close()
	}
	if err != nil {
		fmt.Fprintln(stderr, "migrate:", err)
		return 2
	}

	rename := renameFunc(cfg.rename, env.dstBucket)
	fmt.Fprintf(stdout, "migrating %s → %s (transform %s)\n", env.srcDesc, env.dstDesc, cfg.transform)
	onFailure, closeFailures, err := createFailures(cfg.failuresFile)
	if err != nil {
		fmt.Fprintln(stderr, "migrate:", err)
		return 2
	}
	progress := pipeline.AutoProgress(stderr, logEvery)
	report, runErr := pipeline.Run(ctx, env.src, t, env.dst, &pipeline.Options{
		Workers:         cfg.workers,
		Rename:          rename,
		Args:            cfg.args,
		SkipExisting:    cfg.skipExisting,
		DryRun:          cfg.dryRun,
		DirectPut:       true,
		ContinueOnError: cfg.continueOnError,
		Timeout:         cfg.timeout,
		Progress:        progress,
		OnFailure:       onFailure,
	})
	fmt.Fprint(stdout, report)

	status := 0
	if runErr != nil {
		fmt.Fprintln(stderr, "migrate:", runErr)
		status = 1
	}
	if err := closeFailures(); err != nil {
		fmt.Fprintln(stderr, "migrate:", err)
		status = 1
	}
	if report.Failed > 0 {
		status = 1
	}
	if cfg.dryRun {
		fmt.Fprintln(stdout, "dry run: nothing was written")
	}
	if ctx.Err() != nil || cfg.dryRun || !cfg.verify {
		return status
	}

	// Check the destination: every listed object that did not fail has its
	// output there (on its owner node, for a cluster).
	checked, problems := env.verify(ctx, report, rename)
	for _, p := range problems {
		fmt.Fprintln(stderr, "migrate: bad output:", p)
	}
	if len(problems) > 0 {
		return 1
	}
	fmt.Fprintf(stdout, "verified %d outputs in %s%s\n", checked, env.dstDesc, env.verifyNote)
	return status
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: migrate [flags]\n\nMoves objects from -from to -to through a transform. "+
			"Without -endpoint it starts its own S3 server with a sample bucket.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&c.from, "from", "s3", "where the objects are: s3 or cluster (an embedded cluster filled with samples)")
	fs.StringVar(&c.to, "to", "s3", "where the outputs go: s3, cluster (an embedded cluster, direct put to each owner) or dir")
	fs.StringVar(&c.endpoint, "endpoint", "", "S3 endpoint host[:port] (default: start a versitygw on 127.0.0.1 and fill a sample bucket)")
	fs.StringVar(&c.access, "access", "", "S3 access key (default: $AWS_ACCESS_KEY_ID)")
	fs.StringVar(&c.secret, "secret", "", "S3 secret key (default: $AWS_SECRET_ACCESS_KEY)")
	fs.StringVar(&c.region, "region", "us-east-1", "S3 region")
	fs.BoolVar(&c.secure, "secure", false, "use HTTPS for -endpoint")
	fs.StringVar(&c.bucket, "bucket", "", "source S3 bucket (default with no -endpoint: sample)")
	fs.StringVar(&c.dstBucket, "dst-bucket", "", "destination S3 bucket (default: the source bucket's name + \"-out\")")
	fs.BoolVar(&c.seed, "seed", false, "create the buckets and fill the source with sample objects first (always on with no -endpoint)")
	fs.IntVar(&c.nodes, "nodes", 3, "nodes of the embedded cluster")
	fs.StringVar(&c.clusterBucket, "cluster-bucket", "", "bucket in the cluster (default: the S3 source bucket's name, or sample)")
	fs.StringVar(&c.clusterDir, "cluster-dir", "", "directory for the embedded cluster's stores, kept after the run (default: a temporary one)")
	fs.StringVar(&c.dstDir, "dst-dir", "", "output directory for -to dir (default: a new temporary directory)")
	fs.StringVar(&c.prefix, "prefix", "", "migrate only keys that start with this")
	fs.StringVar(&c.rename, "rename", "", "rename outputs FROM:TO, replacing the key suffix FROM with TO, e.g. .txt:.md; an empty FROM appends TO")
	fs.StringVar(&c.transform, "transform", "copy", "copy, upper or gzip")
	fs.StringVar(&c.args, "args", "", "arguments for the transform (gzip: the level, 1 to 9)")
	fs.IntVar(&c.workers, "workers", 16, "objects in flight at once")
	fs.DurationVar(&c.timeout, "timeout", 0, "time limit per object, e.g. 1m (default: none)")
	fs.BoolVar(&c.skipExisting, "skip-existing", false, "skip objects whose output exists: resumes an interrupted run")
	fs.BoolVar(&c.dryRun, "dry-run", false, "transform and count, but write nothing")
	fs.BoolVar(&c.continueOnError, "continue-on-error", false, "go on when an object fails, instead of stopping")
	fs.StringVar(&c.failuresFile, "failures", "", "write failures to this file, one JSON object per line")
	fs.BoolVar(&c.verify, "verify", true, "after the run, check that every output is in the destination (one HEAD per object)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if c.access == "" {
		c.access = os.Getenv("AWS_ACCESS_KEY_ID")
	}
	if c.secret == "" {
		c.secret = os.Getenv("AWS_SECRET_ACCESS_KEY")
	}
	var bad string
	switch {
	case fs.NArg() > 0:
		bad = fmt.Sprintf("unexpected argument %q", fs.Arg(0))
	case c.from != "s3" && c.from != "cluster":
		bad = fmt.Sprintf("-from %q: want s3 or cluster", c.from)
	case c.to != "s3" && c.to != "cluster" && c.to != "dir":
		bad = fmt.Sprintf("-to %q: want s3, cluster or dir", c.to)
	case c.from == "cluster" && c.to == "cluster":
		bad = "-from cluster -to cluster: use the cluster's own jobs (cluster.Run) for that"
	case c.endpoint != "" && (c.access == "" || c.secret == "") && (c.from == "s3" || c.to == "s3"):
		bad = "-endpoint needs -access and -secret (or $AWS_ACCESS_KEY_ID and $AWS_SECRET_ACCESS_KEY)"
	case c.endpoint != "" && c.from == "s3" && c.bucket == "":
		bad = "-endpoint needs -bucket, the bucket to migrate"
	case c.nodes < 1:
		bad = "-nodes must be at least 1"
	case c.workers < 1:
		bad = "-workers must be at least 1"
	case c.timeout < 0:
		bad = "-timeout must not be negative"
	case c.rename != "" && !strings.Contains(c.rename, ":"):
		bad = fmt.Sprintf("-rename %q: want FROM:TO, such as .txt:.md", c.rename)
	case c.rename != "" && renamesNothing(c.rename):
		bad = fmt.Sprintf("-rename %q renames nothing", c.rename)
	}
	if bad != "" {
		fmt.Fprintln(stderr, "migrate:", bad)
		fs.Usage()
		return c, errors.New(bad)
	}
	return c, nil
}

// renamesNothing reports whether the -rename spec FROM:TO has FROM = TO.
func renamesNothing(spec string) bool {
	from, to, _ := strings.Cut(spec, ":")
	return from == to
}

// renameFunc returns the Rename of the pipeline: the output keeps the
// input's key, with the suffix from replaced by to when the key ends in
// from (an empty from matches every key), and goes to the bucket bucket.
func renameFunc(spec, bucket string) func(insitu.Name) (insitu.Name, error) {
	from, to, _ := strings.Cut(spec, ":")
	return func(n insitu.Name) (insitu.Name, error) {
		key := n.Key
		if spec != "" && strings.HasSuffix(key, from) {
			key = key[:len(key)-len(from)] + to
		}
		out := insitu.Name{Bucket: bucket, Key: key}
		return out, out.Validate()
	}
}
