package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/ticker"
	"github.com/sourcegraph/conc/panics"
	"github.com/sourcegraph/conc/pool"
)

// Run lists src, transforms each object with t and stores the output in
// dst, with at most opts.Workers objects in flight. See [Options] for what
// it can be told; nil means defaults.
//
// The returned error is nil when every object was transformed or skipped;
// the first failure when ContinueOnError is off; ctx's error when ctx ended
// first; and nil with Report.Failed > 0 when ContinueOnError is on. Bad
// arguments are an [insitu.InvalidArgument] error before anything runs. The
// Report is valid in every case.
func Run(ctx context.Context, src insitu.Source, t insitu.Transform, dst insitu.Sink, opts *Options) (Report, error) {
	start := time.Now()
	switch {
	case src == nil:
		return Report{}, insitu.Errorf(insitu.InvalidArgument, "pipeline: nil source")
	case t == nil:
		return Report{}, insitu.Errorf(insitu.InvalidArgument, "pipeline: nil transform")
	case dst == nil:
		return Report{}, insitu.Errorf(insitu.InvalidArgument, "pipeline: nil sink (use sink.Discard to drop outputs)")
	}
	if err := opts.validate(); err != nil {
		return Report{}, err
	}
	o := opts.resolved()
	originSink, _ := dst.(insitu.OriginSink)
	if o.SkipUnchanged && originSink == nil {
		return Report{}, insitu.Errorf(insitu.InvalidArgument,
			"pipeline: SkipUnchanged needs a sink that records origins (an insitu.OriginSink); %T is not one: use SkipExisting", dst)
	}
	if o.TransformID == "" {
		o.TransformID = fmt.Sprintf("%T", t)
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	r := &runner{src: src, t: t, dst: dst, o: o, start: start, cancel: cancel,
		originSink: originSink, argsDigest: insitu.ArgsDigest(o.Args)}
	r.bufs.New = func() any { b := make([]byte, heldOutput); return &b }
	if opts != nil && opts.Rename != nil {
		// Only a rename can give two inputs one output name.
		r.outputs = map[[2]uint64]insitu.Name{}
		r.seeds = [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}
	}
	if o.DirectPut && !o.DryRun {
		r.directSink, _ = dst.(insitu.DirectSink)
		r.directT, _ = t.(insitu.DirectTransform)
	}
	var stopProgress func()
	if o.Progress != nil {
		stopProgress = ticker.Start(o.ProgressInterval, func(final bool) {
			s := r.stats()
			s.Final = final
			o.Progress(s)
		})
	} else {
		stopProgress = func() {}
	}

	if o.CountFirst {
		for range src.Objects(ctx) {
			r.total.Add(1)
		}
	}
	workers := pool.New().WithMaxGoroutines(o.Workers)
	if bt, ok := t.(insitu.BatchTransform); ok && r.directT == nil && o.Batch.limits().Count > 1 {
		r.runBatches(ctx, bt, workers)
	} else {
		// The workers take objects one at a time from a queue a few deep
		// per worker, so that the listing runs ahead of them; a side that
		// waits is woken only when the other has something for it, so
		// that busy workers and a busy listing hand objects over without
		// a wake-up each. Each worker is a slot (see [slot]): the
		// goroutine that runs it can change when a transform outlives its
		// deadline.
		queue := newWorkQueue(max(minQueue, queueDepth*o.Workers))
		defer queue.close() // also when the listing panics: the slots end
		var slots sync.WaitGroup
		for range o.Workers {
			slots.Add(1)
			s := &slot{r: r, ctx: ctx, cancel: cancel, queue: queue, wg: &slots}
			go s.run()
		}
		for obj, err := range src.Objects(ctx) {
			if ctx.Err() != nil {
				break
			}
			r.listed.Add(1)
			if err != nil {
				r.fail(objectName(err), err)
				continue
			}
			queue.put(obj)
		}
		queue.close()
		slots.Wait()
		r.listingDone.Store(true)
	}
	workers.Wait()
	stopProgress()
	r.panics.Repanic()

	rep := r.report()
	if err := r.firstErr(); err != nil && !o.ContinueOnError {
		return rep, err
	}
	if err := context.Cause(ctx); err != nil && !errors.Is(err, errFirstFailure) {
		return rep, err
	}
	return rep, nil
}

// queueDepth is how many listed objects wait for each worker, and
// minQueue how many wait at least: a listing that runs ahead by a hundred
// objects or so absorbs the moments the listing goroutine waits for a CPU
// (with 4 a worker, as before, 2 workers on a million 16-byte files ran
// 6.2–6.3 s; with 128 in all, 5.6–5.8 s; with 512, the same as 128). The
// queue holds the listed objects' names, a few hundred bytes each.
const (
	queueDepth = 4
	minQueue   = 128
)

// workQueue hands listed objects to the workers, one at a time, in order.
// A side that waits (the listing on a full queue, a worker on an empty one)
// is signalled only when there is something for it.
type workQueue struct {
	mu       sync.Mutex
	notEmpty sync.Cond
	notFull  sync.Cond
	items    []insitu.Object // a ring of cap(items)
	head, n  int
	closed   bool
	takers   int // workers waiting
	putting  bool
}

func newWorkQueue(depth int) *workQueue {
	q := &workQueue{items: make([]insitu.Object, max(depth, 1))}
	q.notEmpty.L, q.notFull.L = &q.mu, &q.mu
	return q
}

// put adds obj, waiting while the queue is full.
func (q *workQueue) put(obj insitu.Object) {
	q.mu.Lock()
	for q.n == len(q.items) && !q.closed {
		q.putting = true
		q.notFull.Wait()
		q.putting = false
	}
	if !q.closed {
		q.items[(q.head+q.n)%len(q.items)] = obj
		q.n++
		if q.takers > 0 {
			q.notEmpty.Signal()
		}
	}
	q.mu.Unlock()
}

// take returns the next object, waiting while the queue is empty; false
// once it is closed and empty.
func (q *workQueue) take() (insitu.Object, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.n == 0 && !q.closed {
		q.takers++
		q.notEmpty.Wait()
		q.takers--
	}
	if q.n == 0 {
		return insitu.Object{}, false
	}
	obj := q.items[q.head]
	q.items[q.head] = insitu.Object{}
	q.head = (q.head + 1) % len(q.items)
	q.n--
	if q.putting {
		q.notFull.Signal()
	}
	return obj, true
}

// close ends the queue: the objects in it are still taken; it may be
// called more than once.
func (q *workQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.notEmpty.Broadcast()
	q.notFull.Broadcast()
	q.mu.Unlock()
}

// errPanicked is the cause given to the run's context when a worker
// panicked outside the transform; Run raises the panic again.
var errPanicked = insitu.Errorf(insitu.Internal, "pipeline: canceled after a panic")

// errFirstFailure is the cause given to the run's context when the first
// failure stops a run without ContinueOnError.
var errFirstFailure = insitu.Errorf(insitu.Canceled, "pipeline: canceled after an earlier failure")

type runner struct {
	src    insitu.Source
	t      insitu.Transform
	dst    insitu.Sink
	o      Options
	start  time.Time
	cancel context.CancelCauseFunc

	// Both set when outputs go by direct put.
	directSink insitu.DirectSink
	directT    insitu.DirectTransform

	// originSink is dst when it records origins, else nil; argsDigest is
	// the digest of the run's args that the origins carry.
	originSink insitu.OriginSink
	argsDigest string

	listed, total, transformed, skipped, failed atomic.Int64
	bytesIn, bytesOut                           atomic.Int64
	listingDone                                 atomic.Bool

	mu       sync.Mutex // guards what follows, and serializes OnFailure
	failList []Failure  // the first MaxFailures failures
	dropped  int64      // failures not in failList
	first    error

	// outputs maps a 128-bit hash of each output name to the input that
	// took it, to fail a second input renamed to the same name; nil when
	// the run has no Rename.
	outMu   sync.Mutex
	outputs map[[2]uint64]insitu.Name
	seeds   [2]maphash.Seed

	// panics catches what panics on a worker outside the transform.
	panics panics.Catcher

	// bufs holds *[]byte of heldOutput bytes: the held outputs, and the
	// copy buffers of outputs that outgrow them.
	bufs sync.Pool
}

// process carries one object through rename, skip check, transform and put,
// retrying Unavailable failures, and counts it exactly once.
func (r *runner) process(ctx context.Context, s *slot, obj insitu.Object) bool {
	if w, ok := r.prepare(ctx, obj); ok {
		return r.work(ctx, s, w)
	}
	return true
}

// slot is one of a run's workers: a loop over the queue of listed objects,
// on one goroutine at a time. An attempt runs its transform and put on the
// slot's goroutine; when its deadline (or the run's end) passes first, the
// attempt's watchdog counts the object failed and goes on with the slot's
// loop itself, leaving the old goroutine to the transform that ignores its
// context: that goroutine, once the transform returns, finds that it was
// left and ends quietly. So a transform or a sink that never returns holds
// a goroutine, but not a worker, and not the run.
type slot struct {
	r      *runner
	ctx    context.Context
	cancel context.CancelCauseFunc
	queue  *workQueue
	wg     *sync.WaitGroup // Done when the slot's loop ends, on whichever goroutine

	// buf is the held buffer of the slot's attempts, nil while one holds
	// it; an attempt left behind keeps it, and the slot takes another.
	buf *[]byte
}

// run is the slot's loop: it carries each queued object through, and
// returns early, without Done, when this goroutine was left behind.
func (s *slot) run() {
	for {
		obj, ok := s.queue.take()
		if !ok {
			break
		}
		goOn := true
		s.r.panics.Try(func() { goOn = s.r.process(s.ctx, s, obj) })
		if s.r.panics.Recovered() != nil {
			s.cancel(errPanicked)
		}
		if !goOn {
			return
		}
	}
	s.wg.Done()
}

// takeOver goes on with the slot's loop on this goroutine (an attempt's
// watchdog), after the slot's goroutine was left behind; nothing for a
// nil slot (a batch's worker, which waits for its transform instead).
func (s *slot) takeOver() {
	if s != nil {
		s.run()
	}
}

// item is an object to transform, with its output's name and origin.
type item struct {
	obj insitu.Object
	out insitu.Name
	org origin
}

// prepare renames obj, claims its output name and checks whether the run
// skips it. It returns false when the object is done with: skipped or
// failed, and counted.
func (r *runner) prepare(ctx context.Context, obj insitu.Object) (item, bool) {
	if ctx.Err() != nil {
		r.fail(obj.Name, context.Cause(ctx))
		return item{}, false
	}
	out, err := r.o.Rename(obj.Name)
	if err != nil {
		r.fail(obj.Name, err)
		return item{}, false
	}
	if err := r.claim(obj.Name, out); err != nil {
		r.fail(obj.Name, err)
		return item{}, false
	}
	org := r.origin(obj)
	if r.o.SkipExisting || r.o.SkipUnchanged {
		st, err := r.dst.Stat(ctx, out)
		switch {
		case err == nil && (r.o.SkipExisting || r.unchanged(obj, st, org)):
			r.skipped.Add(1)
			return item{}, false
		case err == nil:
			// SkipUnchanged, and the output's origin differs: made again.
		case !errors.Is(err, insitu.NotFound):
			r.fail(obj.Name, err)
			return item{}, false
		}
	}
	return item{obj: obj, out: out, org: org}, true
}

// work transforms and stores one prepared object, retrying Unavailable
// failures, and counts it.
// It returns false when the attempt's watchdog counted the object and the
// slot went on without this goroutine (see [slot]).
func (r *runner) work(ctx context.Context, s *slot, w item) bool {
	obj, out, org := w.obj, w.out, w.org
	for attempt := 0; ; attempt++ {
		err := r.attempt(ctx, s, obj, out, org)
		switch {
		case err == errLeft:
			return false
		case err == nil:
			r.transformed.Add(1)
			return true
		case errors.Is(err, insitu.ErrSkip):
			r.skipped.Add(1)
			return true
		case attempt < r.o.Retries && insitu.CodeOf(err) == insitu.Unavailable && ctx.Err() == nil:
			wait := backoff(r.o.Backoff, attempt)
			r.o.Logger.LogAttrs(ctx, slog.LevelDebug, "retrying", slog.String("object", obj.Name.String()),
				slog.Any("error", err), slog.Duration("after", wait))
			if ticker.Sleep(ctx, wait) != nil {
				r.fail(obj.Name, err)
				return true
			}
		default:
			r.fail(obj.Name, err)
			return true
		}
	}
}

// origin is what the run records of how an output of obj is made.
type origin struct {
	insitu.Origin
	text string // Origin.String(), or "" when over MaxOriginLen: none is recorded
}

// origin returns the origin of obj's output; none when the sink records
// none (SkipUnchanged needs a sink that does).
func (r *runner) origin(obj insitu.Object) origin {
	if r.originSink == nil {
		return origin{}
	}
	o := origin{Origin: insitu.Origin{Input: obj.Name, Version: obj.Version, Transform: r.o.TransformID, Args: r.argsDigest}}
	if o.text = o.String(); len(o.text) > insitu.MaxOriginLen {
		o.text = ""
	}
	return o
}

// unchanged reports whether the output st, which exists, was made as the
// run would make it again from obj: its recorded origin is the run's, and
// the source told obj's version.
func (r *runner) unchanged(obj, st insitu.Object, org origin) bool {
	return obj.Version != "" && org.text != "" && st.Origin == org.text
}

// claim records that in's output is out, or returns an InvalidArgument
// error naming both inputs when an earlier input of the run took out. Two
// names are taken as one when their 128-bit hashes (two independently
// seeded maphashes) are equal: the odds of two different names doing so
// are 1 in 2^128 a pair, and the user's Rename is never called twice (on
// a node it records the output's claim).
func (r *runner) claim(in, out insitu.Name) error {
	if r.outputs == nil {
		return nil
	}
	h := [2]uint64{maphash.Comparable(r.seeds[0], out), maphash.Comparable(r.seeds[1], out)}
	r.outMu.Lock()
	first, taken := r.outputs[h]
	if !taken {
		r.outputs[h] = in
	}
	r.outMu.Unlock()
	if !taken || first == in {
		return nil
	}
	return &insitu.Error{Code: insitu.InvalidArgument, Name: in,
		Msg: fmt.Sprintf("its output %s is already the output of %s: two inputs cannot be renamed to one output name", out, first)}
}

// errSinkDone unblocks a transform still writing after the sink returned.
var errSinkDone = errors.New("pipeline: the sink stopped reading")

// errLeft is what an attempt returns on a goroutine that its watchdog left
// behind: the object is counted, and the slot goes on elsewhere.
var errLeft = errors.New("pipeline: left behind by the attempt's watchdog")

// The states of an attempt, for its watchdog: while running (the
// transform) it may be left behind; once putting, the watchdog only
// cancels, and the attempt waits for the sink, so that an object counted
// failed is never stored after the run returned.
const (
	attemptRunning int32 = iota
	attemptPutting
	attemptDone
	attemptLeft
)

// attempt makes one try at an object, on this goroutine: the transform
// writes into an [output] that holds the first [heldOutput] bytes; an
// output that fits is put in one piece, with its size, once the transform
// has returned, and one that failed is never put; a larger one streams to
// the sink, which reads it on a goroutine of its own. A watchdog on the
// object's deadline (and the run's end) closes the body and the output,
// and, when the transform is still running, counts the object failed and
// goes on with the slot's loop, leaving this goroutine behind (see [slot]).
// A batch's worker (a nil slot) cannot be handed on: its transform runs on
// a goroutine of its own, left behind instead.
func (r *runner) attempt(ctx context.Context, s *slot, obj insitu.Object, out insitu.Name, org origin) (err error) {
	actx, cancel := ctx, context.CancelFunc(func() {})
	if r.o.Timeout > 0 {
		actx, cancel = context.WithTimeout(ctx, r.o.Timeout)
	}
	defer cancel()

	body := &lazyBody{open: func() (io.ReadCloser, error) { return r.src.Open(actx, obj) }, n: &r.bytesIn}
	defer body.Close()
	defer func() {
		// A transform that read the local file at obj.Path, or a remote
		// one that fetched the object itself, never opened the body; its
		// input still counts.
		if err == nil && !body.opened() && obj.Size > 0 {
			r.bytesIn.Add(obj.Size)
		}
	}()

	w := r.newOutput(actx, s, out, org)
	var state atomic.Int32
	stop := context.AfterFunc(actx, func() { r.watchdog(ctx, actx, s, obj, &state, w, body) })
	end := func() bool {
		if state.CompareAndSwap(attemptRunning, attemptDone) || state.CompareAndSwap(attemptPutting, attemptDone) {
			stop()
			return true
		}
		return false // left behind
	}
	ended := false
	defer func() {
		if !ended {
			end() // a panic is unwinding this goroutine: the attempt is over
		}
	}()
	if r.directT != nil && r.directSink != nil {
		// The transform puts its output itself: it is waited for.
		if state.CompareAndSwap(attemptRunning, attemptPutting) {
			err = r.attemptDirect(actx, obj, out, org, body)
		} else {
			err = errLeft
		}
	} else {
		err = r.transformAndPut(actx, s, obj, body, w, &state)
	}
	ended = true
	if err == errLeft || !end() {
		return errLeft
	}
	w.release()
	return r.attemptError(ctx, actx, obj, err)
}

// watchdog is an attempt's reaction to the end of its context: it closes
// the output and the body and, when the transform is still running on a
// slot, counts the object failed and goes on with the slot's loop here.
func (r *runner) watchdog(ctx, actx context.Context, s *slot, obj insitu.Object, state *atomic.Int32, w *output, body *lazyBody) {
	err := actx.Err()
	w.abandon(err)
	go body.Close() // a Close may wait for a read in progress (a stuck file system)
	if s == nil || !state.CompareAndSwap(attemptRunning, attemptLeft) {
		return // putting (the attempt waits for the sink), over, or a batch's
	}
	r.panics.Try(func() { r.fail(obj.Name, r.attemptError(ctx, actx, obj, err)) })
	if r.panics.Recovered() != nil {
		s.cancel(errPanicked)
	}
	s.takeOver()
}

// transformAndPut runs the transform into w and puts its output, unless
// the watchdog left it behind first (errLeft).
func (r *runner) transformAndPut(actx context.Context, s *slot, obj insitu.Object, body *lazyBody, w *output, state *atomic.Int32) error {
	in := &insitu.Input{Object: obj, Args: r.o.Args, Body: body}
	var terr error
	if s != nil {
		terr = r.transform(actx, in, w)
	} else {
		done := make(chan error, 1)
		go func() { done <- r.transform(actx, in, w) }()
		select {
		case terr = <-done:
		case <-actx.Done():
			w.orphan() // the transform keeps writing into it, and fails
			return actx.Err()
		}
	}
	if !state.CompareAndSwap(attemptRunning, attemptPutting) {
		if w.spilled() {
			w.pw.CloseWithError(errLeft) // never io.EOF: the sink must not commit
		}
		return errLeft
	}
	if !w.spilled() {
		if terr != nil {
			return terr
		}
		return r.put(actx, w.name, w.org, bytes.NewReader(w.held), int64(len(w.held)))
	}
	w.pw.CloseWithError(terr) // nil closes with io.EOF: the sink may commit
	putErr := <-w.putDone
	if terr == nil || errors.Is(terr, errSinkDone) {
		return putErr
	}
	return terr
}

// heldOutput is how many bytes of an output the runner holds before it
// starts the put: an output of at most this size reaches the sink in one
// piece with its size known, with no pipe and no goroutine between the
// transform and the sink.
const heldOutput = 32 << 10

// output is the writer a transform writes an object's output into (see
// [runner.attempt]): it holds the first heldOutput bytes and, when the
// output outgrows them, starts the put on a goroutine of its own that reads
// the held bytes and then the rest through a pipe.
type output struct {
	r    *runner
	s    *slot // the attempt's worker, or nil
	ctx  context.Context
	name insitu.Name
	org  origin
	buf  *[]byte // from r.bufs, for held
	held []byte  // the first bytes of the output, up to heldOutput

	mu        sync.Mutex
	pr        *io.PipeReader
	pw        *io.PipeWriter // nil until the output spills
	putDone   chan error     // the put's error, once the output spilled
	abandoned error          // set when the watchdog closed the output

	orphaned bool // a transform left behind may still write into held
}

func (r *runner) newOutput(ctx context.Context, s *slot, name insitu.Name, org origin) *output {
	w := &output{r: r, s: s, ctx: ctx, name: name, org: org}
	if s != nil && s.buf != nil {
		// The slot's own buffer, which no other goroutine can hold: a
		// buffer from the pool would often be a new one, its pages
		// faulted in on the first read (the pool empties at each GC).
		w.buf, s.buf = s.buf, nil
	} else {
		w.buf = r.bufs.Get().(*[]byte)
	}
	w.held = (*w.buf)[:0]
	return w
}

// Write holds p, or sends it down the pipe once the output has spilled.
func (w *output) Write(p []byte) (int, error) {
	if w.pw == nil {
		if len(w.held)+len(p) <= cap(w.held) {
			if err := w.err(); err != nil {
				return 0, err
			}
			w.held = append(w.held, p...)
			w.r.bytesOut.Add(int64(len(p)))
			return len(p), nil
		}
		if err := w.spill(); err != nil {
			return 0, err
		}
	}
	n, err := w.pw.Write(p)
	w.r.bytesOut.Add(int64(n))
	return n, err
}

// ReadFrom reads src into the held buffer directly, then, if the output
// outgrows it, through the pipe with a buffer of the runner's; it spares
// io.Copy the buffer it would allocate for each object.
func (w *output) ReadFrom(src io.Reader) (int64, error) {
	var total int64
	for w.pw == nil {
		if len(w.held) == cap(w.held) {
			// Full: an output of exactly heldOutput bytes is still held
			// when the next read says it ended.
			var probe [512]byte
			n, err := src.Read(probe[:])
			if n == 0 && err == io.EOF {
				return total, nil
			}
			if serr := w.spill(); serr != nil {
				return total, serr
			}
			if n > 0 {
				m, werr := w.pw.Write(probe[:n])
				w.r.bytesOut.Add(int64(m))
				total += int64(m)
				if werr != nil {
					return total, werr
				}
			}
			if err == io.EOF {
				return total, nil
			}
			if err != nil {
				return total, err
			}
			break
		}
		n, err := src.Read(w.held[len(w.held):cap(w.held)])
		w.held = w.held[:len(w.held)+n]
		w.r.bytesOut.Add(int64(n))
		total += int64(n)
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
	buf := w.r.bufs.Get().(*[]byte)
	defer w.r.bufs.Put(buf)
	n, err := io.CopyBuffer(writerOnly{w}, src, *buf)
	return total + n, err
}

// writerOnly hides a writer's ReadFrom from io.CopyBuffer.
type writerOnly struct{ io.Writer }

// err is the error that the watchdog left, if any.
func (w *output) err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.abandoned
}

// spilled reports whether the output outgrew the held bytes.
func (w *output) spilled() bool { return w.pw != nil }

// spill starts the pipe and the put that reads it, the held bytes first;
// it fails once the watchdog closed the output.
func (w *output) spill() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.abandoned != nil {
		return w.abandoned
	}
	w.pr, w.pw = io.Pipe()
	w.putDone = make(chan error, 1)
	held, pr := w.held, w.pr
	go func() {
		err := insitu.Errorf(insitu.Internal, "pipeline: the sink panicked putting %s", w.name)
		// A panic is the run's: Run raises it again once its workers are done.
		w.r.panics.Try(func() {
			err = w.r.put(w.ctx, w.name, w.org, io.MultiReader(bytes.NewReader(held), pr), -1)
		})
		pr.CloseWithError(errSinkDone)
		w.putDone <- err
	}()
	return nil
}

