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
		// The workers take objects from a queue a few deep, so that the
		// listing runs ahead of them instead of handing over each object
		// in person. A panic outside the transform (in Rename, say) ends
		// the run, and is raised again here once every worker is done.
		queue := make(chan insitu.Object, queueDepth*o.Workers)
		for range o.Workers {
			workers.Go(func() {
				for obj := range queue {
					r.panics.Try(func() { r.process(ctx, obj) })
					if r.panics.Recovered() != nil {
						cancel(errPanicked)
					}
				}
			})
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
			queue <- obj
		}
		close(queue)
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

// queueDepth is how many listed objects wait for each worker.
const queueDepth = 4

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
func (r *runner) process(ctx context.Context, obj insitu.Object) {
	if w, ok := r.prepare(ctx, obj); ok {
		r.work(ctx, w)
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
func (r *runner) work(ctx context.Context, w item) {
	obj, out, org := w.obj, w.out, w.org
	for attempt := 0; ; attempt++ {
		err := r.attempt(ctx, obj, out, org)
		switch {
		case err == nil:
			r.transformed.Add(1)
			return
		case errors.Is(err, insitu.ErrSkip):
			r.skipped.Add(1)
			return
		case attempt < r.o.Retries && insitu.CodeOf(err) == insitu.Unavailable && ctx.Err() == nil:
			wait := backoff(r.o.Backoff, attempt)
			r.o.Logger.LogAttrs(ctx, slog.LevelDebug, "retrying", slog.String("object", obj.Name.String()),
				slog.Any("error", err), slog.Duration("after", wait))
			if ticker.Sleep(ctx, wait) != nil {
				r.fail(obj.Name, err)
				return
			}
		default:
			r.fail(obj.Name, err)
			return
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

// attempt makes one try at an object. The transform runs on a goroutine of
// its own, writing into an [output] that holds the first [heldOutput]
// bytes: an output that fits is put in one piece, with its size, once the
// transform has returned, and one that failed is never put; a larger one
// streams to the sink through a pipe, which this goroutine reads. The
// object's deadline closes the body and the pipe, so a transform or sink
// that ignores its context cannot hang the run.
func (r *runner) attempt(ctx context.Context, obj insitu.Object, out insitu.Name, org origin) (err error) {
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
	if r.directT != nil && r.directSink != nil {
		return r.attemptDirect(ctx, actx, obj, out, org, body)
	}

	w := r.newOutput()
	go func() {
		err := r.transform(actx, &insitu.Input{Object: obj, Args: r.o.Args, Body: body}, w)
		w.finish(err)
	}()

	var terr, putErr error
	select {
	case <-actx.Done():
		// The transform ignores its context; leave it behind, with its
		// body closed (deferred), its output refusing what it writes from
		// now on, and its buffer to the garbage collector.
		w.abandon(actx.Err())
		return r.attemptError(ctx, actx, obj, actx.Err())
	case ev := <-w.events:
		if !ev.spilled {
			// The whole output is held: put it, unless the transform failed.
			terr = ev.err
			if terr == nil {
				putErr = r.put(actx, out, org, bytes.NewReader(w.held), int64(len(w.held)))
			}
			w.release()
			break
		}
		// The output outgrew the buffer: stream it, the held bytes first.
		stop := context.AfterFunc(actx, func() {
			w.pr.CloseWithError(actx.Err())
			body.Close()
		})
		putErr = r.put(actx, out, org, io.MultiReader(bytes.NewReader(w.held), w.pr), -1)
		w.pr.CloseWithError(errSinkDone)
		stop()
		select {
		case ev = <-w.events:
			terr = ev.err
			w.release()
		case <-actx.Done():
			terr = actx.Err()
			w.abandon(terr)
		}
	}
	err = terr
	if err == nil || errors.Is(err, errSinkDone) {
		err = putErr
	}
	return r.attemptError(ctx, actx, obj, err)
}

// heldOutput is how many bytes of an output the runner holds before it
// starts the put: an output of at most this size reaches the sink in one
// piece with its size known, with no pipe and no goroutine between the
// transform and the sink.
const heldOutput = 32 << 10

// output is the writer a transform writes an object's output into (see
// [runner.attempt]). Its events carry, in order, at most one spill (the
// output outgrew held; from then on it goes through the pipe) and one end
// (the transform returned, with its error).
type output struct {
	r      *runner
	buf    *[]byte        // from r.bufs, for held
	held   []byte         // the first bytes of the output, up to heldOutput
	pw     *io.PipeWriter // nil until the output spills
	events chan outputEvent

	mu        sync.Mutex
	pr        *io.PipeReader // nil until the output spills
	abandoned error          // set when the attempt left the transform behind
}

type outputEvent struct {
	spilled bool
	err     error
}

func (r *runner) newOutput() *output {
	buf := r.bufs.Get().(*[]byte)
	return &output{r: r, buf: buf, held: (*buf)[:0], events: make(chan outputEvent, 2)}
}

// Write holds p, or sends it down the pipe once the output has spilled.
func (w *output) Write(p []byte) (int, error) {
	if w.pw == nil {
		if len(w.held)+len(p) <= cap(w.held) {
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
			if err := w.spill(); err != nil {
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

// spill starts the pipe and tells the attempt to stream the output; it
// fails once the attempt has left the transform behind, whose output
// nobody would read.
func (w *output) spill() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.abandoned != nil {
		return w.abandoned
	}
	w.pr, w.pw = io.Pipe()
	w.events <- outputEvent{spilled: true}
	return nil
}

// abandon fails what the transform writes from now on with err.
func (w *output) abandon(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.abandoned = err
	if w.pr != nil {
		w.pr.CloseWithError(err)
	}
}

// finish ends the output with the transform's error: it closes the pipe
// (nil closes it with io.EOF, so that the sink may commit) and tells the
// attempt.
func (w *output) finish(err error) {
	if w.pw != nil {
		w.pw.CloseWithError(err)
	}
	w.events <- outputEvent{err: err}
}

// release gives the held buffer back, once the transform has returned and
// the put is over.
func (w *output) release() {
	w.r.bufs.Put(w.buf)
	w.buf, w.held = nil, nil
}

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
func (r *runner) attemptDirect(ctx, actx context.Context, obj insitu.Object, out insitu.Name, org origin, body *lazyBody) error {
	var dst insitu.Destination
	var err error
	if ns, ok := r.directSink.(insitu.NearSink); ok {
		// Keep the output on the node that holds its input.
		dst, err = ns.DestinationNear(actx, out, obj)
	} else {
		dst, err = r.directSink.Destination(actx, out)
	}
	if err != nil {
		return r.attemptError(ctx, actx, obj, err)
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
	return r.attemptError(ctx, actx, obj, err)
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
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return 0, errBodyClosed
	}
	if b.rc == nil && b.err == nil {
		b.rc, b.err = b.open()
	}
	rc, err := b.rc, b.err
	b.mu.Unlock()
	if err != nil {
		return 0, err
	}
	n, err := rc.Read(p)
	b.n.Add(int64(n))
	return n, err
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
