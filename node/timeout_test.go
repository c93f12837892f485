package node_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/cluster"
	"github.com/insitu-data/insitu/locality"
	"github.com/insitu-data/insitu/node"
)

// safety bounds every wait of these tests: a net, not a synchronization.
const safety = 20 * time.Second

// cutLog is a slog handler that tells when the node logs a request cut
// off for slowness.
type cutLog struct {
	once sync.Once
	cut  chan struct{}
}

func (h *cutLog) Enabled(context.Context, slog.Level) bool { return true }
func (h *cutLog) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *cutLog) WithGroup(string) slog.Handler            { return h }
func (h *cutLog) Handle(_ context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, "request cut off") {
		h.once.Do(func() { close(h.cut) })
	}
	return nil
}

// slowNode is a node behind an httptest server (which bounds nothing
// itself), whose progress bound is short: 1 KiB per 300 ms.
type slowNode struct {
	node   *node.Node
	srv    *httptest.Server
	secret locality.Secret
	log    *cutLog
}

func startSlowNode(t *testing.T, transforms map[string]insitu.Transform) *slowNode {
	t.Helper()
	m, err := locality.NewMap(1, locality.Node{ID: "solo", URL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	s := &slowNode{secret: locality.Secret("test secret"), log: &cutLog{cut: make(chan struct{})}}
	s.node, err = node.New(t.Context(), "solo", filepath.Join(t.TempDir(), "store"), m, &node.Options{
		Secret: s.secret, ProgressTimeout: 300 * time.Millisecond, ProgressBytes: 1024,
		Transforms: transforms, Logger: slog.New(s.log),
	})
	if err != nil {
		t.Fatal(err)
	}
	s.srv = httptest.NewServer(s.node.Handler())
	t.Cleanup(func() {
		s.srv.Close()
		if err := s.node.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return s
}

func (s *slowNode) dial(t *testing.T, d *net.Dialer) net.Conn {
	t.Helper()
	if d == nil {
		d = &net.Dialer{}
	}
	conn, err := d.DialContext(t.Context(), "tcp", strings.TrimPrefix(s.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(safety))
	return conn
}

// TestSlowBodyCutOff sends PUTs whose bodies stall, or trickle a byte at a
// time far below the node's progress bound: the node answers 504
// deadline_exceeded instead of waiting for ever, and stores nothing.
func TestSlowBodyCutOff(t *testing.T) {
	t.Parallel()
	s := startSlowNode(t, nil)
	head := "PUT /v1/objects/bkt/%s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + s.secret.AdminToken(time.Now().Add(time.Hour)) + "\r\n"
	// A body of 100 bytes is one that net/http reads to its end after the
	// handler (to keep the connection), a body of 1 MB one it does not.
	for _, tc := range []struct {
		name     string
		length   int // 0: chunked
		trickle  bool
		preamble string // the body's first bytes, sent at once
	}{
		{name: "stalled", length: 1e6, preamble: "0123456789"},
		{name: "stalled-small", length: 100, preamble: "0123456789"},
		{name: "no-body-yet", length: 1e6},
		{name: "no-body-yet-small", length: 100},
		{name: "trickling", length: 1e6, trickle: true},
		{name: "trickling-small", length: 100, trickle: true},
		{name: "trickling-chunked", trickle: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			conn := s.dial(t, nil)
			req := fmt.Sprintf(head, tc.name)
			if tc.length == 0 {
				req += "Transfer-Encoding: chunked\r\n\r\n"
			} else {
				req += fmt.Sprintf("Content-Length: %d\r\n\r\n", tc.length)
			}
			if _, err := io.WriteString(conn, req+tc.preamble); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			defer wg.Wait()
			stop := make(chan struct{})
			defer close(stop)
			if tc.trickle {
				// A byte every 10 ms: 100 B/s, under the bound of
				// 1 KiB per 300 ms. It stops when the node closes the
				// connection or the test ends (a small body ends in 1 s,
				// but the node has cut it off by then).
				wg.Go(func() {
					tick := time.NewTicker(10 * time.Millisecond)
					defer tick.Stop()
					b := "x"
					if tc.length == 0 {
						b = "1\r\nx\r\n"
					}
					for {
						select {
						case <-stop:
							return
						case <-tick.C:
						}
						if _, err := io.WriteString(conn, b); err != nil {
							return
						}
					}
				})
			}
			start := time.Now()
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("no answer from the node in %v: %v", time.Since(start), err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusGatewayTimeout || errorBody(t, body).Code != insitu.DeadlineExceeded {
				t.Errorf("status %s, body %s; want 504 deadline_exceeded", resp.Status, body)
			}
			if _, err := s.node.Stat(t.Context(), insitu.Name{Bucket: "bkt", Key: tc.name}); !errors.Is(err, insitu.NotFound) {
				t.Errorf("Stat after the cut-off upload: %v, want NotFound", err)
			}
		})
	}
	t.Cleanup(func() {
		if left := files(t, s.node.Dir()); len(left) != 0 {
			t.Errorf("files left in the store: %v", left)
		}
	})
}

// TestNonReadingClientCutOff asks for an object much larger than the
// socket buffers and never reads the answer: the node gives up the write
// once the client takes less than its progress bound, closes the
// connection and logs the cut-off; the client then finds the answer cut
// short.
func TestNonReadingClientCutOff(t *testing.T) {
	t.Parallel()
	s := startSlowNode(t, nil)
	const size = 64 << 20
	name := insitu.Name{Bucket: "bkt", Key: "big.bin"}
	if _, err := s.node.Put(t.Context(), name, io.LimitReader(zeros{}, size), size); err != nil {
		t.Fatal(err)
	}
	// A small receive buffer, so the node's writes block soon.
	d := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return errors.Join(err, serr)
	}}
	conn := s.dial(t, d)
	if _, err := io.WriteString(conn, "GET /v1/objects/bkt/big.bin HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+s.secret.AdminToken(time.Now().Add(time.Hour))+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.log.cut:
	case <-time.After(safety):
		t.Fatalf("the node did not cut off a client that reads nothing in %v", safety)
	}
	got, err := io.Copy(io.Discard, conn)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("reading the cut-off answer: %v", err)
	}
	if got >= size {
		t.Errorf("the client read %d bytes of a %d-byte object that the node gave up on", got, size)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestBoundDoesNotSlowHonestClients moves objects many times the progress
// bytes through the bounded reads and writes (and their sendfile slices),
// and waits for a job's status longer than the progress timeout: the clock
// runs only while bytes are due.
func TestBoundDoesNotSlowHonestClients(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	gated := insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		select {
		case <-release:
		case <-ctx.Done():
			return ctx.Err()
		}
		_, err := io.Copy(out, in.Body)
		return err
	})
	s := startSlowNode(t, map[string]insitu.Transform{"gated": gated})
	m, err := locality.NewMap(1, locality.Node{ID: "solo", URL: s.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	client, err := locality.NewClient(m, &locality.ClientOptions{Secret: s.secret})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx := t.Context()
	for _, size := range []int{0, 1, 1023, 1024, 1025, 3<<20 + 17} {
		name := insitu.Name{Bucket: "in", Key: fmt.Sprintf("obj-%d", size)}
		data := content(name.Key, size)
		if _, err := client.Put(ctx, name, bytes.NewReader(data), int64(size)); err != nil {
			t.Fatalf("Put(%d bytes): %v", size, err)
		}
		got, _, err := readAll(ctx, client, name)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("Get(%d bytes): %d bytes (%s), %v; want %s", size, len(got), checksum(got), err, checksum(data))
		}
		// A range, which net/http serves with its own copy.
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, locality.ObjectURL(m.Nodes()[0], name), nil)
		s.secret.Authorize(req)
		req.Header.Set("Range", "bytes=1-")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		part, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if size > 1 && (err != nil || !bytes.Equal(part, data[1:])) {
			t.Errorf("Range bytes=1- of %d bytes: %s, %d bytes, %v", size, resp.Status, len(part), err)
		}
	}
	// A job's status, asked with a wait three times the progress timeout,
	// answers after the wait.
	if _, err := s.node.StartJob(ctx, cluster.JobSpec{ID: "gated", Bucket: "in", DstBucket: "out", Transform: "gated"}); err != nil {
		t.Fatal(err)
	}
	defer close(release)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.srv.URL+"/v1/jobs/gated?wait=900ms", nil)
	s.secret.Authorize(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("a job status with a wait longer than the progress timeout: %v", err)
	}
	defer resp.Body.Close()
	var st cluster.JobStatus
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || resp.StatusCode != http.StatusOK || st.ID != "gated" {
		t.Errorf("job status: %s, %+v, %v", resp.Status, st, err)
	}
	select {
	case <-s.log.cut:
		t.Error("the node cut off an honest request")
	default:
	}
}