// abandon fails what the transform writes from now on, and what the sink
// reads, with err.
func (w *output) abandon(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.abandoned = err
	if w.pr != nil {
		w.pr.CloseWithError(err)
	}
}

// release gives the held buffer back, once the transform has returned and
// the put is over.
func (w *output) release() {
	if w.orphaned || w.buf == nil {
		return
	}
	if w.s != nil {
		w.s.buf = w.buf // back to the slot, on the slot's goroutine
	} else {
		w.r.bufs.Put(w.buf)
	}
	w.buf, w.held = nil, nil
}

// orphan gives the held buffer up to a transform left behind.
func (w *output) orphan() { w.orphaned = true }

// put stores the output read from rd under out, with its origin where
// the sink records origins; a dry run only reads it.
func (r *runner) put(ctx context.Context, out insitu.Name, org origin, rd io.Reader, size int64) error {
	var err error
	switch {
	case r.o.DryRun:
		_, err = io.Copy(io.Discard, rd)
	case r.originSink != nil && org.text != "":
		_, err = r.originSink.PutOrigin(ctx, out, rd, size, org.Origin)
	default:
		_, err = r.dst.Put(ctx, out, rd, size)
	}
	return err
}

// attemptDirect has the transform deliver the output to the sink's
// destination itself.
func (r *runner) attemptDirect(actx context.Context, obj insitu.Object, out insitu.Name, org origin, body *lazyBody) error {
	var dst insitu.Destination
	var err error
	if ns, ok := r.directSink.(insitu.NearSink); ok {
		// Keep the output on the node that holds its input.
		dst, err = ns.DestinationNear(actx, out, obj)
	} else {
		dst, err = r.directSink.Destination(actx, out)
	}
	if err != nil {
		return err
	}
	if r.originSink != nil {
		dst.Origin = org.text
	}
	var res insitu.PutResult
	var pc panics.Catcher
	pc.Try(func() {
		res, err = r.directT.TransformTo(actx, &insitu.Input{Object: obj, Args: r.o.Args, Body: body}, dst)
	})
	if rec := pc.Recovered(); rec != nil {
		err = &insitu.Error{Code: insitu.Internal, Name: obj.Name, Msg: "transform panicked", Err: rec.AsError()}
	}
	if err == nil {
		r.bytesOut.Add(res.Size)
	}
	return err
}

