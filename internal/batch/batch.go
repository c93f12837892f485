// Package batch groups items that arrive one at a time into batches
// bounded by a count, a sum of sizes and a wait, for the callers of an
// insitu.BatchTransform: the pipeline's runner and the transform server.
package batch

import (
	"context"
	"time"
)

// Limits bound a batch. A batch holds at least one item, whatever its
// size.
type Limits struct {
	// Count is the most items in a batch; below 1 counts as 1.
	Count int
	// Bytes bounds the sum of the items' sizes: an item that would take
	// a non-empty batch past it starts the next batch. 0 or less: no
	// bound.
	Bytes int64
	// Wait is the longest a batch waits for more items once it has its
	// first; it then goes as it is. 0 takes only the items already
	// waiting to be received.
	Wait time.Duration
}

// Or returns l with each of its fields that is 0 taken from def, the
// defaults of the options a caller exposes.
func (l Limits) Or(def Limits) Limits {
	if l.Count == 0 {
		l.Count = def.Count
	}
	if l.Bytes == 0 {
		l.Bytes = def.Bytes
	}
	if l.Wait == 0 {
		l.Wait = def.Wait
	}
	return l
}

// Group receives items from in and calls flush with each batch, in the
// order the items came, until in is closed (the last batch is flushed)
// or ctx is done (the batch being gathered is flushed as it is, and ctx's
// error is returned), so that every item received is flushed once. size gives an item's size for Limits.Bytes; a negative size
// counts as 0. flush runs on the calling goroutine and may block, which
// holds the items back: it owns the slice it gets.
func Group[T any](ctx context.Context, in <-chan T, size func(T) int64, lim Limits, flush func([]T)) error {
	count := max(lim.Count, 1)
	var (
		timer   *time.Timer
		carried []T // an item that did not fit the last batch
	)
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		b := carried
		carried = nil
		var bytes int64
		if len(b) == 0 {
			select {
			case it, ok := <-in:
				if !ok {
					return nil
				}
				b = append(make([]T, 0, count), it)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		bytes = max(size(b[0]), 0)
		var expired <-chan time.Time
		if lim.Wait > 0 {
			if timer == nil {
				timer = time.NewTimer(lim.Wait)
			} else {
				timer.Reset(lim.Wait)
			}
			expired = timer.C
		}
		closed := false
	gather:
		for len(b) < count {
			var (
				it T
				ok bool
			)
			if expired == nil {
				// No wait: only what is ready now.
				select {
				case it, ok = <-in:
				case <-ctx.Done():
					flush(b)
					return ctx.Err()
				default:
					break gather
				}
			} else {
				select {
				case it, ok = <-in:
				case <-expired:
					break gather
				case <-ctx.Done():
					flush(b)
					return ctx.Err()
				}
			}
			if !ok {
				closed = true
				break
			}
			n := max(size(it), 0)
			if lim.Bytes > 0 && bytes+n > lim.Bytes {
				carried = []T{it}
				break
			}
			b = append(b, it)
			bytes += n
		}
		if timer != nil {
			timer.Stop() // Go 1.23 timers: no stale value after Stop
		}
		flush(b)
		if closed {
			return nil
		}
	}
}
