package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"slices"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/cluster"
	"github.com/insitu-data/insitu/node/nodetest"
	"github.com/insitu-data/insitu/pipeline"
	"github.com/insitu-data/insitu/sink"
	"github.com/insitu-data/insitu/source"
	"github.com/insitu-data/insitu/transport"
)

// The modes of a cluster run (-mode), from fastest to most general:
//
//   - embedded: every node runs ffmpeg in-process on the files it owns
//     (-transport inproc);
//   - sidecar: every node sends the files it owns to the transform server
//     next to it (-transport ws, hpush or hpull), which runs ffmpeg;
//   - remote: this process drives the transform servers next to the nodes,
//     sending each only a control message per file (-transport ws, hpull;
//     hpush sends the bytes, unless -fqn); with -transport inproc it runs
//     ffmpeg itself on bytes it reads from the nodes.
//
// -fqn gives the transform the input's path on the owner's disk instead of
// its bytes; -direct-put has the transform server put each .wav straight
// to its owner instead of handing it back.
const (
	modeEmbedded = "embedded"
	modeSidecar  = "sidecar"
	modeRemote   = "remote"
	inproc       = "inproc"
)

// resolveMode fills in the default transport and checks the combination;
// it returns what is wrong, or "".
func resolveMode(c *config) string {
	if !slices.Contains([]string{modeEmbedded, modeSidecar, modeRemote}, c.mode) {
		return fmt.Sprintf("-mode %q: want embedded, sidecar or remote", c.mode)
	}
	if c.transport == "" {
		c.transport = "ws"
		if c.mode == modeEmbedded {
			c.transport = inproc
		}
	}
	if c.transport != inproc {
		if _, err := transport.ParseMode(c.transport); err != nil {
			return fmt.Sprintf("-transport %q: want inproc, ws, hpush or hpull", c.transport)
		}
	}
	switch {
	case c.mode == modeEmbedded && c.transport != inproc:
		return fmt.Sprintf("-transport %s needs a transform server: use -mode sidecar or -mode remote", c.transport)
	case c.mode == modeSidecar && c.transport == inproc:
		return "-mode sidecar runs the transform in a server: use -transport ws, hpush or hpull (or -mode embedded)"
	}
	return ""
}

// describe says in one line how the job runs.
func (c *config) describe() string {
	input := "its bytes"
	if c.fqn {
		input = "its local path"
	}
	switch {
	case c.mode == modeEmbedded:
		return fmt.Sprintf("mode embedded: every node runs ffmpeg in-process on its own files (input: %s), "+
			"and puts each .wav straight to its owner", input)
	case c.mode == modeSidecar:
		return fmt.Sprintf("mode sidecar: every node sends its files to the transform server next to it over %s (input: %s), "+
			"which %s", c.transport, input, c.outputPath("the node"))
	case c.transport == inproc:
		return fmt.Sprintf("mode remote, in-process: this process reads every file from its owner (input: %s), runs ffmpeg, "+
			"and puts each .wav to its owner", input)
	default:
		return fmt.Sprintf("mode remote: this process sends, over %s, each file's transform server (the one next to its owner) a request "+
			"(input: %s), and the server %s", c.transport, input, c.outputPath("this process"))
	}
}

func (c *config) outputPath(caller string) string {
	if c.directPut {
		return "puts each .wav straight to its owner"
	}
	return "hands each .wav back to " + caller + ", which puts it to its owner"
}

// notes are the flags that have no effect in the chosen mode.
func (c *config) notes() []string {
	if c.transport == inproc && !c.directPut {
		return []string{"-direct-put=false changes nothing with an in-process transform: its runner always puts the output"}
	}
	return nil
}

// clusterOptions returns the options of the embedded cluster: the
// in-process transform registered by name, or the transform servers.
func (c *config) clusterOptions(toWAV insitu.Transform) nodetest.Options {
	if c.mode == modeSidecar || c.mode == modeRemote && c.transport != inproc {
		// Each server groups the requests in flight into batches of up
		// to -batch files (those it reads from local files or fetches).
		return nodetest.Options{Sidecar: toWAV, SidecarOptions: &transport.ServerOptions{Batch: &transport.BatchOptions{Size: c.batch}}}
	}
	if c.mode == modeEmbedded && !c.fqn {
		toWAV = bytesOnly{toWAV}
	}
	return nodetest.Options{Transforms: map[string]insitu.Transform{"ffmpeg-wav": toWAV}}
}

