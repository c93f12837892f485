// Package seaweedfstest starts a real SeaweedFS cluster for tests, examples
// and benchmarks: a master, N volume servers, a filer and, when asked, the
// S3 gateway, each a `weed` process on 127.0.0.1 and free ports, with its
// data in a temporary directory. Telemetry is off, logs go to memory
// (never to /tmp), and no configuration file of the machine is read.
//
// Install weed with the line of [InstallHint]; a plain `go install` of
// the weed package fails on a replace directive of SeaweedFS's go.mod.
//
// A cluster takes a second or two to start (the master elects itself
// leader, the volume servers register). Tests of one package share one
// with a [Shared]; a test that stops a volume server starts its own with
// [Start].
package seaweedfstest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insitu-data/insitu/internal/testutil"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Version is the SeaweedFS version the package is tested with: the
// pseudo-version of github.com/seaweedfs/seaweedfs in [InstallHint].
const Version = "v0.0.0-20261109003541-7506e5f91cd6"

// InstallHint is the shell line that installs weed into $(go env
// GOPATH)/bin (about 8 minutes and 3.6 GB of module cache on 2 cores): a
// throwaway module that replaces the go-bip39 module SeaweedFS's go.mod
// points at, then builds the weed package.
const InstallHint = `d=$(mktemp -d) && cd "$d" && go mod init w && ` +
	`go mod edit -replace github.com/tyler-smith/go-bip39=github.com/cosmos/go-bip39@v1.0.0 && ` +
	`go get github.com/seaweedfs/seaweedfs/weed@` + Version + ` && ` +
	`go build -o "$(go env GOPATH)/bin/weed" github.com/seaweedfs/seaweedfs/weed`

// The fixed credentials of the S3 gateway this package starts.
const (
	AccessKey = "insitu-test-access"
	SecretKey = "insitu-test-secret-key-0123456789"
)

// Options configure [Start] and [StartProcess]. A nil *Options means the
// defaults.
type Options struct {
	// Bin is the weed executable. Default: "weed" on PATH.
	Bin string
	// Dir holds the data of every process (master/, volumeN/, filer/,
	// config/); it is created if missing and not removed. Default: a new
	// temporary directory, removed by Close.
	Dir string
	// VolumeServers is the number of volume servers. Default 3.
	VolumeServers int
	// MaxVolumes is the most volumes each volume server holds (weed
	// volume -max). Every collection (a bucket under /buckets is one)
	// grows 7 volumes on a server at a time. Default 100.
	MaxVolumes int
	// VolumeSizeLimitMB is the size at which the master stops writing to a
	// volume (weed master -volumeSizeLimitMB). Default 64.
	VolumeSizeLimitMB int
	// S3 also starts the S3 gateway (weed s3) with the credentials
	// [AccessKey] and [SecretKey]. It adds about 12 s to the start: the
	// gateway's writes take a lock from the cluster's filers, and a fresh
	// filer joins the cluster 10 s after it serves. Default false.
	S3 bool
	// StartTimeout bounds the start of the whole cluster. Default 60s.
	StartTimeout time.Duration
	// FilerFlags and VolumeFlags are more flags for weed filer and each
	// weed volume, such as "-idleTimeout=2" (the seconds a connection
	// may stall). Default none.
	FilerFlags, VolumeFlags []string
	// StopGrace is how long a stop waits after SIGTERM before SIGKILL.
	// Default 3s (a weed process stops in 1 to 2 s; with its defaults a
	// volume server would wait 10 s more).
	StopGrace time.Duration
}

// Cluster is a running SeaweedFS cluster. Addresses are "127.0.0.1:port"
// (the master names volume servers so: they are the node IDs of a
// topology), URLs are "http://" + address.
type Cluster struct {
	// Master and MasterURL are the master's HTTP address and URL.
	Master, MasterURL string
	// Filer and FilerURL are the filer's HTTP address and URL.
	Filer, FilerURL string
	// VolumeServers are the volume servers' addresses, in start order.
	VolumeServers []string
	// S3Endpoint is the S3 gateway's address (as minio.New takes it) and
	// S3URL its URL, when Options.S3 is set; "" otherwise.
	S3Endpoint, S3URL string
	// AccessKey and SecretKey are the S3 gateway's credentials.
	AccessKey, SecretKey string
	// Dir holds the processes' data.
	Dir string

	bin       string
	opts      Options
	masterArg string // "host:port.grpcPort", how the other servers name the master
	sockDir   string // short directory for the unix sockets of filer and s3
	rmDir     bool
	hc        *http.Client

	mu      sync.Mutex
	master  *proc
	filer   *proc
	s3      *proc
	volumes []*proc // nil when stopped
	vports  [][2]int

	closeOnce sync.Once
	closeErr  error
}

