package loader

import (
	"sync"

	"github.com/insitu-data/insitu"
)

// window holds the samples read ahead of the consumer, in the order's
// positions: slot i%len(slots) holds sample i, for head <= i < next. The
// readers claim the next names of the order themselves (one reader at a
// time, under claimMu, so that a listing that is slow to give its next
// name blocks no reader that is done and no consumer), read them, and put
// each in its slot; the consumer takes them at head, in order. There is
// no goroutine between the order and the readers, nor a channel or an
// allocation per sample; a goroutine waits (on a sync.Cond) only for the
// sample at head or for room, and is woken only then.
type window struct {
	claimMu sync.Mutex // serialises claims: the calls of order

	mu       sync.Mutex
	slots    []slot
	head     int64 // the position of the next sample to deliver
	next     int64 // the position of the next name to claim
	ended    bool  // the order has no more names: next is final
	endErr   error // what ended it, nil at its end
	stopped  bool
	headWait bool      // the consumer waits on headCond
	run      int       // the ready samples from head that wake the consumer
	roomWait int       // the claimers waiting on roomCond
	headCond sync.Cond // the sample at head is in, or ended, or stopped
	roomCond sync.Cond // there is room for a claim, or stopped
}

// slot is one sample in the window.
type slot struct {
	name  insitu.Name
	data  []byte
	err   error
	ready bool
}

// newWindow returns a window of size slots from position start, whose
// consumer, when it waits, is woken once run samples from head are in
// (or all those claimed, if fewer), to take them in one go rather than
// being woken for each.
func newWindow(size, run int, start int64) *window {
	w := &window{slots: make([]slot, size), run: max(min(run, size), 1), head: start, next: start}
	w.headCond.L, w.roomCond.L = &w.mu, &w.mu
	return w
}

// claim waits for room for k names (k <= len(slots)), then takes at most
// k names of order; it returns the position of the first and the names,
// appended to names[:0]. No names: the order ended (or failed) or the
// window stopped. An indexed order is claimed under mu alone, and its
// names are looked up outside it, by any number of readers at once.
func (w *window) claim(order *epochOrder, k int, names []insitu.Name) (int64, []insitu.Name) {
	names = names[:0]
	if !order.indexed() {
		w.claimMu.Lock()
		defer w.claimMu.Unlock()
	}
	w.mu.Lock()
	if order.indexed() && !w.ended && order.count()-w.next < int64(k) {
		k = int(order.count() - w.next) // the last names
	}
	for !w.stopped && !w.ended && int(w.next-w.head)+k > len(w.slots) {
		w.roomWait++
		w.roomCond.Wait()
		w.roomWait--
	}
	if w.stopped || w.ended {
		w.mu.Unlock()
		return 0, names
	}
	first := w.next
	if order.indexed() {
		last := min(first+int64(k), order.count())
		w.next = last
		if last == order.count() {
			w.ended = true
			if w.headWait {
				w.headCond.Signal()
			}
		}
		w.mu.Unlock()
		for i := first; i < last; i++ {
			names = append(names, order.at(i))
		}
		return first, names
	}
	w.mu.Unlock()

	ended := false
	var err error
	for len(names) < k {
		name, e, ok := order.next()
		if e != nil || !ok {
			ended, err = true, e
			break
		}
		names = append(names, name)
	}
	w.mu.Lock()
	w.next = first + int64(len(names))
	if ended {
		w.ended, w.endErr = true, err
		if w.headWait {
			w.headCond.Signal()
		}
	}
	w.mu.Unlock()
	return first, names
}

// put sets the sample at position i, claimed and not yet put.
func (w *window) put(i int64, name insitu.Name, data []byte, err error) {
	w.mu.Lock()
	if !w.stopped {
		w.slots[i%int64(len(w.slots))] = slot{name: name, data: data, err: err, ready: true}
		if w.headWait && i-w.head < int64(w.run) && w.readyRun() {
			w.headCond.Signal()
		}
	}
	w.mu.Unlock()
}

// take waits for the sample at head and returns it and its position;
// false when the order ended and every sample was taken, or the window
// stopped.
func (w *window) take() (slot, int64, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for !w.stopped {
		s := &w.slots[w.head%int64(len(w.slots))]
		if s.ready {
			out, i := *s, w.head
			*s = slot{}
			w.head++
			if w.roomWait > 0 {
				w.roomCond.Signal()
			}
			return out, i, true
		}
		if w.ended && w.head >= w.next {
			break
		}
		w.headWait = true
		for !w.stopped && !w.readyRun() && !(w.ended && w.head >= w.next) {
			w.headCond.Wait()
		}
		w.headWait = false
	}
	return slot{}, 0, false
}

// readyRun reports whether the samples from head are in: run of them, or
// all those claimed when there are fewer or the claims wait for room.
// mu is held.
func (w *window) readyRun() bool {
	n := min(int64(w.run), w.next-w.head)
	if w.roomWait > 0 || n == 0 {
		n = 1 // the claims wait for the consumer: wake it for head
	}
	for i := w.head; i < w.head+n; i++ {
		if !w.slots[i%int64(len(w.slots))].ready {
			return false
		}
	}
	return true
}

// end returns the error that ended the order, if any.
func (w *window) end() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.endErr
}

// stop wakes every waiter for good and drops the samples held.
func (w *window) stop() {
	w.mu.Lock()
	w.stopped = true
	clear(w.slots)
	w.headCond.Broadcast()
	w.roomCond.Broadcast()
	w.mu.Unlock()
}
