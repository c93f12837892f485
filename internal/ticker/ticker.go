// Package ticker holds the library's two waits on a clock: [Start] calls a
// function at an interval until stopped, then once more (the loop behind
// the progress reports of pipeline and cluster), and [Sleep] waits for a
// duration or a context, whichever ends first (the backoff of retries).
package ticker

import (
	"context"
	"sync"
	"time"
)

// Start calls tick(false) every interval in a goroutine of its own. The
// returned stop function ends the loop, calls tick(true) once and returns
// when that call has returned; it must be called exactly once. A nil tick
// starts nothing.
func Start(interval time.Duration, tick func(final bool)) (stop func()) {
	if tick == nil {
		return func() {}
	}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-quit:
				tick(true)
				return
			case <-t.C:
				tick(false)
			}
		}
	})
	return func() {
		close(quit)
		wg.Wait()
	}
}

// Sleep waits for d or until ctx ends, whichever comes first, and returns
// ctx's error in the second case.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