// Start starts a cluster for the test t and stops it when t ends. When
// weed is not installed, t is skipped with how to install it, or fails
// when the CI environment variable is set.
func Start(t testing.TB, opts *Options) *Cluster {
	t.Helper()
	bin := testutil.RequireTool(t, "weed", InstallHint)
	o := Options{}
	if opts != nil {
		o = *opts
	}
	o.Bin = bin
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	c, err := StartProcess(context.Background(), &o)
	if err != nil {
		t.Fatalf("seaweedfstest: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("seaweedfstest: stopping the cluster: %v", err)
		}
	})
	return c
}

// Shared is one cluster for all the tests of a package, started by the
// first [Shared.Get] and stopped by [Shared.Close], which the package's
// TestMain calls after m.Run. The zero Shared starts a cluster with the
// default options.
type Shared struct {
	// Options configure the cluster; set them before the first Get.
	Options *Options

	once sync.Once
	mu   sync.Mutex
	c    *Cluster
	err  error
}

// Get returns the shared cluster, starting it on the first call. When weed
// is not installed, t is skipped (or fails when CI is set), as with
// [Start]; when the start failed, every Get fails t with that error.
func (s *Shared) Get(t testing.TB) *Cluster {
	t.Helper()
	bin := testutil.RequireTool(t, "weed", InstallHint)
	s.once.Do(func() {
		o := Options{}
		if s.Options != nil {
			o = *s.Options
		}
		if o.Bin == "" {
			o.Bin = bin
		}
		c, err := StartProcess(context.Background(), &o)
		s.mu.Lock()
		s.c, s.err = c, err
		s.mu.Unlock()
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		t.Fatalf("seaweedfstest: the shared cluster did not start: %v", s.err)
	}
	return s.c
}

// Close stops the shared cluster if it was started.
func (s *Shared) Close() error {
	s.mu.Lock()
	c := s.c
	s.mu.Unlock()
	if c == nil {
		return nil
	}
	return c.Close()
}

// StartProcess starts a cluster and waits until it serves: the master has
// elected itself, every volume server has registered with it, the filer
// has stored and deleted a probe file, and the S3 gateway (when asked)
// answers. ctx bounds the start only: the cluster runs until
// [Cluster.Close]. If a port picked turns out to be taken, it starts
// again on other ports, twice at most.
func StartProcess(ctx context.Context, opts *Options) (*Cluster, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Bin == "" {
		o.Bin = "weed"
	}
	bin, err := exec.LookPath(o.Bin)
	if err != nil {
		return nil, fmt.Errorf("weed not found (install it: %s): %w", InstallHint, err)
	}
	if o.VolumeServers <= 0 {
		o.VolumeServers = 3
	}
	if o.MaxVolumes <= 0 {
		o.MaxVolumes = 100
	}
	if o.VolumeSizeLimitMB <= 0 {
		o.VolumeSizeLimitMB = 64
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = time.Minute
	}
	if o.StopGrace <= 0 {
		o.StopGrace = 3 * time.Second
	}
	rmDir := false
	if o.Dir == "" {
		if o.Dir, err = os.MkdirTemp("", "seaweedfstest-"); err != nil {
			return nil, err
		}
		rmDir = true
	}
	ctx, cancel := context.WithTimeout(ctx, o.StartTimeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		// Each attempt in a fresh directory, so that a failed one leaves
		// no raft state or volumes to the next.
		dir := filepath.Join(o.Dir, fmt.Sprintf("cluster%d", attempt))
		c, err := start(ctx, bin, o, dir)
		if err == nil {
			c.rmDir = rmDir
			if rmDir {
				c.Dir = o.Dir
			}
			return c, nil
		}
		if !errors.Is(err, errExited) || attempt == 2 || ctx.Err() != nil {
			if rmDir {
				os.RemoveAll(o.Dir)
			}
			return nil, err
		}
	}
}

// errExited is the error of a process that exited during the start, such
// as on a port taken in the meantime.
var errExited = errors.New("exited")

func start(ctx context.Context, bin string, o Options, dir string) (*Cluster, error) {
	// 4 ports per server: HTTP and gRPC for master, filer, s3 and each
	// volume server.
	ports, err := freePorts(2 * (3 + o.VolumeServers))
	if err != nil {
		return nil, err
	}
	next := func() int { p := ports[0]; ports = ports[1:]; return p }
	sockDir, err := os.MkdirTemp("", "swfs-")
	if err != nil {
		return nil, err
	}
	for _, d := range []string{"config", "master", "filer"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	// The master's post-mint hold on volume id allocation (15 s, for a
	// rebuilt master's veteran volume servers to report) is dead time on a
	// fresh cluster: "0s" disables it, as SeaweedFS suggests for tests.
	masterToml := "[master.volume_growth]\nallocation_deferral = \"0s\"\n"
	if err := os.WriteFile(filepath.Join(dir, "config", "master.toml"), []byte(masterToml), 0o644); err != nil {
		return nil, err
	}
	c := &Cluster{
		Dir: dir, bin: bin, opts: o, sockDir: sockDir,
		hc: &http.Client{Timeout: 5 * time.Second},
	}
	mport, mgrpc := next(), next()
	c.Master = fmt.Sprintf("127.0.0.1:%d", mport)
	c.MasterURL = "http://" + c.Master
	// "host:port.grpcPort" tells a client both ports of the master.
	c.masterArg = fmt.Sprintf("%s.%d", c.Master, mgrpc)
	ok := false
	defer func() {
		if !ok {
			c.Close()
		}
	}()
	c.master, err = c.spawn("master", filepath.Join(dir, "master"),
		"master", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
		fmt.Sprintf("-port=%d", mport), fmt.Sprintf("-port.grpc=%d", mgrpc),
		"-telemetry=false", fmt.Sprintf("-volumeSizeLimitMB=%d", o.VolumeSizeLimitMB),
		"-mdir="+filepath.Join(dir, "master"))
	if err != nil {
		return nil, err
	}
	// The others start once the master's gRPC port listens: a filer that
	// finds no master there sleeps 7 s before it tries again. The volume
	// servers and the filer wait for the master to lead by themselves.
	if err := c.poll(ctx, "the master's gRPC port", c.master, func() (bool, error) {
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", mgrpc), time.Second)
		if err != nil {
			return false, nil
		}
		conn.Close()
		return true, nil
	}); err != nil {
		return nil, err
	}
	for i := range o.VolumeServers {
		p := [2]int{next(), next()}
		c.vports = append(c.vports, p)
		c.VolumeServers = append(c.VolumeServers, fmt.Sprintf("127.0.0.1:%d", p[0]))
		c.volumes = append(c.volumes, nil)
		if err := os.MkdirAll(c.volumeDir(i), 0o755); err != nil {
			return nil, err
		}
		if err := c.startVolume(i); err != nil {
			return nil, err
		}
	}
	fport, fgrpc := next(), next()
	c.Filer = fmt.Sprintf("127.0.0.1:%d", fport)
	c.FilerURL = "http://" + c.Filer
	c.filer, err = c.spawn("filer", filepath.Join(dir, "filer"), append([]string{
		"filer", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
		fmt.Sprintf("-port=%d", fport), fmt.Sprintf("-port.grpc=%d", fgrpc),
		"-master=" + c.masterArg, "-defaultStoreDir=" + filepath.Join(dir, "filer"),
		"-localSocket=" + filepath.Join(sockDir, "filer.sock")}, o.FilerFlags...)...)
	if err != nil {
		return nil, err
	}
	if err := c.waitMaster(ctx, c.master, c.VolumeServers); err != nil {
		return nil, err
	}
	if err := c.waitFiler(ctx); err != nil {
		return nil, err
	}
	if o.S3 {
		sport, sgrpc := next(), next()
		c.S3Endpoint = fmt.Sprintf("127.0.0.1:%d", sport)
		c.S3URL = "http://" + c.S3Endpoint
		c.AccessKey, c.SecretKey = AccessKey, SecretKey
		cfg := filepath.Join(dir, "config", "s3.json")
		if err := writeS3Config(cfg); err != nil {
			return nil, err
		}
		c.s3, err = c.spawn("s3", filepath.Join(dir, "filer"),
			"s3", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
			fmt.Sprintf("-port=%d", sport), fmt.Sprintf("-port.grpc=%d", sgrpc),
			"-port.iceberg=0", "-port.lance=0",
			fmt.Sprintf("-filer=%s.%d", c.Filer, fgrpc), "-config="+cfg,
			"-localSocket="+filepath.Join(sockDir, "s3.sock"))
		if err != nil {
			return nil, err
		}
		if err := c.waitHTTP(ctx, c.s3, c.S3URL+"/", func(int) bool { return true }); err != nil {
			return nil, err
		}
		if err := c.waitS3Write(ctx); err != nil {
			return nil, err
		}
	}
	ok = true
	return c, nil
}

func writeS3Config(path string) error {
	cfg := map[string]any{"identities": []any{map[string]any{
		"name":        "insitu",
		"credentials": []any{map[string]string{"accessKey": AccessKey, "secretKey": SecretKey}},
		"actions":     []string{"Admin", "Read", "List", "Tagging", "Write"},
	}}}
	b, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

func (c *Cluster) volumeDir(i int) string {
	return filepath.Join(c.Dir, fmt.Sprintf("volume%d", i))
}

// startVolume starts volume server i (its port and directory are fixed).
func (c *Cluster) startVolume(i int) error {
	p := c.vports[i]
	v, err := c.spawn(fmt.Sprintf("volume%d", i), c.volumeDir(i), append([]string{
		"volume", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
		fmt.Sprintf("-port=%d", p[0]), fmt.Sprintf("-port.grpc=%d", p[1]),
		"-master=" + c.masterArg, "-dir=" + c.volumeDir(i),
		fmt.Sprintf("-max=%d", c.opts.MaxVolumes), "-preStopSeconds=0"}, c.opts.VolumeFlags...)...)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.volumes[i] = v
	c.mu.Unlock()
	return nil
}

// StopVolume stops volume server i (an index into VolumeServers) with
// SIGTERM, then SIGKILL after Options.StopGrace, and waits until the
// master no longer lists it, so that lookups and the topology leave it
// out. Its data stays for [Cluster.RestartVolume]. Stopping a stopped
// server does nothing.
func (c *Cluster) StopVolume(ctx context.Context, i int) error {
	return c.stopVolume(ctx, i, false)
}

// KillVolume is [Cluster.StopVolume] with SIGKILL at once: a crash.
func (c *Cluster) KillVolume(ctx context.Context, i int) error {
	return c.stopVolume(ctx, i, true)
}

func (c *Cluster) stopVolume(ctx context.Context, i int, kill bool) error {
	if i < 0 || i >= len(c.VolumeServers) {
		return fmt.Errorf("seaweedfstest: no volume server %d (there are %d)", i, len(c.VolumeServers))
	}
	c.mu.Lock()
	v := c.volumes[i]
	c.volumes[i] = nil
	c.mu.Unlock()
	if v == nil {
		return nil
	}
	if kill {
		v.signal(sigKill)
		<-v.exited
	} else {
		v.stop(c.opts.StopGrace)
	}
	return c.poll(ctx, "the master to drop "+c.VolumeServers[i], nil, func() (bool, error) {
		nodes, err := c.topology(ctx)
		return err == nil && !slices.Contains(nodes, c.VolumeServers[i]), nil
	})
}

// RestartVolume starts the stopped volume server i again, on its port and
// with its data, and waits until the master lists it again.
func (c *Cluster) RestartVolume(ctx context.Context, i int) error {
	if i < 0 || i >= len(c.VolumeServers) {
		return fmt.Errorf("seaweedfstest: no volume server %d (there are %d)", i, len(c.VolumeServers))
	}
	c.mu.Lock()
	running := c.volumes[i] != nil
	c.mu.Unlock()
	if running {
		return fmt.Errorf("seaweedfstest: volume server %s is running", c.VolumeServers[i])
	}
	if err := c.startVolume(i); err != nil {
		return err
	}
	c.mu.Lock()
	v := c.volumes[i]
	c.mu.Unlock()
	return c.waitMaster(ctx, v, c.VolumeServers[i:i+1])
}

// Logs returns what the processes wrote (the last 64 KiB of each), each
// under a header with its name.
func (c *Cluster) Logs() string {
	c.mu.Lock()
	procs := []*proc{c.master}
	procs = append(procs, c.volumes...)
	procs = append(procs, c.filer, c.s3)
	c.mu.Unlock()
	var b strings.Builder
	for _, p := range procs {
		if p != nil {
			fmt.Fprintf(&b, "==> %s <==\n%s\n", p.name, p.logs)
		}
	}
	return b.String()
}

// Close stops every process: SIGTERM, then SIGKILL to those still
// running after Options.StopGrace; the S3 gateway and the filer first, then
// the volume servers and the master. It removes Dir when
// StartProcess made it. Close is safe to call more than once.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		front := []*proc{c.s3, c.filer}
		back := append(slices.Clone(c.volumes), c.master)
		c.mu.Unlock()
		// The filer first, while the volume servers can still take the
		// last of its metadata log: without them it waits 15 s more.
		for _, procs := range [][]*proc{front, back} {
			var wg sync.WaitGroup
			for _, p := range procs {
				if p != nil {
					wg.Go(func() { p.stop(c.opts.StopGrace) })
				}
			}
			wg.Wait()
		}
		if c.hc != nil {
			c.hc.CloseIdleConnections()
		}
		os.RemoveAll(c.sockDir)
		if c.rmDir {
			c.closeErr = os.RemoveAll(c.Dir)
		}
	})
	return c.closeErr
}

