// Package s3test starts a real S3 server for tests, examples and
// benchmarks: versitygw (Apache-2.0) over a temporary posix directory, on
// 127.0.0.1 and a free port, with fixed credentials. Install it with
//
//	go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
package s3test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insitu-data/insitu/internal/testutil"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// InstallHint says how to install versitygw.
const InstallHint = "go install github.com/versity/versitygw/cmd/versitygw@v1.8.0"

// The fixed credentials of the servers this package starts.
const (
	AccessKey = "insitu-test-access"
	SecretKey = "insitu-test-secret-key-0123456789"
)

// Region is the region of the servers this package starts; clients set it
// so that they never ask the server for a bucket's location.
const Region = "us-east-1"

// Options configure [StartProcess]. A nil *Options means the defaults.
type Options struct {
	// Bin is the versitygw executable. Default: "versitygw" on PATH.
	Bin string
	// Root is the directory the server stores its buckets in, one
	// subdirectory per bucket; it is created if missing and not removed.
	// Default: a new temporary directory, removed by Close.
	Root string
	// AccessKey and SecretKey are the server's root credentials.
	// Default: the package's [AccessKey] and [SecretKey].
	AccessKey, SecretKey string
	// StartTimeout bounds the wait for the server to answer.
	// Default: 20s.
	StartTimeout time.Duration
}

// Server is a running versitygw.
type Server struct {
	// Endpoint is the server's "127.0.0.1:port", as minio.New takes it.
	Endpoint string
	// URL is "http://" + Endpoint.
	URL string
	// AccessKey and SecretKey are the server's root credentials.
	AccessKey, SecretKey string
	// Root is the directory that holds the buckets.
	Root string
	// Client is a client of the server with its root credentials.
	Client *minio.Client

	cmd     *exec.Cmd
	exited  chan struct{} // closed when the process has exited
	waitErr error         // the process's exit, valid once exited is closed
	logs    *logBuffer
	rmRoot  bool

	closeOnce sync.Once
	closeErr  error
}

// Start starts a server for the test t and stops it when t ends. When
// versitygw is not installed, t is skipped with how to install it, or
// fails when the CI environment variable is set.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := testutil.RequireTool(t, "versitygw", InstallHint)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := StartProcess(ctx, &Options{Bin: bin, Root: t.TempDir()})
	if err != nil {
		t.Fatalf("s3test: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("s3test: stopping versitygw: %v", err)
		}
	})
	return s
}

// StartProcess starts a server and waits until it answers HTTP. ctx bounds
// the start only: the server runs until [Server.Close]. If the port picked
// turns out to be taken, it tries again with another.
func StartProcess(ctx context.Context, opts *Options) (*Server, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Bin == "" {
		o.Bin = "versitygw"
	}
	bin, err := exec.LookPath(o.Bin)
	if err != nil {
		return nil, fmt.Errorf("versitygw not found (install it: %s): %w", InstallHint, err)
	}
	if o.AccessKey == "" {
		o.AccessKey = AccessKey
	}
	if o.SecretKey == "" {
		o.SecretKey = SecretKey
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 20 * time.Second
	}
	rmRoot := false
	if o.Root == "" {
		if o.Root, err = os.MkdirTemp("", "s3test-"); err != nil {
			return nil, err
		}
		rmRoot = true
	} else if err := os.MkdirAll(o.Root, 0o755); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.StartTimeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		s, err := start(ctx, bin, &o)
		if err == nil {
			s.rmRoot = rmRoot
			return s, nil
		}
		if !errors.Is(err, errExited) || attempt == 2 || ctx.Err() != nil {
			if rmRoot {
				os.RemoveAll(o.Root)
			}
			return nil, err
		}
	}
}

var errExited = errors.New("versitygw exited")

func start(ctx context.Context, bin string, o *Options) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	endpoint := fmt.Sprintf("127.0.0.1:%d", port)
	s := &Server{
		Endpoint: endpoint, URL: "http://" + endpoint,
		AccessKey: o.AccessKey, SecretKey: o.SecretKey, Root: o.Root,
		exited: make(chan struct{}), logs: &logBuffer{max: 64 << 10},
	}
	s.cmd = exec.Command(bin, "--port", endpoint, "--access", o.AccessKey, "--secret", o.SecretKey,
		"--region", Region, "--keep-alive", "--quiet", "posix", o.Root)
	s.cmd.Env = append(os.Environ(), "VGW_LOG_LEVEL=silent")
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	setProcAttr(s.cmd)
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting versitygw: %w", err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.exited)
	}()
	if err := s.waitReady(ctx); err != nil {
		s.Close()
		return nil, err
	}
	s.Client, err = s.NewClient(o.AccessKey, o.SecretKey)
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// waitReady polls the server with short HTTP requests until it answers
// (any HTTP status will do), the process exits, or ctx ends.
func (s *Server) waitReady(ctx context.Context) error {
	hc := &http.Client{Timeout: 500 * time.Millisecond}
	defer hc.CloseIdleConnections()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/", nil)
		if err != nil {
			return err
		}
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("%w before answering on %s (%v): %s", errExited, s.Endpoint, s.waitErr, s.logs)
		case <-ctx.Done():
			return fmt.Errorf("versitygw did not answer on %s: %w: %s", s.Endpoint, ctx.Err(), s.logs)
		case <-tick.C:
		}
	}
}

// NewClient returns a client of the server with the given credentials,
// such as wrong ones for a test of refused access.
func (s *Server) NewClient(accessKey, secretKey string) (*minio.Client, error) {
	return minio.New(s.Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(accessKey, secretKey, ""),
		Region: Region,
	})
}

// MakeBucket creates the bucket name, failing t if it cannot.
func (s *Server) MakeBucket(t testing.TB, name string) {
	t.Helper()
	if err := s.Client.MakeBucket(context.Background(), name, minio.MakeBucketOptions{Region: Region}); err != nil {
		t.Fatalf("s3test: making bucket %q: %v", name, err)
	}
}

// Logs returns what the server has written to stdout and stderr (the
// last 64 KiB).
func (s *Server) Logs() string { return s.logs.String() }

// Close stops the server: SIGKILL to its process group (a test server
// has nothing to save, and versitygw waits for idle keep-alive connections
// on SIGTERM). It removes Root when StartProcess made it. Close is safe to
// call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		stop(s.cmd, syscallKill)
		<-s.exited
		if s.rmRoot {
			s.closeErr = os.RemoveAll(s.Root)
		}
	})
	return s.closeErr
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
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