// attemptError turns the error of an attempt into the one to record: the
// run's cause when the run is ending, a DeadlineExceeded naming the
// per-object timeout when that passed, else err itself.
func (r *runner) attemptError(ctx, actx context.Context, obj insitu.Object, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if actx.Err() != nil {
		return &insitu.Error{Code: insitu.DeadlineExceeded, Name: obj.Name,
			Msg: fmt.Sprintf("per-object timeout of %v passed", r.o.Timeout), Err: err}
	}
	return err
}

// transform calls the transform, turning a panic into an Internal error
// that carries the panic's value and stack.
func (r *runner) transform(ctx context.Context, in *insitu.Input, out io.Writer) (err error) {
	var pc panics.Catcher
	pc.Try(func() { err = r.t.Transform(ctx, in, out) })
	if rec := pc.Recovered(); rec != nil {
		return &insitu.Error{Code: insitu.Internal, Name: in.Name, Msg: "transform panicked", Err: rec.AsError()}
	}
	return err
}

// fail counts a failed object and records why. The first failure stops the
// run unless ContinueOnError is set.
func (r *runner) fail(name insitu.Name, err error) {
	f := Failure{Name: name, Code: insitu.CodeOf(err), Message: failureMessage(err)}
	r.failed.Add(1)
	r.o.Logger.LogAttrs(context.Background(), slog.LevelWarn, "object failed", slog.String("object", name.String()), slog.Any("error", err))
	r.record(f, insitu.WithName(err, name))
	if !r.o.ContinueOnError {
		r.cancel(errFirstFailure)
	}
}

