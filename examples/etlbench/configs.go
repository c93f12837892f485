package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/cluster"
	"github.com/insitu-data/insitu/node/nodetest"
	"github.com/insitu-data/insitu/pipeline"
	"github.com/insitu-data/insitu/sink"
	"github.com/insitu-data/insitu/source"
	"github.com/insitu-data/insitu/transport"
	"github.com/sourcegraph/conc/pool"
)

// config is one row of the table: a way of doing the whole job.
type config struct {
	name string
	// mode is floor, floor-batched, client-side, embedded, sidecar or
	// remote; transport is inproc, ws, hpush or hpull ("" for the floors
	// and the baseline).
	mode, transport      string
	localFile, directPut bool
	// batch is the most objects per ffmpeg process; 0 for one process
	// per object.
	batch int
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
// the floor, the batched floor, the client-side baselines, then insitu's,
// the SeaweedFS rows last.
func (b *bench) makeConfigs() []*config {
	cs := []*config{b.floorConfig(), b.floorBatchedConfig()}
	var rest []*config
	if b.s3 != nil {
		rest = append(rest, b.baselineConfig(), b.baselineBatchedConfig())
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

// floorBatchedConfig is ffmpeg alone on batches: the local files in
// groups of -batch, in the order of the listing, one process per group
// reading its input files and writing their output files
// (ffmpeg.WAV.BatchCommand: the transform's own arguments for each
// output), as many processes at once as there are CPUs.
func (b *bench) floorBatchedConfig() *config {
	workers := runtime.NumCPU()
	c := &config{
		name:      fmt.Sprintf("floor batched: ffmpeg alone, %d files per process, %d at once", b.o.batch, workers),
		mode:      "floor-batched",
		localFile: true,
		batch:     b.o.batch,
		out:       dirOutputs{root: filepath.Join(b.work, "floor-batched")},
	}
	c.run = func(ctx context.Context, dst string) error {
		root := filepath.Join(b.work, "floor-batched", dst)
		p := pool.New().WithContext(ctx).WithCancelOnError().WithFirstError().WithMaxGoroutines(workers)
		for group := range slices.Chunk(b.inputs, b.o.batch) {
			p.Go(func(ctx context.Context) error {
				ins := make([]string, len(group))
				outs := make([]string, len(group))
				for i, in := range group {
					out, err := rename(insitu.Name{Bucket: srcBucket, Key: in.key})
					if err != nil {
						return err
					}
					ins[i] = in.path
					outs[i] = filepath.Join(root, filepath.FromSlash(out.Key))
					if err := os.MkdirAll(filepath.Dir(outs[i]), 0o755); err != nil {
						return err
					}
				}
				cmd := b.wavT.BatchCommand(ctx, ins, outs)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				if err := cmd.Run(); err != nil {
					return fmt.Errorf("ffmpeg on %s and %d more: %v: %s", group[0].key, len(group)-1, err, bytes.TrimSpace(stderr.Bytes()))
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

// baselineBatchedConfig is the client-side baseline with the transform
// taking batches: the runner groups the listed objects by -batch and
// hands each group to one ffmpeg process, which reads each object's bytes
// from S3 through a pipe of its own; -baseline-workers batches in flight
// (only -ffmpeg-slots of them transcode at once), each output PUT on its
// own.
func (b *bench) baselineBatchedConfig() *config {
	c := &config{
		name:  fmt.Sprintf("client-side batched: S3 GET→ffmpeg→PUT, %d workers, batches of %d", b.o.baseWorkers, b.o.batch),
		mode:  "client-side",
		batch: b.o.batch,
		out:   s3Outputs{s3: b.s3},
	}
	c.run = func(ctx context.Context, dst string) error {
		rep, err := ClientSide(ctx, b.s3.Client, srcBucket, dst, "", b.batchT, &Options{
			Options: pipeline.Options{Workers: b.o.baseWorkers, Rename: rename, Batch: &pipeline.BatchOptions{Size: b.o.batch}},
		})
		return checkReport(rep, err, len(b.inputs))
	}
	return c
}

// clusterConfigs are insitu's configurations on the embedded cluster, in
// every combination of mode × transport × local-file input × direct put
// that the library offers, each object in an ffmpeg process of its own;
// and the configurations whose transform takes batches again, with
// batches of -batch objects per ffmpeg process (named "..., batches of N").
//
// Embedded mode runs the job on every node (cluster.Run) with the
// in-process transform: each node reads its own objects from its local
// disk and puts each output straight to the output's owner (into its own
// store without HTTP when that is itself). That is the only combination a
// job with an in-process transform has: its input is always the local
// file and its output always goes straight to the owner. Its batched row
// names the transform that takes batches, with JobSpec.BatchSize -batch:
// each node's runner groups its local files and runs one ffmpeg process
// per group, with -node-workers batches in flight per node.
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
		b.jobConfig("embedded", "inproc", true, true, cluster.JobSpec{Transform: transformName, BatchSize: 1}),
		b.jobConfig("embedded", "inproc", true, true, cluster.JobSpec{Transform: batchTransformName, BatchSize: b.o.batch}),
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
	return append(cs, b.batchServerConfigs()...)
}

// batchServerConfigs are the batched sidecar and remote rows: the same
// jobs on a second embedded cluster (batchCluster), whose transform
// servers take batches of -batch (transport.ServerOptions.Batch), with
// enough requests in flight that batches fill: -batch times the objects
// in flight of a per-file row. A transform server groups only the requests
// whose input it can read again, a local file or a source URL (hpull), so
// the rows are those: local-file input over each transport, and hpull
// with the bytes fetched from the node, all with direct put.
func (b *bench) batchServerConfigs() []*config {
	var cs []*config
	for _, mode := range serverModes {
		cs = append(cs, b.batchJobConfig(mode, true))
	}
	cs = append(cs, b.batchJobConfig(transport.HPull, false))
	for _, mode := range []transport.Mode{transport.WS, transport.HPull} {
		c := b.remoteConfig(mode, mode != transport.HPull, true)
		c.batch = b.o.batch
		c.name = configName("remote", mode.String(), c.localFile, true, c.batch)
		cs = append(cs, c)
	}
	return cs
}

// batchJobConfig is a batched sidecar row: the sidecar job on
// batchCluster, with -batch times the per-file row's objects in flight
// per node.
func (b *bench) batchJobConfig(mode transport.Mode, localFile bool) *config {
	c := b.jobConfig("sidecar", mode.String(), localFile, true, cluster.JobSpec{
		Server: &cluster.ServerSpec{Mode: mode, LocalFile: localFile, DirectPut: true},
	})
	c.batch = b.o.batch
	c.name = configName("sidecar", mode.String(), localFile, true, c.batch)
	return c
}

// wantsBatchCluster reports whether a row on batchCluster is measured.
func (b *bench) wantsBatchCluster() bool {
	return slices.ContainsFunc(b.batchServerConfigs(), func(c *config) bool { return b.o.only == nil || b.o.only.MatchString(c.name) })
}

// on returns the cluster a configuration runs on: batchCluster for the
// batched sidecar and remote rows, the cluster otherwise.
func (b *bench) on(c *config) *nodetest.Cluster {
	if c.batch > 0 && (c.mode == "sidecar" || c.mode == "remote") {
		return b.batchCluster
	}
	return b.cluster
}

// inFlight is the objects in flight per node of a configuration's jobs
// (0: the runner's default), and its remote runner's on each node: a
// per-file row's -node-workers, -batch times as many for a batched
// transform server (a node job that hands batches itself counts batches,
// not objects, and keeps -node-workers).
func (b *bench) inFlight(c *config) int {
	w := b.o.nodeWorkers
	if c.batch > 0 && (c.mode == "sidecar" || c.mode == "remote") {
		if w == 0 {
			w = runtime.GOMAXPROCS(0) // a node job's default
		}
		w *= c.batch
	}
	return w
}

// serverModes are the transports to a transform server.
var serverModes = transport.Modes()

// jobConfig is a configuration that runs spec as a job on every node;
// with spec.BatchSize over 1 it is a batched row.
func (b *bench) jobConfig(mode, transport string, localFile, directPut bool, spec cluster.JobSpec) *config {
	batch := 0
	if spec.BatchSize > 1 {
		batch = spec.BatchSize
	}
	c := &config{
		name:      configName(mode, transport, localFile, directPut, batch),
		batch:     batch,
		mode:      mode,
		transport: transport,
		localFile: localFile,
		directPut: directPut,
	}
	c.run = func(ctx context.Context, dst string) error {
		s := spec
		s.Bucket, s.DstBucket = srcBucket, dst
		s.Rename = &cluster.RenameExt{From: ".flac", To: ".wav"}
		s.Workers = b.inFlight(c)
		rep, err := cluster.Run(ctx, b.on(c).Client(), s, nil)
		return checkReport(rep.Report, err, len(b.inputs))
	}
	c.out = clusterOutputs{c: func() *nodetest.Cluster { return b.on(c) }}
	return c
}

// remoteConfig is a remote-mode configuration: this process lists the
// cluster and sends each object to the transform server next to its
// owner, with as many objects in flight as the nodes' jobs have in all.
func (b *bench) remoteConfig(mode transport.Mode, localFile, directPut bool) *config {
	c := &config{
		name:      configName("remote", mode.String(), localFile, directPut, 0),
		mode:      "remote",
		transport: mode.String(),
		localFile: localFile,
		directPut: directPut,
	}
	c.out = clusterOutputs{c: func() *nodetest.Cluster { return b.on(c) }}
	c.run = func(ctx context.Context, dst string) error {
		cl := b.on(c)
		opts := &transport.ClusterOptions{Mode: mode, Logger: slog.New(slog.DiscardHandler)}
		if localFile {
			opts.LocalPath = cl.LocalPath
		}
		client := cl.Client()
		t, err := transport.Cluster(client, opts)
		if err != nil {
			return err
		}
		defer t.Close()
		workers := b.inFlight(c)
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
			Workers:   workers * len(cl.Nodes()),
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
// "embedded/inproc local-file direct-put", with ", batches of N" when
// batch is over 0.
func configName(mode, transport string, localFile, directPut bool, batch int) string {
	in, put := "bytes", "put-via-runner"
	if localFile {
		in = "local-file"
	}
	if directPut {
		put = "direct-put"
	}
	name := mode + "/" + transport + " " + in + " " + put
	if batch > 0 {
		name += fmt.Sprintf(", batches of %d", batch)
	}
	return name
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
