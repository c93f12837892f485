package ticker_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/insitu-data/insitu/internal/ticker"
)

func TestStopCallsFinalOnce(t *testing.T) {
	var ticks, finals atomic.Int64
	stop := ticker.Start(time.Hour, func(final bool) {
		if final {
			finals.Add(1)
		} else {
			ticks.Add(1)
		}
	})
	stop()
	if ticks.Load() != 0 || finals.Load() != 1 {
		t.Fatalf("ticks %d, finals %d; want 0 and 1", ticks.Load(), finals.Load())
	}
	ticker.Start(time.Hour, nil)() // a nil tick starts nothing
}

func ExampleStart() {
	stop := ticker.Start(time.Second, func(final bool) {
		if final {
			println("done")
		}
	})
	stop()
}