// spawn starts one weed process with its working directory wd.
func (c *Cluster) spawn(name, wd string, args ...string) (*proc, error) {
	// Logs to stderr only (weed writes files to /tmp otherwise), and
	// configuration (security.toml and the like) only from our empty
	// directory, never the user's.
	full := append([]string{"-logtostderr=true", "-v=0", "-config_dir=" + filepath.Join(c.Dir, "config")}, args...)
	p := &proc{name: name, exited: make(chan struct{}), logs: &logBuffer{max: 64 << 10}}
	p.cmd = exec.Command(c.bin, full...)
	p.cmd.Dir = wd
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	setProcAttr(p.cmd)
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting weed %s: %w", name, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// waitMaster waits until the master lists every server of want, failing
// early when p (the master or a volume server) exits.
func (c *Cluster) waitMaster(ctx context.Context, p *proc, want []string) error {
	return c.poll(ctx, "the master to list "+strings.Join(want, ", "), p, func() (bool, error) {
		if e := c.master.exitErr(); e != nil {
			return false, e
		}
		nodes, err := c.topology(ctx)
		if err != nil {
			return false, nil
		}
		for _, w := range want {
			if !slices.Contains(nodes, w) {
				return false, nil
			}
		}
		return true, nil
	})
}

// waitFiler waits until the filer answers and can store a file, which
// needs its connection to the master; it removes the probe file.
func (c *Cluster) waitFiler(ctx context.Context) error {
	if err := c.waitHTTP(ctx, c.filer, c.FilerURL+"/healthz", func(s int) bool { return s == http.StatusOK }); err != nil {
		return err
	}
	probe := c.FilerURL + "/.seaweedfstest-probe"
	err := c.poll(ctx, "the filer to store a probe file", c.filer, func() (bool, error) {
		st, err := c.do(ctx, http.MethodPut, probe, strings.NewReader("probe"))
		return err == nil && st == http.StatusCreated, nil
	})
	if err != nil {
		return err
	}
	if st, err := c.do(ctx, http.MethodDelete, probe, nil); err != nil || st != http.StatusNoContent {
		return fmt.Errorf("deleting the filer's probe file: status %d, %v", st, err)
	}
	return nil
}

// waitS3Write waits until the S3 gateway can store an object: its writes
// take a lock from the cluster's filers, and a fresh filer joins the
// cluster (after 10 s of waiting for peers that a fresh cluster does not
// have) only after it serves. It removes the probe bucket.
func (c *Cluster) waitS3Write(ctx context.Context) error {
	client, err := minio.New(c.S3Endpoint, &minio.Options{
		Creds: credentials.NewStaticV4(AccessKey, SecretKey, ""), Region: "us-east-1",
	})
	if err != nil {
		return err
	}
	const bucket, key = "seaweedfstest-probe", "probe"
	if err := client.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: "us-east-1"}); err != nil {
		return fmt.Errorf("S3 gateway: making the probe bucket: %w\n%s", err, c.Logs())
	}
	// The gateway itself waits for the lock; ctx bounds the wait.
	if _, err := client.PutObject(ctx, bucket, key, strings.NewReader("probe"), 5, minio.PutObjectOptions{}); err != nil {
		return fmt.Errorf("S3 gateway: storing the probe object: %w\n%s", err, c.Logs())
	}
	if err := client.RemoveObject(ctx, bucket, key, minio.RemoveObjectOptions{}); err != nil {
		return fmt.Errorf("S3 gateway: removing the probe object: %w", err)
	}
	if err := client.RemoveBucket(ctx, bucket); err != nil {
		return fmt.Errorf("S3 gateway: removing the probe bucket: %w", err)
	}
	return nil
}

