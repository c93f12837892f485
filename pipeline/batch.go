package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/batch"
	"github.com/sourcegraph/conc/panics"
	"github.com/sourcegraph/conc/pool"
)

// runBatches lists the source on a goroutine of its own and hands the
// objects to bt in batches bounded by Options.Batch, each batch on a
// worker of workers.
func (r *runner) runBatches(ctx context.Context, bt insitu.BatchTransform, workers *pool.Pool) {
	objs := make(chan insitu.Object)
	listed := make(chan struct{})
	go func() {
		defer close(listed)
		defer close(objs)
		for obj, err := range r.src.Objects(ctx) {
			if ctx.Err() != nil {
				return
			}
			r.listed.Add(1)
			if err != nil {
				r.fail(objectName(err), err)
				continue
			}
			select {
			case objs <- obj:
			case <-ctx.Done():
				r.fail(obj.Name, context.Cause(ctx))
				return
			}
		}
	}()
	size := func(o insitu.Object) int64 { return o.Size }
	lim := r.o.Batch.limits()
	err := batch.Group(ctx, objs, size, lim, func(objs []insitu.Object) {
		workers.Go(func() { r.processBatch(ctx, bt, objs) })
	})
	if err != nil {
		// The run is ending: an object the lister still hands over fails
		// here (one it could not hand over, it fails itself), so that
		// every listed object is counted once.
		for obj := range objs {
			r.fail(obj.Name, context.Cause(ctx))
		}
	}
	<-listed
	r.listingDone.Store(true)
}

// processBatch carries a batch of listed objects through rename and skip
// checks, transforms the rest in one TransformBatch call and stores each
// output on its own. When the batch call fails, each object is
// transformed alone, so that exactly the bad ones fail; an output whose
// put fails with [insitu.Unavailable] is made again alone (its bytes were
// read once), with the run's retries.
func (r *runner) processBatch(ctx context.Context, bt insitu.BatchTransform, objs []insitu.Object) {
	items := make([]item, 0, len(objs))
	for _, obj := range objs {
		if w, ok := r.prepare(ctx, obj); ok {
			items = append(items, w)
		}
	}
	switch len(items) {
	case 0:
		return
	case 1:
		r.work(ctx, nil, items[0])
		return
	}
	outs, err := r.transformBatch(ctx, bt, items)
	if err != nil {
		if ctx.Err() != nil {
			for _, w := range items {
				r.fail(w.obj.Name, context.Cause(ctx))
			}
			return
		}
		r.o.Logger.LogAttrs(ctx, slog.LevelDebug, "batch failed; transforming its objects one by one",
			slog.Int("objects", len(items)), slog.String("first", items[0].obj.Name.String()), slog.Any("error", err))
		for _, w := range items {
			r.work(ctx, nil, w)
		}
		return
	}
	for i, w := range items {
		if outs[i] == nil {
			// The transform broke its contract for this object: it goes
			// alone, as after a failed batch.
			r.work(ctx, nil, w)
			continue
		}
		err := r.putOutput(ctx, w, outs[i])
		outs[i].Close()
		switch {
		case err == nil:
			r.transformed.Add(1)
		case insitu.CodeOf(err) == insitu.Unavailable && r.o.Retries > 0 && ctx.Err() == nil:
			r.work(ctx, nil, w)
		default:
			r.fail(w.obj.Name, err)
		}
	}
}

// transformBatch makes the batch call, bounded by Options.Timeout per
// object, with the inputs' bodies opened lazily and closed when it
// returns; a panic is an Internal error.
func (r *runner) transformBatch(ctx context.Context, bt insitu.BatchTransform, items []item) (outs []io.ReadCloser, err error) {
	bctx, cancel := ctx, context.CancelFunc(func() {})
	if r.o.Timeout > 0 {
		bctx, cancel = context.WithTimeout(ctx, r.o.Timeout*time.Duration(len(items)))
	}
	defer cancel()
	ins := make([]*insitu.Input, len(items))
	bodies := make([]*lazyBody, len(items))
	for i, w := range items {
		obj := w.obj
		bodies[i] = &lazyBody{open: func() (io.ReadCloser, error) { return r.src.Open(bctx, obj) }, n: &r.bytesIn}
		ins[i] = &insitu.Input{Object: obj, Args: r.o.Args, Body: bodies[i]}
	}
	defer func() {
		for i, b := range bodies {
			if err == nil && !b.opened() && items[i].obj.Size > 0 {
				r.bytesIn.Add(items[i].obj.Size) // read by path: it still counts
			}
			b.Close()
		}
	}()
	var pc panics.Catcher
	pc.Try(func() { outs, err = bt.TransformBatch(bctx, ins) })
	if rec := pc.Recovered(); rec != nil {
		for _, o := range outs {
			if o != nil {
				o.Close()
			}
		}
		return nil, &insitu.Error{Code: insitu.Internal, Msg: "batch transform panicked", Err: rec.AsError()}
	}
	if err == nil && len(outs) != len(ins) {
		for _, o := range outs {
			if o != nil {
				o.Close()
			}
		}
		return nil, insitu.Errorf(insitu.Internal, "pipeline: %T.TransformBatch returned %d outputs for %d inputs", bt, len(outs), len(ins))
	}
	if err != nil {
		for _, o := range outs { // none, by the contract
			if o != nil {
				o.Close()
			}
		}
		if errors.Is(err, insitu.ErrSkip) {
			err = fmt.Errorf("pipeline: ErrSkip is no answer for a batch: %w", err)
		}
		return nil, err
	}
	return outs, nil
}

// putOutput stores a batch's output of w, bounded by Options.Timeout.
func (r *runner) putOutput(ctx context.Context, w item, out io.ReadCloser) error {
	actx, cancel := ctx, context.CancelFunc(func() {})
	if r.o.Timeout > 0 {
		actx, cancel = context.WithTimeout(ctx, r.o.Timeout)
	}
	defer cancel()
	err := r.put(actx, w.out, w.org, &countingReader{r: out, n: &r.bytesOut}, -1)
	return r.attemptError(ctx, actx, w.obj, err)
}

type countingReader struct {
	r io.Reader
	n interface{ Add(int64) int64 }
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}
