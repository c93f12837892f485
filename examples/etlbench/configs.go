package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/cluster"
	"github.com/insitu-data/insitu/pipeline"
	"github.com/insitu-data/insitu/sink"
	"github.com/insitu-data/insitu/source"
	"github.com/insitu-data/insitu/transport"
	"github.com/sourcegraph/conc/pool"
)

// config is one row of the table: a way of doing the whole job.
type config struct {
	name string
	// mode is floor, client-side, embedded, sidecar or remote; transport
	// is inproc, ws, hpush or hpull ("" for the floor and the baseline).
	mode, transport      string
	localFile, directPut bool
	// run does the whole job once, writing the outputs to dst (a
	// directory or a bucket of out, named for this run).
	run func(ctx context.Context, dst string) error
	out outputs

	times   []time.Duration
	cpu     []cpuTimes // of each run, when known
	peakRSS int64
	err     error // the first failed run; the configuration is not run again
}

// makeConfigs lists the configurations in the order each round runs them:
// the floor, the client-side baseline, then insitu's, the SeaweedFS rows
// last.
func (b *bench) makeConfigs() []*config {
	cs := []*config{b.floorConfig()}
	var rest []*config
	if b.s3 != nil {
		rest = append(rest, b.baselineConfig())
	}
	rest = append(rest, b.clusterConfigs()...)
	if b.sw != nil {
		rest = append(rest, b.seaweedfsConfigs()...)
	}
	for _, c := range rest {
		if b.o.only == nil || b.o.only.MatchString(c.name) {
			cs = append(cs, c)
		}
	}
	return cs
}

// floorConfig is ffmpeg alone: one process per file, reading the input
// file and writing the output file, as many at once as there are CPUs,
// with the transform's own arguments.
func (b *bench) floorConfig() *config {
	workers := runtime.NumCPU()
	c := &config{
		name:      fmt.Sprintf("floor: ffmpeg alone, %d at once", workers),
		mode:      "floor",
		localFile: true,
		out:       dirOutputs{root: filepath.Join(b.work, "floor")},
	}
	c.run = func(ctx context.Context, dst string) error {
		root := filepath.Join(b.work, "floor", dst)
		p := pool.New().WithContext(ctx).WithCancelOnError().WithFirstError().WithMaxGoroutines(workers)
		for _, in := range b.inputs {
			p.Go(func(ctx context.Context) error {
				out, err := rename(insitu.Name{Bucket: srcBucket, Key: in.key})
				if err != nil {
					return err
				}
				path := filepath.Join(root, filepath.FromSlash(out.Key))
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					return err
				}
				cmd := b.wavT.Command(ctx, in.path, path)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				if err := cmd.Run(); err != nil {
					return fmt.Errorf("ffmpeg on %s: %v: %s", in.key, err, bytes.TrimSpace(stderr.Bytes()))
				}
				return nil
			})
		}
		return p.Wait()
	}
	return c
}

// baselineConfig is the client-side baseline: list the S3 bucket, GET
// each object, transcode it here (ffmpeg reading the bytes on its standard
// input), PUT the output, with -baseline-workers objects in flight.
func (b *bench) baselineConfig() *config {
	c := &config{
		name: fmt.Sprintf("client-side: S3 GET→ffmpeg→PUT, %d workers", b.o.baseWorkers),
		mode: "client-side",
		out:  s3Outputs{s3: b.s3},
	}
	c.run = func(ctx context.Context, dst string) error {
		rep, err := ClientSide(ctx, b.s3.Client, srcBucket, dst, "", b.transform, &Options{
			Options: pipeline.Options{Workers: b.o.baseWorkers, Rename: rename},
		})
		return checkReport(rep, err, len(b.inputs))
	}
	return c
}

