package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sourcegraph/conc/panics"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/batch"
)

// BatchOptions bound the batches a [Server] makes of the requests that
// arrive together, when its transform is an [insitu.BatchTransform] (see
// [Server]). A batch goes once it is full by Size or Bytes, or once Wait
// has passed since its first request came. A nil *BatchOptions means all
// defaults.
type BatchOptions struct {
	// Size is the most objects in a batch; 1 turns batching off (every
	// object is transformed alone, with Transform). Default
	// [DefaultBatchSize].
	Size int
	// Bytes bounds the sum of the sizes of a batch's inputs (a local
	// file's size, a source's announced size; unknown sizes count as 0):
	// a request that would take a batch past it goes in the next one, and
	// a batch holds at least one object. Default [DefaultBatchBytes].
	Bytes int64
	// Wait is the longest a request waits for others to share its batch
	// (so it is the delay a lone request gets). Default
	// [DefaultBatchWait].
	Wait time.Duration
}

// Defaults of [BatchOptions].
const (
	DefaultBatchSize  = 16
	DefaultBatchBytes = 256 << 20
	DefaultBatchWait  = 5 * time.Millisecond
)

// limits returns b's bounds with every default filled in.
func (b *BatchOptions) limits() batch.Limits {
	var l batch.Limits
	if b != nil {
		l = batch.Limits{Count: b.Size, Bytes: b.Bytes, Wait: b.Wait}
	}
	return l.Or(batch.Limits{Count: DefaultBatchSize, Bytes: DefaultBatchBytes, Wait: DefaultBatchWait})
}

func (b *BatchOptions) validate() error {
	if b == nil {
		return nil
	}
	switch {
	case b.Size < 0:
		return insitu.Errorf(insitu.InvalidArgument, "transport.NewServer: Batch.Size %d is negative", b.Size)
	case b.Bytes < 0:
		return insitu.Errorf(insitu.InvalidArgument, "transport.NewServer: Batch.Bytes %d is negative", b.Bytes)
	case b.Wait < 0:
		return insitu.Errorf(insitu.InvalidArgument, "transport.NewServer: Batch.Wait %v is negative", b.Wait)
	}
	return nil
}

// batcher groups the requests of a Server whose transform takes batches.
//
// A request joins the running gatherer (starting one when none runs),
// which groups what arrives with batch.Group and flushes each batch. A
// gatherer stops once every request it was given has been flushed and
// none is on its way, so no goroutine outlives a burst of requests: the
// next request starts another. A flush of two or more requests waits for
// one transform slot (the requests hold none while they wait: the batch
// takes one for all), then makes the batch call on a goroutine of its own,
// and hands each request its output; a request whose batch cannot be made
// or failed is told to transform alone, as a lone request is.
type batcher struct {
	s   *Server
	bt  insitu.BatchTransform
	lim batch.Limits

	mu  sync.Mutex
	cur *gatherer // the running gatherer; nil when none runs

	wg sync.WaitGroup // gatherers and batch calls

	// onJoin and onLeave, when set (by tests), are called as a request
	// has joined a gatherer, and as it leaves its batch because its
	// context ended.
	onJoin, onLeave func(insitu.Name)
}

// gatherer is one run of batch.Group.
type gatherer struct {
	in      chan *batchItem
	stop    context.CancelFunc
	pending int // requests joined and not yet flushed (b.mu)
}

// batchItem is one request waiting for its batch.
type batchItem struct {
	ctx  context.Context // the object's context
	req  *prepared
	in   insitu.Input // Object and Args; Path for a local file
	file *sharedFile  // the open local file, or nil for a source
	size int64        // for Limits.Bytes

	mu   sync.Mutex
	left bool             // the request gave up waiting
	res  chan batchResult // buffered, for one result
}

// batchResult is what a batch gives a request: its output, or an error,
// or neither: transform alone.
type batchResult struct {
	out io.ReadCloser
	err error
}

func (r batchResult) close() {
	if r.out != nil {
		r.out.Close()
	}
}

// sharedFile is a request's open local file, closed when its last holder
// lets go: the request, and from the moment the request joins a gatherer
// until its batch is done with it, the batcher (a request that leaves its
// batch must not close a file the batch call may still read).
type sharedFile struct {
	*localFile
	refs atomic.Int32
}

func newSharedFile(f *localFile) *sharedFile {
	s := &sharedFile{localFile: f}
	s.refs.Store(1)
	return s
}

func (s *sharedFile) hold() { s.refs.Add(1) }

func (s *sharedFile) release() {
	if s.refs.Add(-1) == 0 {
		s.localFile.Close()
	}
}

// rewind puts the file back at its start, for another reading.
func (s *sharedFile) rewind() error {
	_, err := s.f.Seek(0, io.SeekStart)
	return err
}

