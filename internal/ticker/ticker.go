// Package ticker calls a function at an interval until stopped, then once
// more: the loop behind the progress reports of pipeline and cluster.
package ticker

import (
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
