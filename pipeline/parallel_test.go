package pipeline_test

import (
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/pipeline"
)

// Slow objects listed last are all in flight at once, one per worker: no
// object waits behind a busy worker while another worker is idle.
func TestSlowObjectsInParallel(t *testing.T) {
	const workers = 4
	src := newMemSource(60, 10) // obj-0000 … obj-0059; the last 4 are slow
	var mu sync.Mutex
	entered := map[string]bool{}
	all := make(chan struct{})
	tr := insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		if in.Name.Key >= "obj-0056" {
			mu.Lock()
			entered[in.Name.Key] = true
			if len(entered) == workers {
				close(all)
			}
			mu.Unlock()
			select {
			case <-all: // every slow object is in a transform at once
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		_, err := io.Copy(out, in.Body)
		return err
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rep, err := pipeline.Run(ctx, src, tr, newMemSink(), &pipeline.Options{Workers: workers})
	if err != nil || rep.Transformed != 60 {
		mu.Lock()
		defer mu.Unlock()
		var keys []string
		for k := range entered {
			keys = append(keys, k)
		}
		t.Fatalf("Run: %v, %+v; slow objects that entered together: %s", err, rep, strings.Join(keys, ","))
	}
}
