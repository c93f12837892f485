package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"iter"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/locality"
	"github.com/insitu-data/insitu/pipeline"
	"github.com/insitu-data/insitu/seaweedfs"
	"github.com/insitu-data/insitu/seaweedfs/seaweedfstest"
	"github.com/insitu-data/insitu/source"
	"github.com/insitu-data/insitu/transform/ffmpeg"
	"github.com/insitu-data/insitu/transform/wav"
	"github.com/insitu-data/insitu/transport"
)

// The stores of a cluster run (-backend).
const (
	backendInsitu    = "insitu"
	backendSeaweedFS = "seaweedfs"
)

// resolveSeaweedFS fills in and checks the flags of a SeaweedFS run; it
// returns what is wrong, or "". A SeaweedFS run is a remote-mode run: the
// volume servers run no jobs of insitu's, and hold no file per object that
// a transform could be given the path of (an object is a needle inside a
// volume file).
func resolveSeaweedFS(c *config, set map[string]bool) string {
	if set["mode"] && c.mode != modeRemote {
		return fmt.Sprintf("-backend seaweedfs runs in -mode remote only (this process drives the transform servers next to the volume servers), not %s", c.mode)
	}
	if set["fqn"] && c.fqn {
		return "-fqn: a SeaweedFS volume server keeps no file per object to give ffmpeg the path of; the transform servers fetch the bytes from their volume server"
	}
	c.mode, c.fqn = modeRemote, false
	return resolveMode(c)
}

// describeSeaweedFS says in one line how a SeaweedFS run goes.
func (c *config) describeSeaweedFS() string {
	put := "stores each .wav through the filer on that same volume server"
	if !c.directPut {
		put = "hands each .wav back to this process, which stores it through the filer on that same volume server"
	}
	switch c.transport {
	case inproc:
		return "mode remote, in-process: this process reads every file from its volume server, runs ffmpeg, and stores each .wav " +
			"through the filer on the volume server of its input"
	case transport.HPush.String():
		return "mode remote: this process reads each file from its volume server and sends it, over hpush, to the transform server " +
			"next to that volume server, which " + put
	default:
		return fmt.Sprintf("mode remote: this process sends, over %s, the transform server next to the volume server that holds each file "+
			"a request (input: its volume server's URL), and the server reads the file from there over loopback and %s", c.transport, put)
	}
}

// runSeaweedFS converts on a SeaweedFS cluster it starts: it seeds the
// FLAC files spread over the volume servers, runs the job from this
// process with a transform server next to each volume server, and checks
// every WAV and where it is.
func runSeaweedFS(ctx context.Context, cfg config, stdout, stderr io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintln(stderr, "flac2wav:", err)
		return 1
	}
	if _, err := exec.LookPath("weed"); err != nil {
		fmt.Fprintf(stderr, "flac2wav -backend seaweedfs needs SeaweedFS's weed, which is not on PATH. Install it with:\n\n  %s\n",
			seaweedfstest.InstallHint)
		return 2
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
	toWAV, err := ffmpeg.NewWAV(nil)
	if err != nil {
		fmt.Fprintln(stderr, "flac2wav:", err)
		return 2
	}

	start := time.Now()
	swfs, err := seaweedfstest.StartProcess(ctx, &seaweedfstest.Options{
		VolumeServers: cfg.nodes,
		Dir:           filepath.Join(tmp, "seaweedfs"), // kept after the run, so the volumes can be looked at
	})
	if err != nil {
		return fail(fmt.Errorf("starting SeaweedFS: %w", err))
	}
	defer swfs.Close()
	fmt.Fprintf(stdout, "started SeaweedFS on 127.0.0.1 in %v: master %s, filer %s, %d volume servers %v\n",
		time.Since(start).Round(time.Millisecond), swfs.MasterURL, swfs.FilerURL, len(swfs.VolumeServers), swfs.VolumeServers)

	// A transform server (ffmpeg) next to each volume server, with a
	// secret of its own: only this process, which holds it, may use them.
	secret := make(locality.Secret, 32)
	rand.Read(secret)
	next := map[string]string{}
	if cfg.transport != inproc {
		servers, err := startTransformServers(swfs.VolumeServers, toWAV, secret)
		defer servers.close()
		if err != nil {
			return fail(err)
		}
		next = servers.urls
		fmt.Fprintln(stdout, "started a transform server (ffmpeg) next to each volume server")
	}

	client, err := seaweedfs.NewClient(swfs.FilerURL, swfs.MasterURL, nil)
	if err != nil {
		return fail(err)
	}
	defer client.CloseIdleConnections()
	n, err := seedSeaweedFS(ctx, client, cfg.src, swfs.VolumeServers)
	if err != nil {
		return fail(fmt.Errorf("seeding %s: %w", cfg.src, err))
	}
	fmt.Fprintf(stdout, "seeded %d objects into bucket %q, spread over the volume servers\n", n, flacBucket)

	fmt.Fprintln(stdout, cfg.describeSeaweedFS())
	for _, n := range cfg.notes() {
		fmt.Fprintln(stdout, "note:", n)
	}
	failures, err := createFailures(cfg.failuresFile)
	if err != nil {
		fmt.Fprintln(stderr, "flac2wav:", err)
		return 2
	}
	report, runErr := runOnSeaweedFS(ctx, client, next, secret, cfg, toWAV, &pipeline.Options{
		Progress: pipeline.AutoProgress(stderr, logEvery), OnFailure: failures.onFailure()})
	fmt.Fprint(stdout, report)
	fmt.Fprintf(stdout, "outputs: bucket %q (the filer path %s/%s); the volume servers' data is kept in %s\n", wavBucket, client.Root(), wavBucket, swfs.Dir)
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

	checked, problems := verifySeaweedFS(ctx, client, report, cfg)
	for _, p := range problems {
		fmt.Fprintln(stderr, "flac2wav: bad output:", p)
	}
	if len(problems) > 0 {
		return 1
	}
	fmt.Fprintf(stdout, "checked %d WAV files: each on the volume server of its input, %d ch, %d Hz, sizes consistent\n",
		checked, cfg.channels, cfg.rate)
	return status
}

