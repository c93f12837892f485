package pipeline_test

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/pipeline"
)

// directSink is a memSink that names a destination for each output.
type directSink struct{ *memSink }

func (s directSink) Destination(ctx context.Context, name insitu.Name) (insitu.Destination, error) {
	return insitu.Destination{Name: name, URL: "mem://" + name.String()}, nil
}

// deliveringTransform uppercases and "sends" the output to the destination
// by writing it into the sink's map itself, counting deliveries.
type deliveringTransform struct {
	dst        *memSink
	deliveries atomic.Int64
}

func (d *deliveringTransform) Transform(ctx context.Context, in *insitu.Input, out io.Writer) error {
	return upper.Transform(ctx, in, out)
}

func (d *deliveringTransform) TransformTo(ctx context.Context, in *insitu.Input, dst insitu.Destination) (insitu.PutResult, error) {
	d.deliveries.Add(1)
	if !strings.HasPrefix(dst.URL, "mem://") {
		return insitu.PutResult{}, insitu.Errorf(insitu.InvalidArgument, "bad destination %q", dst.URL)
	}
	var buf bytes.Buffer
	if err := upper.Transform(ctx, in, &buf); err != nil {
		return insitu.PutResult{}, err
	}
	d.dst.mu.Lock()
	d.dst.objs[dst.Name] = buf.Bytes()
	d.dst.mu.Unlock()
	return insitu.PutResult{Name: dst.Name, Size: int64(buf.Len())}, nil
}

func TestRunDirectPut(t *testing.T) {
	t.Parallel()
	src := newMemSource(25, 100)
	mem := newMemSink()
	tr := &deliveringTransform{dst: mem}
	rep, err := pipeline.Run(t.Context(), src, tr, directSink{mem}, &pipeline.Options{DirectPut: true})
	if err != nil {
		t.Fatal(err)
	}
	checkCounts(t, rep)
	if tr.deliveries.Load() != 25 || mem.puts.Load() != 0 {
		t.Fatalf("deliveries %d, sink puts %d; want 25 and 0: the runner must not carry the bytes", tr.deliveries.Load(), mem.puts.Load())
	}
	for k, in := range src.objs {
		got, _ := mem.get(insitu.Name{Bucket: "in", Key: k})
		if !bytes.Equal(got, bytes.ToUpper(in)) {
			t.Fatalf("%s: wrong output", k)
		}
	}
	if rep.BytesOut != rep.BytesIn {
		t.Errorf("bytes out %d, in %d", rep.BytesOut, rep.BytesIn)
	}

	// Without DirectPut the same pair goes through the runner and Put.
	mem2 := newMemSink()
	tr2 := &deliveringTransform{dst: mem2}
	if _, err := pipeline.Run(t.Context(), src, tr2, directSink{mem2}, nil); err != nil {
		t.Fatal(err)
	}
	if tr2.deliveries.Load() != 0 || mem2.puts.Load() != 25 {
		t.Fatalf("without DirectPut: deliveries %d, puts %d", tr2.deliveries.Load(), mem2.puts.Load())
	}
}
