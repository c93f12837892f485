package pipeline_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/pipeline"
)

type panicSink struct{ *memSink }

func (s panicSink) Put(ctx context.Context, n insitu.Name, r io.Reader, size int64) (insitu.PutResult, error) {
	if n.Key == "obj-0003" {
		panic("sink bug")
	}
	return s.memSink.Put(ctx, n, r, size)
}

// A panic in a small output's Put must be raised again by Run, like a
// panic in Rename.
func TestPutPanicSmall(t *testing.T) {
	defer func() {
		if rec := recover(); rec == nil || !bytes.Contains(fmt.Append(nil, rec), []byte("sink bug")) {
			t.Fatalf("recovered %v, want the sink panic", rec)
		}
	}()
	pipeline.Run(context.Background(), newMemSource(500, 1), insitu.Identity, panicSink{newMemSink()}, &pipeline.Options{Workers: 2})
	t.Fatal("Run returned")
}

// Same for an output over 32 KiB (its Put runs on the spill goroutine).
func TestPutPanicLarge(t *testing.T) {
	defer func() {
		if rec := recover(); rec == nil || !bytes.Contains(fmt.Append(nil, rec), []byte("sink bug")) {
			t.Fatalf("recovered %v, want the sink panic", rec)
		}
	}()
	pipeline.Run(context.Background(), newMemSource(10, 40<<10), insitu.Identity, panicSink{newMemSink()}, &pipeline.Options{Workers: 2})
	t.Fatal("Run returned")
}

// slowSink ignores ctx for a small Put (as a local-file sink writing 100 bytes does).
type slowSink struct {
	*memSink
	d time.Duration
}

func (s slowSink) Put(ctx context.Context, n insitu.Name, r io.Reader, size int64) (insitu.PutResult, error) {
	time.Sleep(s.d)
	return s.memSink.Put(context.Background(), n, r, size)
}

// After Run returns, nothing more reaches dst, and an object counted
// Failed has no output.
func TestPutAfterRunReturns(t *testing.T) {
	dst := newMemSink()
	rep, _ := pipeline.Run(context.Background(), newMemSource(1, 100), insitu.Identity,
		slowSink{dst, 200 * time.Millisecond}, &pipeline.Options{Timeout: 20 * time.Millisecond, ContinueOnError: true})
	before := dst.len()
	time.Sleep(400 * time.Millisecond)
	if after := dst.len(); after != before || (rep.Failed == 1 && after != 0) {
		t.Fatalf("report %+v; outputs at return %d, 400ms later %d", rep, before, after)
	}
}

// blockingBody is a body whose Close waits for a Read in progress, as
// source.Dir's fdFile does; its Read hangs (a stuck NFS/FUSE read).
type blockingBody struct {
	mu   sync.Mutex
	hang chan struct{}
}

func (b *blockingBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	<-b.hang
	return 0, io.EOF
}
func (b *blockingBody) Close() error { b.mu.Lock(); defer b.mu.Unlock(); return nil }

type hangSource struct {
	*memSource
	hang chan struct{}
}

func (s hangSource) Open(ctx context.Context, obj insitu.Object) (io.ReadCloser, error) {
	return &blockingBody{hang: s.hang}, nil
}

// Timeout must free the worker and end the run when the transform is stuck in a body Read.
func TestTimeoutStuckRead(t *testing.T) {
	hang := make(chan struct{})
	defer close(hang)
	done := make(chan error, 1)
	go func() {
		_, err := pipeline.Run(context.Background(), hangSource{newMemSource(1, 10), hang}, insitu.Identity, newMemSink(),
			&pipeline.Options{Timeout: 50 * time.Millisecond})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, insitu.DeadlineExceeded) {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Run still running 3s after a 50ms per-object Timeout")
	}
}
