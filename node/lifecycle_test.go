package node_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/cluster"
	"github.com/insitu-data/insitu/internal/wire"
	"github.com/insitu-data/insitu/node"
)

// blockUntilCanceled is a transform that signals on entered and holds its
// object until its context ends, then signals on canceled.
func blockUntilCanceled(entered, canceled chan<- struct{}) insitu.Transform {
	return insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-ctx.Done()
		select {
		case canceled <- struct{}{}:
		default:
		}
		return ctx.Err()
	})
}

// TestShutdown: Shutdown refuses new work at once (503 on every endpoint,
// Unavailable from the methods), aborts the running job, and returns only
// once the upload in flight has finished, which it lets finish; the job's
// status stays readable, and a second Shutdown returns at once.
func TestShutdown(t *testing.T) {
	t.Parallel()
	entered, canceled := make(chan struct{}, 1), make(chan struct{}, 1)
	s := startSingle(t, &node.Options{Transforms: map[string]insitu.Transform{"block": blockUntilCanceled(entered, canceled)}})
	ctx := t.Context()
	in := insitu.Name{Bucket: "in", Key: "a"}
	if _, err := s.node.Put(ctx, in, strings.NewReader("input"), 5); err != nil {
		t.Fatal(err)
	}
	if _, err := s.node.StartJob(ctx, cluster.JobSpec{ID: "j", Bucket: "in", DstBucket: "out", Transform: "block"}); err != nil {
		t.Fatal(err)
	}
	<-entered

	// An upload in flight: it asks for "100 Continue", which the node
	// sends once it reads the body, so once a Write returns, the node's
	// handler is reading it.
	data := content("in flight", 300_000)
	pr, pw := io.Pipe()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, s.srv.URL+"/v1/objects/b/inflight", pr)
	req.ContentLength = int64(len(data))
	req.Header.Set("Expect", "100-continue")
	s.secret.Authorize(req)
	tr := &http.Transport{ExpectContinueTimeout: time.Hour} // never send the body unasked
	defer tr.CloseIdleConnections()
	uploaded := make(chan error, 1)
	go func() {
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = errors.New(resp.Status)
			}
		}
		uploaded <- err
	}()
	if _, err := pw.Write(data[:1000]); err != nil {
		t.Fatal(err)
	}

	done := make(chan error, 1)
	go func() { done <- s.node.Shutdown(context.Background()) }()
	<-canceled // Shutdown aborted the job, so it refuses new work already

	for _, path := range []string{"/v1/health", "/v1/map", "/v1/objects/b/x"} {
		req, _ := http.NewRequest(http.MethodGet, s.srv.URL+path, nil)
		s.secret.Authorize(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get(wire.ErrorCode) != "unavailable" ||
			errorBody(t, body).Code != insitu.Unavailable {
			t.Errorf("GET %s while shutting down: %s %s", path, resp.Status, body)
		}
	}
	name := insitu.Name{Bucket: "b", Key: "late"}
	if _, err := s.node.Put(ctx, name, strings.NewReader("x"), 1); !errors.Is(err, insitu.Unavailable) {
		t.Errorf("Put while shutting down: %v, want Unavailable", err)
	}
	if _, err := s.node.Stat(ctx, in); !errors.Is(err, insitu.Unavailable) {
		t.Errorf("Stat while shutting down: %v, want Unavailable", err)
	}
	if _, err := s.node.List(ctx, "in", nil); !errors.Is(err, insitu.Unavailable) {
		t.Errorf("List while shutting down: %v, want Unavailable", err)
	}
	if _, err := s.node.StartJob(ctx, cluster.JobSpec{ID: "k", Bucket: "in", DstBucket: "out", Transform: "block"}); !errors.Is(err, insitu.Unavailable) {
		t.Errorf("StartJob while shutting down: %v, want Unavailable", err)
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) with an upload in flight", err)
	default:
	}

	// The upload finishes, whole; then Shutdown returns.
	if _, err := pw.Write(data[1000:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if err := <-uploaded; err != nil {
		t.Fatalf("the upload in flight: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if got := files(t, s.node.Dir()); got["b/inflight"] != int64(len(data)) || len(got) != 2 {
		t.Errorf("store after Shutdown: %v, want in/a and the whole upload", got)
	}
	st, err := s.node.JobStatus(ctx, "j", 0)
	if err != nil || st.State != cluster.JobAborted {
		t.Errorf("the job after Shutdown: %+v, %v; want aborted", st, err)
	}
	if _, _, err := s.node.Open(ctx, in); !errors.Is(err, insitu.Unavailable) {
		t.Errorf("Open after Shutdown: %v, want Unavailable", err)
	}
	if err := s.node.Shutdown(ctx); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
}

// TestShutdownForced: when Shutdown's context ends before the work in
// flight returns, Shutdown returns the context's error and releases the
// store at once; the put still in flight fails with Unavailable and
// stores nothing, and a later Shutdown waits for it.
func TestShutdownForced(t *testing.T) {
	t.Parallel()
	s := startSingle(t, nil)
	name := insitu.Name{Bucket: "b", Key: "cut"}
	pr, pw := io.Pipe()
	put := make(chan error, 1)
	go func() {
		_, err := s.node.Put(context.Background(), name, pr, -1)
		put <- err
	}()
	if _, err := pw.Write(content("cut", 5000)); err != nil {
		t.Fatal(err)
	}
	now, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.node.Shutdown(now); !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown with a put in flight and a canceled context: %v, want context.Canceled", err)
	}
	pw.Close()
	if err := <-put; !errors.Is(err, insitu.Unavailable) {
		t.Errorf("the put in flight: %v, want Unavailable", err)
	}
	if err := s.node.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown once the put has returned: %v", err)
	}
	if _, err := s.node.Stat(context.Background(), name); !errors.Is(err, insitu.Unavailable) {
		t.Errorf("Stat after Shutdown: %v", err)
	}
	for k := range files(t, s.node.Dir()) {
		if !strings.Contains(k, ".insitu-tmp-") {
			t.Errorf("%s stored by a put cut by Shutdown", k)
		}
	}
}
