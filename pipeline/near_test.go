package pipeline_test

import (
	"context"
	"fmt"
	"iter"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/pipeline"
)

// ownedSource is a memSource whose objects have owners: "node-<i%3>" for
// the i-th key.
type ownedSource struct{ *memSource }

func (s ownedSource) Objects(ctx context.Context) iter.Seq2[insitu.Object, error] {
	return func(yield func(insitu.Object, error) bool) {
		i := 0
		for obj, err := range s.memSource.Objects(ctx) {
			if err == nil {
				obj.Owner = fmt.Sprintf("node-%d", i%3)
				i++
			}
			if !yield(obj, err) {
				return
			}
		}
	}
}

// nearSink is a memSink that places each output near its input, and
// records the input it was asked to place each output near.
type nearSink struct {
	*memSink
	mu        sync.Mutex
	near      map[insitu.Name]insitu.Object // output → its input
	plainDest atomic.Int64                  // calls of Destination
}

func (s *nearSink) Destination(ctx context.Context, name insitu.Name) (insitu.Destination, error) {
	s.plainDest.Add(1)
	return insitu.Destination{Name: name, URL: "mem://" + name.String()}, nil
}

func (s *nearSink) DestinationNear(ctx context.Context, name insitu.Name, near insitu.Object) (insitu.Destination, error) {
	s.mu.Lock()
	s.near[name] = near
	s.mu.Unlock()
	return insitu.Destination{Name: name, URL: "mem://" + name.String() + "?near=" + near.Owner}, nil
}

var _ insitu.NearSink = (*nearSink)(nil)

// With DirectPut and a NearSink, the runner asks DestinationNear, with the
// input object itself (its owner, size and name), for every output, and
// never Destination.
func TestRunDirectPutNearSink(t *testing.T) {
	t.Parallel()
	src := ownedSource{newMemSource(12, 50)}
	mem := newMemSink()
	dst := &nearSink{memSink: mem, near: map[insitu.Name]insitu.Object{}}
	tr := &deliveringTransform{dst: mem}
	rename := func(n insitu.Name) (insitu.Name, error) {
		return insitu.Name{Bucket: "out", Key: strings.ToUpper(n.Key)}, nil
	}
	rep, err := pipeline.Run(t.Context(), src, tr, dst, &pipeline.Options{DirectPut: true, Rename: rename})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Transformed != 12 || tr.deliveries.Load() != 12 || mem.puts.Load() != 0 {
		t.Fatalf("transformed %d, deliveries %d, puts %d; want 12, 12, 0", rep.Transformed, tr.deliveries.Load(), mem.puts.Load())
	}
	if n := dst.plainDest.Load(); n != 0 {
		t.Errorf("Destination called %d times; a NearSink is asked DestinationNear", n)
	}
	listed := map[insitu.Name]insitu.Object{}
	for obj, err := range src.Objects(t.Context()) {
		if err != nil {
			t.Fatal(err)
		}
		listed[obj.Name] = obj
	}
	if len(dst.near) != len(listed) {
		t.Fatalf("DestinationNear for %d outputs, want %d", len(dst.near), len(listed))
	}
	for in, obj := range listed {
		out, _ := rename(in)
		if got := dst.near[out]; got != obj {
			t.Errorf("output %s placed near %+v, want its input %+v", out, got, obj)
		}
		if _, ok := mem.get(out); !ok {
			t.Errorf("output %s missing", out)
		}
	}

	// Without DirectPut, the runner puts: no destination is asked for.
	dst2 := &nearSink{memSink: newMemSink(), near: map[insitu.Name]insitu.Object{}}
	if _, err := pipeline.Run(t.Context(), src, tr, dst2, nil); err != nil {
		t.Fatal(err)
	}
	if len(dst2.near) != 0 || dst2.plainDest.Load() != 0 || dst2.puts.Load() != 12 {
		t.Errorf("without DirectPut: %d DestinationNear, %d Destination, %d puts; want 0, 0, 12", len(dst2.near), dst2.plainDest.Load(), dst2.puts.Load())
	}
}
