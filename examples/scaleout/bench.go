package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/netemu"
	"github.com/insitu-data/insitu/locality"
	"github.com/insitu-data/insitu/transform/ffmpeg"
	"github.com/insitu-data/insitu/transform/ffmpeg/ffmpegtest"
)

// startTimeout bounds the start of one node process.
const startTimeout = 60 * time.Second

// bench is one measurement.
type bench struct {
	o        options
	log      io.Writer // progress lines; io.Discard with -q
	work     string
	secret   string // the secret file
	nodeBin  string
	self     string
	net      *netemu.Net
	jobs     []*jobData
	clusters map[int]*clusterProcs
	rows     map[rowKey]*Row
}

// jobData are a job's inputs and the outputs expected of them.
type jobData struct {
	name   string
	bucket string
	keys   []string
	paths  map[string]string   // key → the generated file
	want   map[string][32]byte // output key → SHA-256
	bytes  int64               // of all inputs
	outKey func(string) string
}

// clusterProcs are the nodes of one cluster size, one per host.
type clusterProcs struct {
	n       int
	m       *locality.Map
	mapJSON []byte
	dirs    map[string]string // node ID → store directory
	procs   []*nodeProc
}

// nodeProc is a running insitu-node.
type nodeProc struct {
	cmd    *exec.Cmd
	stderr *tail
	done   chan struct{}
}

type rowKey struct {
	job, mode string
	hosts     int
}

// measure runs the whole benchmark.
func measure(ctx context.Context, o options, stdout, stderr io.Writer) (*Result, error) {
	if err := netemu.Supported(); err != nil {
		return nil, cannotRun{err}
	}
	if slices.Contains(o.jobs, jobWAV) {
		if _, err := ffmpeg.Lookup(""); err != nil {
			return nil, cannotRun{err}
		}
	}
	b := &bench{o: o, log: stderr, clusters: map[int]*clusterProcs{}, rows: map[rowKey]*Row{}}
	if o.quiet {
		b.log = io.Discard
	}
	var err error
	if b.self, err = os.Executable(); err != nil {
		return nil, err
	}
	b.work = o.work
	if b.work == "" {
		if b.work, err = os.MkdirTemp("", "scaleout-"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(b.work)
	} else if err := os.MkdirAll(b.work, 0o755); err != nil {
		return nil, err
	}
	if err := b.prepare(ctx); err != nil {
		return nil, err
	}
	nodeCtx, stopNodes := context.WithCancel(context.Background())
	defer func() {
		stopNodes()
		// SIGTERM, then SIGKILL 10s later (netemu's Host.Command); the
		// net's Close stops whatever is still there after that.
		deadline := time.After(2 * startTimeout)
	wait:
		for _, c := range b.clusters {
			for _, p := range c.procs {
				select {
				case <-p.done:
				case <-deadline:
					break wait
				}
			}
		}
		if b.net == nil {
			return
		}
		if err := b.net.Close(); err != nil {
			fmt.Fprintln(stderr, "scaleout:", err)
		}
	}()
	b.net, err = netemu.Start(ctx, &netemu.Options{Hosts: slices.Max(o.hosts), Rate: o.mbit * 1_000_000, Latency: o.latency, CPU: o.cpu})
	if err != nil {
		if errors.Is(err, netemu.ErrUnsupported) {
			return nil, cannotRun{err}
		}
		return nil, err
	}
	for _, n := range o.hosts {
		if err := b.startCluster(ctx, nodeCtx, n); err != nil {
			return nil, err
		}
	}
	start := time.Now()
	for r := range o.rounds {
		for _, j := range b.jobs {
			order := b.configs()
			if r%2 == 1 {
				slices.Reverse(order)
			}
			for _, k := range order {
				k.job = j.name
				if err := b.runOne(ctx, j, k, r); err != nil {
					return nil, err
				}
			}
		}
	}
	return b.result(time.Since(start)), nil
}

// configs are the rows of a job, in the order of a round.
func (b *bench) configs() []rowKey {
	var ks []rowKey
	if b.o.baseline {
		ks = append(ks, rowKey{mode: modeClientSide, hosts: slices.Max(b.o.hosts)})
	}
	for _, n := range b.o.hosts {
		ks = append(ks, rowKey{mode: modeInsitu, hosts: n})
	}
	return ks
}

// prepare generates the inputs, computes the expected outputs, writes the
// secret and finds (or builds) insitu-node.
func (b *bench) prepare(ctx context.Context) error {
	b.secret = filepath.Join(b.work, "secret")
	sec := make([]byte, 32)
	for i := range sec {
		sec[i] = "0123456789abcdef"[rand.IntN(16)]
	}
	if err := os.WriteFile(b.secret, sec, 0o600); err != nil {
		return err
	}
	b.nodeBin = b.o.nodeBin
	if b.nodeBin == "" {
		b.nodeBin = filepath.Join(b.work, "insitu-node")
		fmt.Fprintln(b.log, "building insitu-node")
		bctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(bctx, "go", "build", "-o", b.nodeBin, "github.com/insitu-data/insitu/cmd/insitu-node").CombinedOutput()
		if err != nil {
			return cannotRun{fmt.Errorf("building insitu-node (or give -node-bin): %w\n%s", err, out)}
		}
	}
	for _, name := range b.o.jobs {
		var j *jobData
		var err error
		switch name {
		case jobWAV:
			j, err = b.wavInputs(ctx)
		case jobIdentity:
			j, err = b.identityInputs()
		}
		if err != nil {
			return err
		}
		b.jobs = append(b.jobs, j)
	}
	return nil
}

// wavInputs generates the clips (as etlbench does: 16 kHz mono, 5 to 15 s)
// and transcodes each here to know its WAV.
func (b *bench) wavInputs(ctx context.Context) (*jobData, error) {
	dir := filepath.Join(b.work, "gen", "flac")
	paths, err := generateClips(ctx, dir, b.o.n, b.log)
	if err != nil {
		return nil, err
	}
	j := &jobData{name: jobWAV, bucket: "flac", paths: map[string]string{}, want: map[string][32]byte{},
		outKey: func(k string) string { return strings.TrimSuffix(k, ".flac") + ".wav" }}
	w, err := ffmpeg.NewWAV(nil)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.NumCPU())
	var errs []error
	for _, p := range paths {
		key := filepath.Base(p)
		j.keys = append(j.keys, key)
		j.paths[key] = p
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		j.bytes += fi.Size()
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			h := sha256.New()
			in := &insitu.Input{Object: insitu.Object{Name: insitu.Name{Bucket: j.bucket, Key: key}, Path: p}, Args: wavArgs}
			err := w.Transform(ctx, in, h)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", key, err))
				return
			}
			j.want[j.outKey(key)] = [32]byte(h.Sum(nil))
		})
	}
	wg.Wait()
	return j, errors.Join(errs...)
}