// record keeps f in the report, if it has room, and err if it is the
// first, and hands f to OnFailure.
func (r *runner) record(f Failure, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.failList) < r.o.MaxFailures {
		r.failList = append(r.failList, f)
	} else {
		r.dropped++
	}
	if r.first == nil {
		r.first = err
	}
	if r.o.OnFailure != nil {
		r.o.OnFailure(f)
	}
}

func (r *runner) firstErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.first
}

func (r *runner) stats() Stats {
	return Stats{
		Listed:      r.listed.Load(),
		Total:       r.total.Load(),
		Transformed: r.transformed.Load(),
		Skipped:     r.skipped.Load(),
		Failed:      r.failed.Load(),
		BytesIn:     r.bytesIn.Load(),
		BytesOut:    r.bytesOut.Load(),
		Elapsed:     time.Since(r.start),
		ListingDone: r.listingDone.Load(),
	}
}

func (r *runner) report() Report {
	s := r.stats()
	r.mu.Lock()
	defer r.mu.Unlock()
	return Report{
		Listed: s.Listed, Transformed: s.Transformed, Skipped: s.Skipped, Failed: s.Failed,
		BytesIn: s.BytesIn, BytesOut: s.BytesOut, Elapsed: s.Elapsed,
		Failures: append([]Failure(nil), r.failList...), FailuresDropped: r.dropped,
	}
}