func newBatcher(s *Server, bt insitu.BatchTransform, lim batch.Limits) *batcher {
	return &batcher{s: s, bt: bt, lim: lim}
}

// serve runs one request through a batch: it waits, holding no slot, for
// its batch, then copies its output to out (or to its direct-put
// destination). alone is true when the request must be transformed alone
// instead: it was the only one of its batch, or the batch failed. in
// holds the request's input (with its open file as Body when it is local,
// which serve leaves where the batch left it).
func (b *batcher) serve(ctx context.Context, req *prepared, in *insitu.Input, file *sharedFile, out io.Writer) (res insitu.PutResult, alone bool, err error) {
	it := &batchItem{ctx: ctx, req: req, in: *in, file: file, size: in.Size, res: make(chan batchResult, 1)}
	it.in.Body = nil
	if !b.join(ctx, it) {
		return insitu.PutResult{}, false, ctx.Err()
	}
	if b.onJoin != nil {
		b.onJoin(req.name())
	}
	var r batchResult
	select {
	case r = <-it.res:
	case <-ctx.Done():
		it.leave()
		if b.onLeave != nil {
			b.onLeave(req.name())
		}
		return insitu.PutResult{}, false, ctx.Err()
	}
	if r.err != nil {
		return insitu.PutResult{}, false, r.err
	}
	if r.out == nil {
		return insitu.PutResult{}, true, nil
	}
	defer r.out.Close()
	body := &ctxReader{ctx: ctx, r: r.out}
	buf := make([]byte, 64<<10)
	if req.put != nil {
		put := b.s.newPutWriter(ctx, req.put, req.PutToken, req.PutOrigin)
		_, err := io.CopyBuffer(put, body, buf)
		res, err = put.finish(err)
		return res, false, err
	}
	_, err = io.CopyBuffer(out, body, buf)
	return insitu.PutResult{}, false, err
}

// join hands it to the running gatherer, starting one if none runs. It
// returns false if ctx ended first. The batcher holds the request's file
// from here until its batch is done with it (see done).
func (b *batcher) join(ctx context.Context, it *batchItem) bool {
	if it.file != nil {
		it.file.hold()
	}
	b.mu.Lock()
	g := b.cur
	if g == nil {
		gctx, stop := context.WithCancel(context.Background())
		g = &gatherer{in: make(chan *batchItem), stop: stop}
		b.cur = g
		b.wg.Add(1)
		go b.gather(gctx, g)
	}
	g.pending++
	b.mu.Unlock()
	select {
	case g.in <- it:
		return true
	case <-ctx.Done():
		b.gone(g, 1)
		it.done()
		return false
	}
}

// done lets go of the request's file: its batch will not read it again.
func (it *batchItem) done() {
	if it.file != nil {
		it.file.release()
	}
}

// gone counts n requests of g as flushed or gone; g stops when it has no
// request left.
func (b *batcher) gone(g *gatherer, n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	g.pending -= n
	if g.pending == 0 {
		// Nothing is gathered and nothing is on its way: Group sees the
		// end as it waits for a first request, and returns.
		g.stop()
		if b.cur == g {
			b.cur = nil
		}
	}
}

func (b *batcher) gather(ctx context.Context, g *gatherer) {
	defer b.wg.Done()
	size := func(it *batchItem) int64 { return it.size }
	batch.Group(ctx, g.in, size, b.lim, func(items []*batchItem) {
		b.gone(g, len(items))
		b.flush(items)
	})
}

// flush starts the batch call of items. It blocks until the batch has a
// transform slot, so that the requests that arrive meanwhile make the
// next batch (bigger, when slots are scarce).
func (b *batcher) flush(items []*batchItem) {
	live := items[:0]
	for _, it := range items {
		if it.ctx.Err() == nil {
			live = append(live, it)
		} else {
			it.done() // it has left, or is leaving
		}
	}
	switch len(live) {
	case 0:
		return
	case 1:
		live[0].done()
		live[0].deliver(batchResult{}) // alone, as if there were no batching
		return
	}
	ctx, cancel := b.batchContext(live)
	select {
	case b.s.sem <- struct{}{}:
	case <-ctx.Done(): // every request gave up
		cancel()
		for _, it := range live {
			it.done()
		}
		return
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer cancel()
		outs, err := b.call(ctx, live)
		<-b.s.sem
		for _, it := range live {
			it.done()
		}
		if err != nil && b.s.ctx.Err() != nil {
			// A forced shutdown: no object is transformed again.
			for _, it := range live {
				it.deliver(batchResult{err: errShuttingDown})
			}
			return
		}
		if err != nil {
			level := slog.LevelDebug
			if insitu.CodeOf(err) == insitu.Internal {
				level = slog.LevelError
			}
			b.s.log.Log(context.Background(), level, "transport: batch failed; transforming its objects one by one",
				"objects", len(live), "first", live[0].req.name().String(), "err", err)
		}
		for i, it := range live {
			var r batchResult
			if err == nil {
				r.out = outs[i] // nil (against the contract): alone
			}
			it.deliver(r)
		}
	}()
}

