package ticker_test

import (
	"context"
	"fmt"
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

func TestSleep(t *testing.T) {
	if err := ticker.Sleep(t.Context(), time.Millisecond); err != nil {
		t.Fatalf("Sleep = %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := ticker.Sleep(ctx, time.Hour); err != context.Canceled {
		t.Fatalf("Sleep with a canceled context = %v", err)
	}
}

func ExampleStart() {
	stop := ticker.Start(time.Hour, func(final bool) {
		if final {
			fmt.Println("final report")
		}
	})
	stop()
	// Output: final report
}