// objectName returns the name an error is about, if it says.
func objectName(err error) insitu.Name {
	var e *insitu.Error
	if errors.As(err, &e) {
		return e.Name
	}
	return insitu.Name{}
}

// failureMessage is err's text without the name and code that a Failure
// carries in fields of their own.
func failureMessage(err error) string {
	if e, ok := err.(*insitu.Error); ok {
		return e.Message()
	}
	return err.Error()
}

// backoff returns the wait before retry number attempt+1: base doubled per
// attempt, capped at 30×base, with full jitter in its upper half.
func backoff(base time.Duration, attempt int) time.Duration {
	d := base << min(attempt, 5)
	d = min(d, 30*base)
	return d/2 + rand.N(d/2+1)
}

// lazyBody opens the object on the first Read, so a transform that reads
// only Input.Path never opens it. Close may be called concurrently with
// Read, to interrupt a transform past its deadline.
type lazyBody struct {
	open func() (io.ReadCloser, error)
	n    *atomic.Int64

	mu     sync.Mutex
	rc     io.ReadCloser
	err    error
	closed bool
}

func (b *lazyBody) Read(p []byte) (int, error) {
	rc, err := b.source()
	if err != nil {
		return 0, err
	}
	n, err := rc.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// source opens the body on the first call and returns it; a panic in the
// source's Open leaves the body unlocked (and the panic to the caller).
func (b *lazyBody) source() (io.ReadCloser, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, errBodyClosed
	}
	if b.rc == nil && b.err == nil {
		b.rc, b.err = b.open()
	}
	return b.rc, b.err
}

// opened reports whether the body was ever opened.
func (b *lazyBody) opened() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.rc != nil || b.err != nil
}

func (b *lazyBody) Close() error {
	b.mu.Lock()
	rc := b.rc
	already := b.closed
	b.closed = true
	b.mu.Unlock()
	if rc != nil && !already {
		return rc.Close()
	}
	return nil
}

var errBodyClosed = errors.New("pipeline: object body read after the attempt ended")