// clusterConfigs are insitu's configurations on the embedded cluster, in
// every combination of mode × transport × local-file input × direct put
// that the library offers.
//
// Embedded mode runs the job on every node (cluster.Run) with the
// in-process transform: each node reads its own objects from its local
// disk and puts each output straight to the output's owner (into its own
// store without HTTP when that is itself). That is the only combination a
// job with an in-process transform has: its input is always the local
// file and its output always goes straight to the owner.
//
// Sidecar mode runs the same job through the transform server next to each
// node (JobSpec.Server), over ws, hpush or hpull; the node sends the
// input's bytes (hpull: the server fetches them from the node) or only its
// local path, and the output comes back to the node, which puts it to its
// owner, or the server puts it there itself (direct put). Here the
// transform servers run in this process, each on its own port of
// 127.0.0.1, as nodetest.Start starts them.
//
// Remote mode drives the cluster from this process (pipeline.Run over
// source.Cluster, transport.Cluster and sink.Cluster): each object goes to
// the transform server next to its owner, which reads it from the owner's
// disk (local file) or fetches it from the owner over loopback (ws,
// hpull; with hpush this process fetches the bytes and sends them), and
// puts the output straight to the output's owner (direct put) or sends it
// back here, to be put by this process.
func (b *bench) clusterConfigs() []*config {
	cs := []*config{
		b.jobConfig("embedded", "inproc", true, true, cluster.JobSpec{Transform: transformName}),
	}
	for _, mode := range serverModes {
		for _, localFile := range []bool{true, false} {
			for _, directPut := range []bool{true, false} {
				cs = append(cs, b.jobConfig("sidecar", mode.String(), localFile, directPut, cluster.JobSpec{
					Server: &cluster.ServerSpec{Mode: mode, LocalFile: localFile, DirectPut: directPut},
				}))
			}
		}
	}
	for _, mode := range serverModes {
		for _, localFile := range []bool{true, false} {
			for _, directPut := range []bool{true, false} {
				cs = append(cs, b.remoteConfig(mode, localFile, directPut))
			}
		}
	}
	return cs
}

// serverModes are the transports to a transform server.
var serverModes = transport.Modes()

// jobConfig is a configuration that runs spec as a job on every node.
func (b *bench) jobConfig(mode, transport string, localFile, directPut bool, spec cluster.JobSpec) *config {
	c := &config{
		name:      configName(mode, transport, localFile, directPut),
		mode:      mode,
		transport: transport,
		localFile: localFile,
		directPut: directPut,
		out:       clusterOutputs{c: b.cluster},
	}
	c.run = func(ctx context.Context, dst string) error {
		s := spec
		s.Bucket, s.DstBucket = srcBucket, dst
		s.Rename = &cluster.RenameExt{From: ".flac", To: ".wav"}
		s.Workers = b.o.nodeWorkers
		rep, err := cluster.Run(ctx, b.cluster.Client(), s, nil)
		return checkReport(rep.Report, err, len(b.inputs))
	}
	return c
}

// remoteConfig is a remote-mode configuration: this process lists the
// cluster and sends each object to the transform server next to its
// owner, with as many objects in flight as the nodes' jobs have in all.
func (b *bench) remoteConfig(mode transport.Mode, localFile, directPut bool) *config {
	c := &config{
		name:      configName("remote", mode.String(), localFile, directPut),
		mode:      "remote",
		transport: mode.String(),
		localFile: localFile,
		directPut: directPut,
		out:       clusterOutputs{c: b.cluster},
	}
	c.run = func(ctx context.Context, dst string) error {
		opts := &transport.ClusterOptions{Mode: mode, Logger: slog.New(slog.DiscardHandler)}
		if localFile {
			opts.LocalPath = b.cluster.LocalPath
		}
		client := b.cluster.Client()
		t, err := transport.Cluster(client, opts)
		if err != nil {
			return err
		}
		defer t.Close()
		workers := b.o.nodeWorkers
		if workers == 0 {
			workers = runtime.GOMAXPROCS(0) // a node job's default
		}
		src, err := source.Cluster(client, srcBucket, nil)
		if err != nil {
			return err
		}
		out, err := sink.Cluster(client)
		if err != nil {
			return err
		}
		rep, err := pipeline.Run(ctx, src, t, out, &pipeline.Options{
			Workers:   workers * len(b.cluster.Nodes()),
			Rename:    func(n insitu.Name) (insitu.Name, error) { return renameTo(n, dst) },
			DirectPut: directPut,
		})
		return checkReport(rep, err, len(b.inputs))
	}
	return c
}

// renameTo names the output of in in the bucket dst.
func renameTo(in insitu.Name, dst string) (insitu.Name, error) {
	out, err := rename(in)
	out.Bucket = dst
	return out, err
}

// configName names an insitu configuration, such as
// "embedded/inproc local-file direct-put".
func configName(mode, transport string, localFile, directPut bool) string {
	in, put := "bytes", "put-via-runner"
	if localFile {
		in = "local-file"
	}
	if directPut {
		put = "direct-put"
	}
	return mode + "/" + transport + " " + in + " " + put
}

// checkReport turns a run's report into an error unless every input was
// transformed.
func checkReport(rep pipeline.Report, err error, n int) error {
	if err != nil {
		return err
	}
	if rep.Transformed != int64(n) || rep.Failed != 0 {
		return fmt.Errorf("listed %d, transformed %d, skipped %d, failed %d; want %d transformed", rep.Listed, rep.Transformed, rep.Skipped, rep.Failed, n)
	}
	return nil
}