// waitHTTP polls url until its status satisfies ok.
func (c *Cluster) waitHTTP(ctx context.Context, p *proc, url string, ok func(int) bool) error {
	return c.poll(ctx, url+" to answer", p, func() (bool, error) {
		st, err := c.do(ctx, http.MethodGet, url, nil)
		return err == nil && ok(st), nil
	})
}

// poll calls cond every 25ms until it is true or fails, p exits, or ctx
// ends.
func (c *Cluster) poll(ctx context.Context, what string, p *proc, cond func() (bool, error)) error {
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		done, err := cond()
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		var exited chan struct{}
		if p != nil {
			exited = p.exited
		}
		select {
		case <-exited:
			return fmt.Errorf("waiting for %s: weed %s %w (%v): %s", what, p.name, errExited, p.waitErr, p.logs)
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w\n%s", what, ctx.Err(), c.Logs())
		case <-tick.C:
		}
	}
}

// do sends one request and returns its status.
func (c *Cluster) do(ctx context.Context, method, url string, body io.Reader) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return 0, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return resp.StatusCode, nil
}

// topology returns the addresses of the volume servers the master lists.
func (c *Cluster) topology(ctx context.Context) ([]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.MasterURL+"/dir/status", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("master /dir/status: %s", resp.Status)
	}
	var st struct {
		Topology struct {
			DataCenters []struct {
				Racks []struct {
					DataNodes []struct{ Url string }
				}
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, err
	}
	var nodes []string
	for _, dc := range st.Topology.DataCenters {
		for _, r := range dc.Racks {
			for _, n := range r.DataNodes {
				nodes = append(nodes, n.Url)
			}
		}
	}
	return nodes, nil
}

// proc is one weed process.
type proc struct {
	name    string
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the process has exited
	waitErr error         // valid once exited is closed
	logs    *logBuffer
}

// exitErr returns an error when the process has exited, else nil.
func (p *proc) exitErr() error {
	select {
	case <-p.exited:
		return fmt.Errorf("weed %s %w (%v): %s", p.name, errExited, p.waitErr, p.logs)
	default:
		return nil
	}
}

// stop sends SIGTERM, and SIGKILL when the process still runs after
// grace; it returns once the process has exited.
func (p *proc) stop(grace time.Duration) {
	p.signal(sigTerm)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.exited:
	case <-t.C:
		p.signal(sigKill)
		<-p.exited
	}
}

// freePorts returns n distinct TCP ports on 127.0.0.1 that were free a
// moment ago.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// logBuffer keeps the last max bytes written to it.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if over := b.buf.Len() - b.max; over > 0 {
		b.buf.Next(over)
	}
	return len(p), nil
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := strings.TrimSpace(b.buf.String())
	if s == "" {
		return "(no output)"
	}
	return s
}