// batchContext returns the context of a batch call: the server's, ended
// once every request of the batch has ended (each by its own deadline,
// cancel or the server's forced shutdown), with the last one's cause.
func (b *batcher) batchContext(items []*batchItem) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(b.s.ctx)
	var live atomic.Int32
	live.Store(int32(len(items)))
	stops := make([]func() bool, len(items))
	for i, it := range items {
		stops[i] = context.AfterFunc(it.ctx, func() {
			if live.Add(-1) == 0 {
				cancel(context.Cause(it.ctx))
			}
		})
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel(nil)
	}
}

// call makes the batch call: local files are read from where they are
// (from the start), sources are fetched as the transform first reads them;
// a panic, or outputs that do not match the inputs, is an Internal error.
// On error, no output is left open.
func (b *batcher) call(ctx context.Context, items []*batchItem) (outs []io.ReadCloser, err error) {
	ins := make([]*insitu.Input, len(items))
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	for i, it := range items {
		in := it.in
		var body io.Reader
		if it.file != nil {
			if err := it.file.rewind(); err != nil {
				return nil, insitu.WithName(err, it.req.name())
			}
			body = it.file
		} else {
			src := &lazySource{ctx: ctx, b: b, it: it}
			closers = append(closers, src)
			body = src
		}
		if max := b.s.opts.MaxObjectSize; max > 0 {
			body = &limitReader{r: body, left: max, max: max}
		}
		in.Body = body
		ins[i] = &in
	}
	closeAll := func() {
		for _, o := range outs {
			if o != nil {
				o.Close()
			}
		}
	}
	if r := panics.Try(func() { outs, err = b.bt.TransformBatch(ctx, ins) }); r != nil {
		b.s.log.Error("transport: batch transform panicked", "objects", len(items), "panic", r.Value, "stack", string(r.Stack))
		closeAll()
		return nil, insitu.Errorf(insitu.Internal, "the batch transform panicked: %v", r.Value)
	}
	switch {
	case err != nil:
		closeAll() // none, by the contract
		if errors.Is(err, insitu.ErrSkip) {
			err = fmt.Errorf("ErrSkip is no answer for a batch: %w", err)
		}
		return nil, err
	case len(outs) != len(ins):
		closeAll()
		return nil, insitu.Errorf(insitu.Internal, "%T.TransformBatch returned %d outputs for %d inputs", b.bt, len(outs), len(ins))
	}
	return outs, nil
}

// deliver hands the request its result, or closes the output of a
// request that left.
func (it *batchItem) deliver(r batchResult) {
	it.mu.Lock()
	defer it.mu.Unlock()
	if it.left {
		r.close()
		return
	}
	it.res <- r
}

// leave marks the request gone, closing an output delivered meanwhile.
func (it *batchItem) leave() {
	it.mu.Lock()
	defer it.mu.Unlock()
	it.left = true
	select {
	case r := <-it.res:
		r.close()
	default:
	}
}

// lazySource is the input of a request with a source URL in a batch
// call: fetched on its first Read, with the checks serveObject makes,
// within the batch's context (so that a request that leaves the batch
// does not fail it).
type lazySource struct {
	ctx context.Context
	b   *batcher
	it  *batchItem
	rc  io.ReadCloser
	err error
}

func (l *lazySource) Read(p []byte) (int, error) {
	if l.rc == nil && l.err == nil {
		rc, size, err := l.b.s.fetch(l.ctx, l.it.req.request)
		switch {
		case err != nil:
			l.err = insitu.WithName(err, l.it.req.name())
		case l.b.s.opts.MaxObjectSize > 0 && size > l.b.s.opts.MaxObjectSize:
			rc.Close()
			l.err = insitu.WithName(insitu.Errorf(insitu.TooLarge, "the input is %d bytes, over the server's limit of %d", size, l.b.s.opts.MaxObjectSize), l.it.req.name())
		default:
			l.rc = rc
		}
	}
	if l.err != nil {
		return 0, l.err
	}
	return l.rc.Read(p)
}

func (l *lazySource) Close() error {
	if l.rc != nil {
		return l.rc.Close()
	}
	return nil
}

// ctxReader fails a Read once ctx has ended.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if c.ctx.Err() != nil {
		return 0, context.Cause(c.ctx)
	}
	return c.r.Read(p)
}