// transformServers are the transform servers next to the volume servers.
type transformServers struct {
	urls    map[string]string // volume server → its transform server's URL
	servers []*transport.Server
	https   []*http.Server
}

// startTransformServers starts a transform server running t on
// 127.0.0.1 for each volume server.
func startTransformServers(volumeServers []string, t insitu.Transform, secret locality.Secret) (*transformServers, error) {
	s := &transformServers{urls: map[string]string{}}
	for _, vs := range volumeServers {
		srv, err := transport.NewServer(t, &transport.ServerOptions{Secret: secret})
		if err != nil {
			return s, err
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return s, err
		}
		hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
		go hs.Serve(l)
		s.servers = append(s.servers, srv)
		s.https = append(s.https, hs)
		s.urls[vs] = "http://" + l.Addr().String()
	}
	return s, nil
}

func (s *transformServers) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i, hs := range s.https {
		s.servers[i].Shutdown(ctx)
		hs.Shutdown(ctx)
	}
}

// seedSeaweedFS stores the .flac files under dir in the bucket flac, the
// i-th (in key order) on volume server i mod n, so that every volume
// server holds some.
func seedSeaweedFS(ctx context.Context, client *seaweedfs.Client, dir string, volumeServers []string) (int, error) {
	files, err := source.Dir(dir, &source.DirOptions{Suffix: ".flac"})
	if err != nil {
		return 0, err
	}
	sink, err := seaweedfs.NewSink(client, nil)
	if err != nil {
		return 0, err
	}
	n := 0
	for obj, err := range files.Objects(ctx) {
		if err != nil {
			return n, err
		}
		err := func() error {
			f, err := os.Open(obj.Path)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = sink.PutOn(ctx, volumeServers[n%len(volumeServers)], insitu.Name{Bucket: flacBucket, Key: obj.Name.Key}, f, obj.Size)
			return err
		}()
		if err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// runOnSeaweedFS runs the job from this process: the source lists the
// .flac objects with the volume server of each; the transform is the
// servers next to them (transport.Placed over the cluster's placement),
// or ffmpeg here with -transport inproc; the sink stores each .wav on the
// volume server of its input: by direct put (the sink is an
// insitu.NearSink), or, when the output comes back here, pinned by the
// owner the listing gave its input. show has the run's Progress and
// OnFailure.
func runOnSeaweedFS(ctx context.Context, client *seaweedfs.Client, next map[string]string, secret locality.Secret,
	cfg config, toWAV insitu.Transform, show *pipeline.Options) (pipeline.Report, error) {
	rename := func(n insitu.Name) (insitu.Name, error) {
		out, err := pipeline.ReplaceExt(".flac", ".wav")(n)
		out.Bucket = wavBucket
		return out, err
	}
	flac, err := seaweedfs.NewSource(client, flacBucket, nil)
	if err != nil {
		return pipeline.Report{}, err
	}
	src := &listedOwners{Source: flac, rename: rename, owners: map[insitu.Name]string{}}
	dst, err := seaweedfs.NewSink(client, &seaweedfs.SinkOptions{Pin: src.pin})
	if err != nil {
		return pipeline.Report{}, err
	}
	t := toWAV
	if cfg.transport != inproc {
		mode, _ := transport.ParseMode(cfg.transport) // checked by resolveMode
		topo, err := seaweedfs.NewTopology(client, &seaweedfs.TopologyOptions{
			TransformURL: func(addr string) string { return next[addr] },
		})
		if err != nil {
			return pipeline.Report{}, err
		}
		place, err := seaweedfs.NewPlacement(ctx, topo, nil)
		if err != nil {
			return pipeline.Report{}, err
		}
		ct, err := transport.Placed(place, &transport.ClusterOptions{Mode: mode, Timeout: cfg.timeout, Secret: secret})
		if err != nil {
			return pipeline.Report{}, err
		}
		defer ct.Close()
		t = ct
	}
	return pipeline.Run(ctx, src, t, dst, &pipeline.Options{
		Workers:          cfg.workers,
		Batch:            cfg.batchOptions(),
		Args:             cfg.args(),
		Rename:           rename,
		DirectPut:        cfg.directPut,
		Timeout:          cfg.timeout,
		SkipExisting:     cfg.skipExisting,
		ContinueOnError:  cfg.continueOnError,
		Progress:         show.Progress,
		ProgressInterval: show.ProgressInterval,
		OnFailure:        show.OnFailure,
	})
}

// listedOwners is a source that remembers the volume server of each
// object it lists, by the name of the object's output: the pin of an
// output that comes back through this process (-direct-put=false,
// -transport inproc), as a direct put pins it by itself.
type listedOwners struct {
	insitu.Source
	rename func(insitu.Name) (insitu.Name, error)

	mu     sync.Mutex
	owners map[insitu.Name]string
}

func (l *listedOwners) Objects(ctx context.Context) iter.Seq2[insitu.Object, error] {
	return func(yield func(insitu.Object, error) bool) {
		for obj, err := range l.Source.Objects(ctx) {
			if err == nil {
				if out, rerr := l.rename(obj.Name); rerr == nil {
					l.mu.Lock()
					l.owners[out] = obj.Owner
					l.mu.Unlock()
				}
			}
			if !yield(obj, err) {
				return
			}
		}
	}
}

// pin is the sink's SinkOptions.Pin: the volume server of out's input.
func (l *listedOwners) pin(out insitu.Name) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.owners[out]
}

// verifySeaweedFS checks the store after the run: every .flac input that
// did not fail has its .wav, with every chunk on the volume server that
// holds the input (as the master says now), and every .wav is valid;
// there is no other .wav.
func verifySeaweedFS(ctx context.Context, client *seaweedfs.Client, report pipeline.Report, cfg config) (int, []string) {
	failed := map[insitu.Name]bool{}
	for _, f := range report.Failures {
		failed[f.Name] = true
	}
	var problems []string
	flac, err := seaweedfs.NewSource(client, flacBucket, nil)
	if err != nil {
		return 0, []string{err.Error()}
	}
	wavs, err := seaweedfs.NewSource(client, wavBucket, nil)
	if err != nil {
		return 0, []string{err.Error()}
	}
	want := map[insitu.Name]bool{}
	rename := pipeline.ReplaceExt(".flac", ".wav")
	checked := 0
	for in, err := range flac.Objects(ctx) {
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		out, err := rename(in.Name)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		out.Bucket = wavBucket
		want[out] = true
		if failed[in.Name] {
			continue
		}
		chunks, err := client.Chunks(ctx, out)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", out, err))
			continue
		}
		for _, ch := range chunks {
			if !slices.Equal(ch.Servers, []string{in.Owner}) {
				problems = append(problems, fmt.Sprintf("%s: chunk %s is on %v, want on %s, the volume server of its input", out, ch.FileID, ch.Servers, in.Owner))
			}
		}
		if err := checkStoredWAV(ctx, wavs, out, cfg.channels, cfg.rate); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", out, err))
			continue
		}
		checked++
	}
	for obj, err := range wavs.Objects(ctx) {
		if err == nil && !want[obj.Name] {
			problems = append(problems, fmt.Sprintf("%s: an output of no input", obj.Name))
		}
	}
	return checked, problems
}

// checkStoredWAV reads the object name of src and checks it is a WAV file
// with the channels and rate asked, whose data ends where the object does.
func checkStoredWAV(ctx context.Context, src *seaweedfs.Source, name insitu.Name, channels, rate int) error {
	rc, err := src.Open(ctx, insitu.Object{Name: name})
	if err != nil {
		return err
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return err
	}
	h, err := wav.Parse(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return err
	}
	switch {
	case h.Channels != channels || h.SampleRate != rate:
		return fmt.Errorf("%v, want %d ch, %d Hz", h, channels, rate)
	case h.DataOffset+h.DataSize != int64(len(b)):
		return errors.New("the header's data size is not the file's")
	}
	return nil
}