// generateClips generates the clips that dir lacks (a clip appears only
// when whole, and the same spec gives the same bytes, so those of an
// earlier run with the same -work are kept) and returns the n paths.
func generateClips(ctx context.Context, dir string, n int, log io.Writer) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	spec := clipSpec(1, 5*time.Second, 15*time.Second)
	paths := make([]string, n)
	var missing []int
	for i := range n {
		paths[i] = filepath.Join(dir, fmt.Sprintf("sample-%04d.flac", i))
		if _, err := os.Stat(paths[i]); err != nil {
			missing = append(missing, i)
		}
	}
	if len(missing) == 0 {
		return paths, nil
	}
	fmt.Fprintf(log, "generating %d clips\n", len(missing))
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.NumCPU())
	for _, i := range missing {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := ffmpegtest.GenerateFLAC(ctx, "", paths[i], spec(i)); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return paths, errors.Join(errs...)
}

// clipSpec describes generated clip i: 16 kHz mono, its length spread
// evenly over [minDur, maxDur] by a hash of (seed, i) (etlbench's clips).
func clipSpec(seed int, minDur, maxDur time.Duration) func(i int) ffmpegtest.SampleSpec {
	return func(i int) ffmpegtest.SampleSpec {
		h := uint64(seed)*0x9E3779B97F4A7C15 + uint64(i)*0xBF58476D1CE4E5B9
		h ^= h >> 31
		h *= 0x94D049BB133111EB
		h ^= h >> 29
		span := int64(maxDur-minDur) / int64(time.Millisecond)
		ms := int64(minDur/time.Millisecond) + int64(h%uint64(span+1))
		return ffmpegtest.SampleSpec{Seed: seed*1_000_003 + i, Duration: time.Duration(ms) * time.Millisecond, SampleRate: 16000, Channels: 1}
	}
}

