package pipeline_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/pipeline"
)

type stuckBatch struct{ hang chan struct{} }

func (s stuckBatch) Transform(ctx context.Context, in *insitu.Input, out io.Writer) error {
	<-s.hang // ignores ctx
	return nil
}
func (s stuckBatch) TransformBatch(ctx context.Context, ins []*insitu.Input) ([]io.ReadCloser, error) {
	return nil, errors.New("batch failed: go one by one")
}

// When a batch fails and its objects go one by one, a transform that ignores
// its context is still left behind at the per-object timeout: Run ends.
func TestBatchFallbackTimeout(t *testing.T) {
	hang := make(chan struct{})
	defer close(hang)
	done := make(chan struct{})
	go func() {
		defer close(done)
		pipeline.Run(context.Background(), newMemSource(4, 10), stuckBatch{hang}, newMemSink(),
			&pipeline.Options{Timeout: 50 * time.Millisecond, ContinueOnError: true})
	}()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("Run still running 3s after a 50ms per-object Timeout")
	}
}
