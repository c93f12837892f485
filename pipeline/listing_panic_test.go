package pipeline_test

import (
	"context"
	"iter"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/pipeline"
	"go.uber.org/goleak"
)

type panicList struct{ *memSource }

func (s panicList) Objects(ctx context.Context) iter.Seq2[insitu.Object, error] {
	return func(yield func(insitu.Object, error) bool) { panic("listing bug") }
}

// A panic in the listing is raised again by Run, and leaves no worker
// goroutine behind (goleak, in TestMain).
func TestListingPanicLeaks(t *testing.T) {
	func() {
		defer func() { recover() }()
		pipeline.Run(context.Background(), panicList{newMemSource(1, 1)}, insitu.Identity, newMemSink(), &pipeline.Options{Workers: 4})
	}()
	time.Sleep(100 * time.Millisecond)
	if err := goleak.Find(); err != nil {
		t.Fatalf("goroutines left after Run panicked: %v", err)
	}
}