// identityInputs writes the identity job's objects: random bytes from a
// fixed seed.
func (b *bench) identityInputs() (*jobData, error) {
	dir := filepath.Join(b.work, "gen", "blobs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	j := &jobData{name: jobIdentity, bucket: "blobs", paths: map[string]string{}, want: map[string][32]byte{},
		outKey: func(k string) string { return k }}
	rng := rand.NewChaCha8([32]byte{1})
	buf := make([]byte, b.o.size)
	for i := range b.o.identityN {
		key := fmt.Sprintf("obj-%05d.bin", i)
		rng.Read(buf)
		p := filepath.Join(dir, key)
		if err := os.WriteFile(p, buf, 0o644); err != nil {
			return nil, err
		}
		j.keys = append(j.keys, key)
		j.paths[key] = p
		j.want[key] = sha256.Sum256(buf)
		j.bytes += b.o.size
	}
	return j, nil
}

// startCluster places the inputs of every job on the owners' disks of the
// n-host cluster and starts its nodes.
func (b *bench) startCluster(ctx, nodeCtx context.Context, n int) error {
	hosts := b.net.Hosts()[:n]
	port := strconv.Itoa(7000 + n)
	var nodes []locality.Node
	for _, h := range hosts {
		nodes = append(nodes, locality.Node{ID: h.Name, URL: "http://" + h.IP.String() + ":" + port})
	}
	m, err := locality.NewMap(1, nodes...)
	if err != nil {
		return err
	}
	if b.o.placement != locality.ByName {
		if m, err = m.WithPlacement(b.o.placement); err != nil {
			return err
		}
	}
	mj, err := m.MarshalJSON()
	if err != nil {
		return err
	}
	c := &clusterProcs{n: n, m: m, mapJSON: mj, dirs: map[string]string{}}
	b.clusters[n] = c
	base := filepath.Join(b.work, "c"+strconv.Itoa(n))
	if err := os.RemoveAll(base); err != nil { // an earlier run's, with the same -work
		return err
	}
	for _, h := range hosts {
		c.dirs[h.Name] = filepath.Join(base, h.Name)
	}
	for _, j := range b.jobs {
		for _, key := range j.keys {
			owner := m.Owner(insitu.Name{Bucket: j.bucket, Key: key}).ID
			dst := filepath.Join(c.dirs[owner], j.bucket, key)
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			if err := os.Link(j.paths[key], dst); err != nil {
				return err
			}
		}
	}
	mapFile := filepath.Join(base, "map.json")
	if err := os.WriteFile(mapFile, mj, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(b.log, "starting %d nodes\n", n)
	for _, h := range hosts {
		cmd := h.Command(nodeCtx, b.nodeBin, "-id", h.Name, "-listen", h.IP.String()+":"+port, "-dir", c.dirs[h.Name],
			"-map", mapFile, "-secret-file", b.secret, "-transforms", "wav", "-log-level", "warn")
		p := &nodeProc{cmd: cmd, stderr: &tail{}, done: make(chan struct{})}
		cmd.Stderr = p.stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return err
		}
		c.procs = append(c.procs, p)
		line := make(chan string, 1)
		go func() {
			sc := bufio.NewScanner(out)
			if sc.Scan() {
				line <- sc.Text()
			}
			close(line)
			io.Copy(io.Discard, out)
			cmd.Wait()
			close(p.done)
		}()
		select {
		case l := <-line:
			if !strings.HasPrefix(l, "insitu-node "+h.Name+" listening on ") {
				return fmt.Errorf("node %s of %d did not start: %q\n%s", h.Name, n, l, p.stderr)
			}
		case <-time.After(startTimeout):
			return fmt.Errorf("node %s of %d did not start within %v\n%s", h.Name, n, startTimeout, p.stderr)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// reading is what the counters said at one moment.
type reading struct {
	link      netemu.LinkStats
	client    time.Duration
	hosts     []time.Duration
	hostLinks []netemu.LinkStats
}

func (b *bench) read(ctx context.Context) (reading, error) {
	var r reading
	var err error
	if r.link, err = b.net.Client().Link(ctx); err != nil {
		return r, err
	}
	if r.client, err = b.net.Client().CPU(); err != nil {
		return r, err
	}
	for _, h := range b.net.Hosts() {
		cpu, err := h.CPU()
		if err != nil {
			return r, err
		}
		r.hosts = append(r.hosts, cpu)
		l, err := h.Link(ctx)
		if err != nil {
			return r, err
		}
		r.hostLinks = append(r.hostLinks, l)
	}
	return r, nil
}

// runOne runs job j in configuration k once, as round r, checks and
// removes its outputs, and records it.
func (b *bench) runOne(ctx context.Context, j *jobData, k rowKey, r int) error {
	row := b.rows[k]
	if row == nil {
		row = &Row{Job: k.job, Mode: k.mode, Hosts: k.hosts, Objects: len(j.keys), InputBytes: j.bytes}
		b.rows[k] = row
	}
	c := b.clusters[k.hosts]
	dst := fmt.Sprintf("out-%s-%s-%d-r%d", k.job, k.mode, k.hosts, r)
	spec := clientSpec{Mode: k.mode, Job: j.name, Map: c.mapJSON, SecretFile: b.secret, Bucket: j.bucket,
		DstBucket: dst, Workers: b.o.workers, NodeWork: b.o.nodeWork, Timeout: b.o.runTimeout}
	in, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	before, err := b.read(ctx)
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, b.o.runTimeout+time.Minute)
	defer cancel()
	cmd := b.net.Client().Command(rctx, b.self, clientRole)
	cmd.Stdin = bytes.NewReader(in)
	var out bytes.Buffer
	errTail := &tail{}
	cmd.Stdout, cmd.Stderr = &out, errTail
	runErr := cmd.Run()
	after, err := b.read(ctx)
	if err != nil {
		return err
	}
	var res clientResult
	if runErr != nil {
		res.Error = fmt.Sprintf("the client: %v: %s", runErr, errTail)
	} else if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		res.Error = fmt.Sprintf("the client's result %.200q: %v; %s", out.Bytes(), err, errTail)
	}
	if res.Error == "" {
		if err := b.check(j, c, dst); err != nil {
			res.Error = err.Error()
		}
	}
	for _, d := range c.dirs {
		if err := os.RemoveAll(filepath.Join(d, dst)); err != nil {
			return err
		}
	}
	if res.Error != "" && row.Error == "" {
		row.Error = res.Error
	}
	hostCPU := make([]float64, c.n)
	var hostLinks int64
	for i := range hostCPU {
		hostCPU[i] = (after.hosts[i] - before.hosts[i]).Seconds()
		hostLinks += after.hostLinks[i].Sub(before.hostLinks[i]).Bytes()
	}
	row.HostLinkBytes = append(row.HostLinkBytes, hostLinks)
	row.Seconds = append(row.Seconds, res.Seconds)
	row.ClientLinkBytes = append(row.ClientLinkBytes, after.link.Sub(before.link).Bytes())
	row.ClientCPU = append(row.ClientCPU, (after.client - before.client).Seconds())
	row.HostCPU = append(row.HostCPU, hostCPU)
	fmt.Fprintf(b.log, "round %d: %-8s %-11s %d hosts: %6.2fs, client link %s, client CPU %.2fs %s\n", r+1, k.job, k.mode, k.hosts,
		res.Seconds, humanBytes(after.link.Sub(before.link).Bytes()), (after.client - before.client).Seconds(), res.Error)
	return nil
}

// check compares every output of j in bucket dst of cluster c, on its
// owner's disk, with the expected bytes.
func (b *bench) check(j *jobData, c *clusterProcs, dst string) error {
	var bad []string
	for _, key := range j.keys {
		ok := j.outKey(key)
		name := insitu.Name{Bucket: dst, Key: ok}
		p := filepath.Join(c.dirs[c.m.Owner(name).ID], dst, ok)
		f, err := os.Open(p)
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s: %v", ok, err))
			continue
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil || [32]byte(h.Sum(nil)) != j.want[ok] {
			bad = append(bad, fmt.Sprintf("%s: not the expected bytes (%v)", ok, err))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%d of %d outputs wrong, first %s", len(bad), len(j.keys), bad[0])
	}
	return nil
}

// tail keeps the last 4 KiB written to it; safe for concurrent use.
type tail struct {
	mu sync.Mutex
	b  []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > 4<<10 {
		t.b = slices.Clone(t.b[len(t.b)-4<<10:])
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.b))
}
