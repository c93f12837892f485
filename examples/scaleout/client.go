package main

// The client: the part of a run that must execute inside the client's
// namespace and cgroup. The benchmark starts itself again there (netemu's
// Host.Command) with the first argument clientRole, a clientSpec as JSON
// on standard input; the child runs the job once and writes a
// clientResult as JSON on standard output.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/cluster"
	"github.com/insitu-data/insitu/locality"
	"github.com/insitu-data/insitu/pipeline"
	"github.com/insitu-data/insitu/sink"
	"github.com/insitu-data/insitu/source"
	"github.com/insitu-data/insitu/transform/ffmpeg"
)

// clientRole, as the first argument, makes the command the client of one
// run.
const clientRole = "-scaleout-client"

// The jobs.
const (
	jobWAV      = "wav"
	jobIdentity = "identity"
)

// The modes.
const (
	modeClientSide = "client-side"
	modeInsitu     = "insitu"
)

// wavArgs are the flagship's args, as in etlbench.
const wavArgs = "-ac 1 -ar 16000"

// clientSpec is one run, for the client.
type clientSpec struct {
	Mode       string          `json:"mode"`
	Job        string          `json:"job"`
	Map        json.RawMessage `json:"map"`
	SecretFile string          `json:"secret_file"`
	Bucket     string          `json:"bucket"`
	DstBucket  string          `json:"dst_bucket"`
	Workers    int             `json:"workers,omitempty"`      // client-side
	NodeWork   int             `json:"node_workers,omitempty"` // insitu, per node
	Timeout    time.Duration   `json:"timeout"`
}

// clientResult is what the client measured.
type clientResult struct {
	Seconds     float64 `json:"seconds"`
	Transformed int64   `json:"transformed"`
	Failed      int64   `json:"failed"`
	Error       string  `json:"error,omitempty"`
}

// clientMain is the client's main; it returns the exit status.
func clientMain(stdin io.Reader, stdout, stderr io.Writer) int {
	var spec clientSpec
	if err := json.NewDecoder(io.LimitReader(stdin, 1<<20)).Decode(&spec); err != nil {
		fmt.Fprintln(stderr, "scaleout client: reading the spec:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), spec.Timeout)
	defer cancel()
	res, err := runClient(ctx, spec, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		res.Error = err.Error()
	}
	if err := json.NewEncoder(stdout).Encode(res); err != nil {
		fmt.Fprintln(stderr, "scaleout client:", err)
		return 1
	}
	return 0
}

// runClient runs spec's job once and times it.
func runClient(ctx context.Context, spec clientSpec, log *slog.Logger) (clientResult, error) {
	m, err := locality.ParseMap(spec.Map)
	if err != nil {
		return clientResult{}, err
	}
	secret, err := os.ReadFile(spec.SecretFile)
	if err != nil {
		return clientResult{}, err
	}
	c, err := locality.NewClient(m, &locality.ClientOptions{Secret: locality.Secret(secret)})
	if err != nil {
		return clientResult{}, err
	}
	defer c.Close()

	var rename *cluster.RenameExt
	var args string
	if spec.Job == jobWAV {
		rename, args = &cluster.RenameExt{From: ".flac", To: ".wav"}, wavArgs
	}
	start := time.Now()
	switch spec.Mode {
	case modeInsitu:
		rep, err := cluster.Run(ctx, c, cluster.JobSpec{
			Bucket: spec.Bucket, DstBucket: spec.DstBucket, Transform: spec.Job, Rename: rename, Args: args,
			Workers: spec.NodeWork,
		}, &cluster.Options{Logger: log})
		return clientResult{Seconds: time.Since(start).Seconds(), Transformed: rep.Transformed, Failed: rep.Failed}, err
	case modeClientSide:
		var t insitu.Transform = insitu.Identity
		if spec.Job == jobWAV {
			w, err := ffmpeg.NewWAV(nil)
			if err != nil {
				return clientResult{}, err
			}
			t = w
		}
		src, err := source.Cluster(c, spec.Bucket, nil)
		if err != nil {
			return clientResult{}, err
		}
		dst, err := sink.Cluster(c)
		if err != nil {
			return clientResult{}, err
		}
		o := &pipeline.Options{Workers: spec.Workers, Args: args, Logger: log,
			Rename: func(n insitu.Name) (insitu.Name, error) {
				if rename != nil {
					var err error
					if n, err = pipeline.ReplaceExt(rename.From, rename.To)(n); err != nil {
						return n, err
					}
				}
				n.Bucket = spec.DstBucket
				return n, nil
			}}
		rep, err := pipeline.Run(ctx, src, t, dst, o)
		return clientResult{Seconds: time.Since(start).Seconds(), Transformed: rep.Transformed, Failed: rep.Failed}, err
	}
	return clientResult{}, fmt.Errorf("unknown mode %q", spec.Mode)
}