// jobSpec returns the job of an embedded or sidecar run.
func (c *config) jobSpec() cluster.JobSpec {
	spec := cluster.JobSpec{
		Bucket:          flacBucket,
		DstBucket:       wavBucket,
		Rename:          &cluster.RenameExt{From: ".flac", To: ".wav"},
		Args:            c.args(),
		Workers:         c.workers,
		BatchSize:       c.batch,
		Timeout:         cluster.Duration(c.timeout),
		SkipExisting:    c.skipExisting,
		ContinueOnError: c.continueOnError,
	}
	if c.mode == modeSidecar {
		mode, err := transport.ParseMode(c.transport) // checked with the flags
		if err != nil {
			panic(err)
		}
		if c.workers == 0 && c.batch > 1 {
			// The server batches what is in flight at once: keep enough
			// requests in flight to fill a batch per CPU.
			spec.Workers = c.batch * runtime.NumCPU()
		}
		spec.Server = &cluster.ServerSpec{Mode: mode, LocalFile: c.fqn, DirectPut: c.directPut}
	} else {
		spec.Transform = "ffmpeg-wav"
	}
	return spec
}

// runRemote runs the job from this process over the cluster: the source
// lists the .flac objects on every node, each with its owner; the
// transform is the servers next to the owners (or ffmpeg here, with
// -transport inproc); the sink puts each .wav to its owner. show has the
// run's Progress and OnFailure.
func runRemote(ctx context.Context, c *nodetest.Cluster, cfg config, toWAV insitu.Transform, show *pipeline.Options) (pipeline.Report, error) {
	client := c.Client()
	var t insitu.Transform
	if cfg.transport == inproc {
		t = toWAV
		if cfg.fqn {
			// The cluster runs in this process: its files are on this disk.
			t = withLocalPath{t: toWAV, c: c}
		}
	} else {
		mode, _ := transport.ParseMode(cfg.transport) // checked by resolveMode
		opts := &transport.ClusterOptions{Mode: mode, Timeout: cfg.timeout}
		if cfg.fqn {
			opts.LocalPath = c.LocalPath
		}
		ct, err := transport.Cluster(client, opts)
		if err != nil {
			return pipeline.Report{}, err
		}
		defer ct.Close()
		t = ct
	}
	rename := pipeline.ReplaceExt(".flac", ".wav")
	src, err := source.Cluster(client, flacBucket, nil)
	if err != nil {
		return pipeline.Report{}, err
	}
	dst, err := sink.Cluster(client)
	if err != nil {
		return pipeline.Report{}, err
	}
	return pipeline.Run(ctx, src, t, dst, &pipeline.Options{
		Workers: cfg.workers,
		Batch:   cfg.batchOptions(),
		Args:    cfg.args(),
		Rename: func(n insitu.Name) (insitu.Name, error) {
			out, err := rename(n)
			out.Bucket = wavBucket
			return out, err
		},
		DirectPut:        cfg.directPut,
		Timeout:          cfg.timeout,
		SkipExisting:     cfg.skipExisting,
		ContinueOnError:  cfg.continueOnError,
		Progress:         show.Progress,
		ProgressInterval: show.ProgressInterval,
		OnFailure:        show.OnFailure,
	})
}

// bytesOnly hands its transform the input's bytes only, not its local
// path (an embedded run with -fqn=false).
type bytesOnly struct{ t insitu.Transform }

func (b bytesOnly) Transform(ctx context.Context, in *insitu.Input, out io.Writer) error {
	cp := *in
	cp.Path = ""
	return b.t.Transform(ctx, &cp, out)
}

// withLocalPath gives its transform the path of the input's file on its
// owner's disk (a remote in-process run with -fqn, the cluster being in
// this process).
type withLocalPath struct {
	t insitu.Transform
	c *nodetest.Cluster
}

func (w withLocalPath) Transform(ctx context.Context, in *insitu.Input, out io.Writer) error {
	p, err := w.c.LocalPath(in.Object)
	if err != nil {
		return err
	}
	cp := *in
	cp.Path = p
	return w.t.Transform(ctx, &cp, out)
}

// args are the transform's args of the run: the output's channels and
// sample rate, which reach ffmpeg through its allow-list in every mode (in
// a node, over the wire to a transform server, or in this process).
func (c *config) args() string {
	return fmt.Sprintf("-ac %d -ar %d", c.channels, c.rate)
}
