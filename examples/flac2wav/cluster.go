package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/cluster"
	"github.com/insitu-data/insitu/node/nodetest"
	"github.com/insitu-data/insitu/pipeline"
	"github.com/insitu-data/insitu/transform/ffmpeg"
	"github.com/insitu-data/insitu/transform/ffmpeg/ffmpegtest"
)

// The buckets of the cluster run.
const (
	flacBucket = "flac"
	wavBucket  = "wav"
)

// runCluster converts on an embedded cluster: it seeds the FLAC files onto
// their owners, runs the job on every node, and checks where every WAV
// landed.
func runCluster(ctx context.Context, cfg config, stdout, stderr io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintln(stderr, "flac2wav:", err)
		return 1
	}
	tmp, err := os.MkdirTemp("", "flac2wav-")
	if err != nil {
		return fail(err)
	}
	if cfg.src == "" {
		cfg.src = filepath.Join(tmp, "flac")
		if err := generate(ctx, cfg, stdout); err != nil {
			return fail(err)
		}
	}

	// The transform: run in-process by every node (by name), or served by
	// a transform server next to every node (see modes.go).
	// -ac and -ar reach it as the job's args, checked by its allow-list.
	toWAV, err := ffmpeg.NewWAV(nil)
	if err != nil {
		fmt.Fprintln(stderr, "flac2wav:", err)
		return 2
	}
	storeDir := filepath.Join(tmp, "cluster")
	copts := cfg.clusterOptions(toWAV)
	copts.Dir = storeDir // kept after the run, so the outputs can be looked at
	c, err := nodetest.Start(ctx, cfg.nodes, &copts)
	if err != nil {
		return fail(err)
	}
	defer c.Close()
	fmt.Fprintf(stdout, "started %d storage nodes on 127.0.0.1 (%s)\n", cfg.nodes, c.Map())
	if copts.Sidecar != nil {
		fmt.Fprintf(stdout, "started a transform server (ffmpeg) next to each node\n")
	}

	n, err := c.SeedDir(ctx, flacBucket, cfg.src)
	if err != nil {
		return fail(fmt.Errorf("seeding %s: %w", cfg.src, err))
	}
	fmt.Fprintf(stdout, "seeded %d objects into bucket %q, each on its owner\n", n, flacBucket)

	// The job: every node converts the .flac objects it owns, reading them
	// from its disk, and puts each .wav straight to the output's owner; or,
	// in remote mode, this process has the transform servers next to the
	// owners do it.
	fmt.Fprintln(stdout, cfg.describe())
	for _, n := range cfg.notes() {
		fmt.Fprintln(stdout, "note:", n)
	}
	failures, err := createFailures(cfg.failuresFile)
	if err != nil {
		fmt.Fprintln(stderr, "flac2wav:", err)
		return 2
	}
	progress := pipeline.AutoProgress(stderr, logEvery)
	var report cluster.Report
	var runErr error
	if cfg.mode == modeRemote {
		report.Report, runErr = runRemote(ctx, c, cfg, toWAV, &pipeline.Options{
			Progress: progress, OnFailure: failures.onFailure()})
	} else {
		report, runErr = cluster.Run(ctx, c.Client(), cfg.jobSpec(), &cluster.Options{Progress: progress})
		failures.addReport(report.Report, stderr)
	}
	fmt.Fprint(stdout, report)
	fmt.Fprintf(stdout, "outputs: %s/<node>/%s\n", storeDir, wavBucket)
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

	checked, problems := verifyCluster(c, report.Report, cfg)
	for _, p := range problems {
		fmt.Fprintln(stderr, "flac2wav: bad output:", p)
	}
	if len(problems) > 0 {
		return 1
	}
	fmt.Fprintf(stdout, "checked %d WAV files: each exactly once, on its owner, %d ch, %d Hz, sizes consistent\n",
		checked, cfg.channels, cfg.rate)
	return status
}

// generate makes cfg.samples FLAC files in cfg.src.
func generate(ctx context.Context, cfg config, stdout io.Writer) error {
	fmt.Fprintf(stdout, "generating %d FLAC samples in %s\n", cfg.samples, cfg.src)
	start := time.Now()
	if _, err := ffmpegtest.GenerateSet(ctx, "", cfg.src, cfg.samples, sampleSpec); err != nil {
		return fmt.Errorf("generating samples: %w", err)
	}
	fmt.Fprintf(stdout, "generated in %v\n", time.Since(start).Round(time.Millisecond))
	return nil
}

// verifyCluster checks the cluster's stores after the run: every .flac
// input that did not fail has its .wav, exactly once, on the node that
// owns the .wav's name, and every .wav is valid.
func verifyCluster(c *nodetest.Cluster, report pipeline.Report, cfg config) (int, []string) {
	failed := map[string]bool{}
	for _, f := range report.Failures {
		failed[f.Name.Key] = true
	}
	var problems []string
	holders := map[string][]string{} // .wav key → nodes that hold it
	inputs := map[string]bool{}      // .flac keys
	for _, nd := range c.Nodes() {
		for _, bucket := range []string{flacBucket, wavBucket} {
			dir := filepath.Join(nd.Dir(), bucket)
			err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
				if err != nil || !d.Type().IsRegular() {
					return err
				}
				rel, _ := filepath.Rel(dir, p)
				key := filepath.ToSlash(rel)
				if strings.HasPrefix(d.Name(), ".insitu-tmp-") {
					problems = append(problems, fmt.Sprintf("node %s: temporary file left: %s", nd.ID(), p))
					return nil
				}
				if bucket == flacBucket {
					if strings.HasSuffix(strings.ToLower(key), ".flac") {
						inputs[key] = true
					}
					return nil
				}
				holders[key] = append(holders[key], nd.ID())
				if err := checkWAV(p, cfg.channels, cfg.rate); err != nil {
					problems = append(problems, fmt.Sprintf("%s: %v", p, err))
				}
				return nil
			})
			if err != nil && !os.IsNotExist(err) {
				problems = append(problems, err.Error())
			}
		}
	}
	rename := pipeline.ReplaceExt(".flac", ".wav")
	for key := range inputs {
		if failed[key] {
			continue
		}
		out, _ := rename(insitu.Name{Bucket: wavBucket, Key: key})
		owner := c.Map().Owner(out).ID
		switch h := holders[out.Key]; {
		case len(h) == 0:
			problems = append(problems, fmt.Sprintf("%s: missing", out))
		case len(h) > 1 || h[0] != owner:
			problems = append(problems, fmt.Sprintf("%s: on %v, want only on its owner %s", out, h, owner))
		}
	}
	checked := 0
	for _, h := range holders {
		checked += len(h)
	}
	return checked, problems
}
