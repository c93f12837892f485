package loader

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/locality"
)

// ShuffleMode is how a [Loader] orders an epoch's samples.
type ShuffleMode int

const (
	// ShuffleGlobal draws a permutation of the whole listing per epoch,
	// holding the listing's names in memory. The default.
	ShuffleGlobal ShuffleMode = iota
	// ShuffleBuffer streams the listing through a shuffle buffer of
	// Options.BufferSize names, holding no more than that.
	ShuffleBuffer
	// ShuffleNone keeps the listing's order, holding nothing.
	ShuffleNone
)

var modeNames = [...]string{"global", "buffer", "none"}

// String returns "global", "buffer" or "none".
func (m ShuffleMode) String() string {
	if m >= 0 && int(m) < len(modeNames) {
		return modeNames[m]
	}
	return fmt.Sprintf("ShuffleMode(%d)", int(m))
}

// MarshalText returns m's String.
func (m ShuffleMode) MarshalText() ([]byte, error) {
	if m < 0 || int(m) >= len(modeNames) {
		return nil, insitu.Errorf(insitu.InvalidArgument, "loader: unknown shuffle mode %d", int(m))
	}
	return []byte(m.String()), nil
}

// UnmarshalText parses what MarshalText returns.
func (m *ShuffleMode) UnmarshalText(b []byte) error {
	for i, s := range modeNames {
		if string(b) == s {
			*m = ShuffleMode(i)
			return nil
		}
	}
	return insitu.Errorf(insitu.InvalidArgument, "loader: unknown shuffle mode %q", b)
}

// Defaults of [Options].
const (
	// DefaultBufferSize is Options.BufferSize's default.
	DefaultBufferSize = 10_000
	// DefaultMaxSampleSize is Options.MaxSampleSize's default: 256 MiB.
	DefaultMaxSampleSize = 256 << 20
	// DefaultReadBatch is Options.ReadBatch's default.
	DefaultReadBatch = 64
	// DefaultSampleBuffer is Options.SampleBuffer's default.
	DefaultSampleBuffer = 1000
)

// Options configure [New]. A nil *Options means every default; so does the
// zero value of each field.
type Options struct {
	// Seed seeds the order of every epoch. Default 0.
	Seed uint64
	// Shuffle is the order's mode. Default: ShuffleGlobal.
	Shuffle ShuffleMode
	// BufferSize is the number of names in the shuffle buffer of
	// ShuffleBuffer. Default (0): DefaultBufferSize.
	BufferSize int
	// Transform, when set, runs in this process on each sample's bytes
	// as read from the source, and the sample's Data is its output; it
	// returns insitu.ErrSkip to drop the sample (counted in
	// Stats.Skipped). To run a transform next to the data instead, give
	// it to the source (source.ClusterOptions.Transform). Default: nil,
	// the bytes the source reads.
	Transform insitu.Transform
	// TransformArgs is the Input.Args of Transform. Default "".
	TransformArgs string
	// Rank is this process's place among WorldSize, from 0. Default 0.
	Rank int
	// WorldSize is the number of processes that split each epoch.
	// Default (0): 1, no split (and then Rank must be 0).
	WorldSize int
	// Worker is this loader's place among the Workers of its process,
	// from 0. Default 0.
	Worker int
	// Workers is the number of loaders of a process that split its
	// rank's share. Default (0): 1 (and then Worker must be 0).
	Workers int
	// Prefetch is how many samples are read ahead of the consumer, at
	// most; memory holds about Prefetch samples (and with Shards, the
	// SampleBuffer samples of the shuffle buffer too). Default (0):
	// 2×Concurrency×ReadBatch; with Shards, 2×Concurrency×
	// DefaultReadBatch, as each shard's reader hands its samples over
	// in chunks of Prefetch/Concurrency/2.
	Prefetch int
	// Concurrency is how many samples (or batch reads, or shards) are
	// read at once, at most Prefetch. Default (0): 2×GOMAXPROCS, at
	// least 4 (at most Prefetch/ReadBatch when Prefetch is set).
	Concurrency int
	// ReadBatch is, with a source that is a [BatchReader] (such as
	// [Cluster]'s), how many consecutive samples of the order one batch
	// read fetches; 1 reads each sample alone with Open. It is not used
	// with other sources, nor with Shards. Default (0):
	// DefaultReadBatch; at most Prefetch.
	ReadBatch int
	// MaxSampleSize bounds the bytes of one sample (after Transform); a
	// larger one is a TooLarge error for that sample. Default (0):
	// DefaultMaxSampleSize.
	MaxSampleSize int64
	// DropLast drops the last batch of an epoch when it is short, in
	// [Loader.Batches]. Default false: the short batch is yielded.
	DropLast bool
	// Shards makes each object of the source a tar shard in the
	// webdataset convention rather than one sample: the members that
	// share a key (their path up to the first "." of their base name)
	// are one sample, whose Fields hold each member's bytes under its
	// extension (what follows that "."). The shuffle mode and the split
	// apply to the shards, and each sample goes through a shuffle buffer
	// of SampleBuffer samples (but in ShuffleNone). Shards are read as
	// streams, Concurrency at once, never whole; Transform, when set,
	// runs on each shard's bytes (a decompressor, say). Default false.
	Shards bool
	// SampleBuffer is the number of samples in the shuffle buffer of
	// Shards. Default (0): DefaultSampleBuffer.
	SampleBuffer int
	// Fields, with Shards, are the fields every sample must have: a
	// sample that lacks one is an InvalidArgument error (or with
	// SkipIncomplete, skipped), and members with other extensions are
	// dropped. Default: nil, every member is kept.
	Fields []string
	// SkipIncomplete, with Fields, drops a sample that lacks one of
	// them, counted in Stats.Skipped (and in a State's position, as a
	// delivered sample is), instead of yielding it as an InvalidArgument
	// error. Default false: the error.
	SkipIncomplete bool
	// Listing, in ShuffleGlobal, is the source's listing, from another
	// loader of it ([Loader.Listing]) or saved ([Listing.WriteTo],
	// [ReadListing]): the loader draws its orders over it and never lists
	// the source, so that its first sample comes without waiting for a
	// listing. It must be the source's (the loader cannot tell; with
	// Resume, its ID must be the state's Listing). Default: nil, the
	// first iteration lists the source.
	Listing *Listing
	// Resume, when set, is a state from [Loader.State] to resume from:
	// its epoch starts after the samples it says were delivered. It must
	// have been taken with the same Seed, Shuffle, BufferSize and split
	// over the same listing. Default: nil, every epoch from its start.
	Resume *State
}

// Sample is one sample of an epoch.
type Sample struct {
	// Name is the sample's object.
	Name insitu.Name
	// Index is the sample's position in this loader's share of the
	// epoch, from 0.
	Index int64
	// Data is the sample's bytes (the transform's output when there is
	// one); it belongs to the caller. A zero-length object gives an
	// empty, non-nil Data.
	Data []byte
	// Key is, with Options.Shards, the sample's key in its shard, Name;
	// "" otherwise.
	Key string
	// Fields are, with Options.Shards, the sample's members' bytes by
	// extension ("jpg", "cls", "seg.png"); nil otherwise.
	Fields map[string][]byte
}

// Stats count what a [Loader] delivered, over all its iterations.
type Stats struct {
	// Samples is the number of samples delivered whole.
	Samples int64 `json:"samples"`
	// Bytes is the sum of their lengths.
	Bytes int64 `json:"bytes"`
	// Skipped is the number of samples the transform dropped (with
	// insitu.ErrSkip), and with Options.SkipIncomplete, of the samples of
	// shards that lacked a field.
	Skipped int64 `json:"skipped"`
	// Errors is the number of samples that could not be read or
	// transformed, each yielded as an error.
	Errors int64 `json:"errors"`
}

// Loader iterates over the samples of a source, epoch by epoch. Make one
// with [New]. A Loader is safe for concurrent use, but [Loader.State]
// describes the iteration started last.
type Loader struct {
	src   insitu.Source
	batch BatchReader // src, when it is one and ReadBatch > 1
	opts  Options
	// split is this loader's share: position s of every S.
	split, splits int

	listMu sync.Mutex
	list   *nameTable // the listing, in ShuffleGlobal; nil until loaded

	mu  sync.Mutex
	pos position // of the iteration started last, or of Resume

	resume position // of Options.Resume

	samples, bytes, skipped, errs atomic.Int64
}

// New returns a loader of src's samples. It checks the options but does
// not look at src: the first iteration lists it.
//
// A nil src, a negative field, an unknown Shuffle, a Rank or Worker out of
// its range (a WorldSize of 0 takes only Rank 0), Concurrency over
// Prefetch, and a Resume state that does not fit the options (another
// seed, mode, buffer size or split, an unknown version) are
// InvalidArgument errors.
func New(src insitu.Source, opts *Options) (*Loader, error) {
	l := &Loader{src: src}
	if opts != nil {
		l.opts = *opts
	}
	o := &l.opts
	bad := func(format string, args ...any) (*Loader, error) {
		return nil, insitu.Errorf(insitu.InvalidArgument, "loader: "+format, args...)
	}
	switch {
	case src == nil:
		return bad("nil source")
	case o.Shuffle < 0 || int(o.Shuffle) >= len(modeNames):
		return bad("unknown shuffle mode %d", int(o.Shuffle))
	case o.BufferSize < 0, o.Prefetch < 0, o.Concurrency < 0, o.MaxSampleSize < 0, o.SampleBuffer < 0, o.ReadBatch < 0:
		return bad("negative BufferSize, SampleBuffer, Prefetch, Concurrency, ReadBatch or MaxSampleSize")
	case o.ReadBatch > locality.MaxBatchNames:
		return bad("ReadBatch %d over %d", o.ReadBatch, locality.MaxBatchNames)
	case !o.Shards && (o.SampleBuffer != 0 || o.Fields != nil):
		return bad("SampleBuffer or Fields without Shards")
	case o.SkipIncomplete && o.Fields == nil:
		return bad("SkipIncomplete without Fields")
	case o.Listing != nil && o.Shuffle != ShuffleGlobal:
		return bad("Listing with ShuffleMode %v; it is for ShuffleGlobal", o.Shuffle)
	case o.WorldSize < 0 || o.Rank < 0 || o.Rank >= max(o.WorldSize, 1):
		return bad("rank %d of a world size of %d; want 0 <= rank < world size", o.Rank, o.WorldSize)
	case o.Workers < 0 || o.Worker < 0 || o.Worker >= max(o.Workers, 1):
		return bad("worker %d of %d workers; want 0 <= worker < workers", o.Worker, o.Workers)
	}
	o.WorldSize, o.Workers = max(o.WorldSize, 1), max(o.Workers, 1)
	if o.BufferSize == 0 {
		o.BufferSize = DefaultBufferSize
	}
	if o.Shuffle != ShuffleBuffer {
		o.BufferSize = 0 // not part of the order
	}
	if o.SampleBuffer == 0 {
		o.SampleBuffer = DefaultSampleBuffer
	}
	if !o.Shards || o.Shuffle == ShuffleNone {
		o.SampleBuffer = 0
	}
	o.Fields = slices.Clone(o.Fields)
	l.batch, _ = src.(BatchReader)
	if l.batch == nil || o.Shards {
		o.ReadBatch, l.batch = 1, nil
	} else if o.ReadBatch == 0 {
		o.ReadBatch = DefaultReadBatch
	}
	// ahead is how many samples a reader runs ahead by default: its read
	// batch, or with Shards, a chunk of a shard's samples.
	ahead := o.ReadBatch
	if o.Shards {
		ahead = DefaultReadBatch
	}
	switch {
	case o.Concurrency == 0 && o.Prefetch == 0:
		o.Concurrency = max(2*runtime.GOMAXPROCS(0), 4)
		o.Prefetch = 2 * o.Concurrency * ahead
	case o.Concurrency == 0:
		o.Concurrency = max(min(2*runtime.GOMAXPROCS(0), 4, o.Prefetch/o.ReadBatch), 1)
	case o.Prefetch == 0:
		o.Prefetch = 2 * o.Concurrency * ahead
	}
	if o.Concurrency > o.Prefetch {
		return bad("Concurrency %d over Prefetch %d", o.Concurrency, o.Prefetch)
	}
	if o.ReadBatch > 1 && o.ReadBatch > o.Prefetch {
		o.ReadBatch = o.Prefetch
	}
	if o.MaxSampleSize == 0 {
		o.MaxSampleSize = DefaultMaxSampleSize
	}
	l.split, l.splits = o.Rank*o.Workers+o.Worker, o.WorldSize*o.Workers
	l.pos = position{sum: emptySum}
	if o.Resume != nil {
		st := *o.Resume
		pos, err := l.fits(&st)
		if err != nil {
			return nil, err
		}
		l.pos, l.resume = pos, pos
		o.Resume = &st
	}
	return l, nil
}

// Stats returns the counts of what the loader delivered so far.
func (l *Loader) Stats() Stats {
	return Stats{Samples: l.samples.Load(), Bytes: l.bytes.Load(), Skipped: l.skipped.Load(), Errors: l.errs.Load()}
}

// Samples yields the samples of this loader's share of epoch (from 0), in
// the epoch's order; see the package's doc. When Options.Resume is of this
// epoch, it starts after the samples the state says were delivered.
//
// A sample that cannot be read or transformed is yielded as an error with
// its Name and Index (its code: NotFound, TooLarge...), and the epoch goes
// on. An error about the epoch as a whole (the listing failed, a Resume
// state that does not fit the listing, a negative epoch, ctx done) ends
// the iteration, as its last yield.
//
// Samples are read Options.Concurrency at a time, up to Options.Prefetch
// ahead of the loop. Leaving the loop stops every read, and every
// goroutine of the iteration is gone before the loop's statement returns.
func (l *Loader) Samples(ctx context.Context, epoch int) iter.Seq2[Sample, error] {
	return func(yield func(Sample, error) bool) {
		if epoch < 0 {
			yield(Sample{}, insitu.Errorf(insitu.InvalidArgument, "loader: negative epoch %d", epoch))
			return
		}
		if err := ctx.Err(); err != nil {
			yield(Sample{}, err)
			return
		}
		start, want := int64(0), emptySum
		var cursor *ShardState
		if r := l.opts.Resume; r != nil && r.Epoch == epoch {
			start, want, cursor = l.resume.next, l.resume.sum, l.resume.shard
		}
		order, err := l.order(ctx, epoch)
		if err != nil {
			yield(Sample{}, err)
			return
		}
		defer order.stop()
		if l.opts.Shards {
			l.runShards(ctx, epoch, start, want, cursor, order.next, yield)
			return
		}

		// Replay the names before start, to check they are the ones the
		// state saw.
		d := xxhash.New()
		for i := int64(0); i < start; i++ {
			name, err, ok := order.next()
			if err == nil && !ok {
				err = insitu.Errorf(insitu.InvalidArgument, "loader: resume state at sample %d of epoch %d, but the listing gives only %d: the listing changed", start, epoch, i)
			}
			if err != nil {
				yield(Sample{}, err)
				return
			}
			hashName(d, name)
		}
		if d.Sum64() != want {
			yield(Sample{}, insitu.Errorf(insitu.InvalidArgument, "loader: the first %d samples of epoch %d are not those of the resume state: another dataset, or the listing changed", start, epoch))
			return
		}
		l.setPos(epoch, start, d.Sum64())
		l.run(ctx, epoch, start, d, order, yield)
	}
}

// Batches yields the samples of [Loader.Samples] in batches of size: the
// last batch of the epoch is short, or with Options.DropLast, dropped. A
// sample's error is yielded with a nil batch, and the batch being filled
// goes on; an error that ends the epoch is yielded with the samples
// gathered so far. A size below 1 is an InvalidArgument error.
func (l *Loader) Batches(ctx context.Context, epoch, size int) iter.Seq2[[]Sample, error] {
	return func(yield func([]Sample, error) bool) {
		if size < 1 {
			yield(nil, insitu.Errorf(insitu.InvalidArgument, "loader: batch size %d; want at least 1", size))
			return
		}
		batch := make([]Sample, 0, size)
		for s, err := range l.Samples(ctx, epoch) {
			if err != nil {
				if s.Name == (insitu.Name{}) { // the end
					var b []Sample
					if len(batch) > 0 {
						b = batch
					}
					yield(b, err)
					return
				}
				if !yield(nil, err) {
					return
				}
				continue
			}
			batch = append(batch, s)
			if len(batch) == size {
				if !yield(batch, nil) {
					return
				}
				batch = make([]Sample, 0, size)
			}
		}
		if len(batch) > 0 && !l.opts.DropLast {
			yield(batch, nil)
		}
	}
}

// run reads the samples of order from position start, Concurrency at a
// time and up to Prefetch ahead, and yields them in order. d holds the
// digest of the names before start.
func (l *Loader) run(ctx context.Context, epoch int, start int64, d *xxhash.Digest, order *epochOrder, yield func(Sample, error) bool) {
	ctx, cancel := context.WithCancel(ctx)
	w := newWindow(l.opts.Prefetch, l.opts.Concurrency/2, start)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		w.stop()
		wg.Wait()
	}()
	wg.Go(func() { // stops the window when ctx ends
		<-ctx.Done()
		w.stop()
	})
	chunk := min(l.opts.ReadBatch, l.opts.Prefetch)
	for range l.opts.Concurrency {
		wg.Go(func() {
			var sc scratch
			var names []insitu.Name
			for {
				var first int64
				if first, names = w.claim(order, chunk, names); len(names) == 0 {
					return
				}
				if l.batch != nil && len(names) > 1 {
					l.readBatch(ctx, w, first, names, &sc)
					continue
				}
				for j, name := range names {
					data, err := l.read(ctx, name, &sc)
					w.put(first+int64(j), name, data, err)
				}
			}
		})
	}

	for {
		s, i, ok := w.take()
		if !ok {
			break
		}
		hashName(d, s.name)
		l.setPos(epoch, i+1, d.Sum64())
		switch {
		case errors.Is(s.err, insitu.ErrSkip):
			l.skipped.Add(1)
			continue
		case s.err != nil:
			l.errs.Add(1)
			if ctx.Err() != nil {
				yield(Sample{}, ctx.Err())
				return
			}
			if !yield(Sample{Name: s.name, Index: i}, insitu.WithName(s.err, s.name)) {
				return
			}
			continue
		}
		l.samples.Add(1)
		l.bytes.Add(int64(len(s.data)))
		if !yield(Sample{Name: s.name, Index: i, Data: s.data}, nil) {
			return
		}
	}
	if err := ctx.Err(); err != nil {
		yield(Sample{}, err)
		return
	}
	if err := w.end(); err != nil {
		yield(Sample{}, err)
		return
	}
	l.setPos(epoch+1, 0, emptySum)
}

// read reads (and transforms) one sample, using sc as scratch space.
func (l *Loader) read(ctx context.Context, name insitu.Name, sc *scratch) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rc, err := l.src.Open(ctx, insitu.Object{Name: name, Size: -1})
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return l.readBody(ctx, name, rc, sc)
}

// readBody reads (and transforms) the bytes of sample name from r.
func (l *Loader) readBody(ctx context.Context, name insitu.Name, r io.Reader, sc *scratch) ([]byte, error) {
	buf := &sc.buf
	buf.Reset()
	w := &sc.w
	*w = limitWriter{buf: buf, n: l.opts.MaxSampleSize}
	var err error
	if t := l.opts.Transform; t != nil {
		in := &insitu.Input{Object: insitu.Object{Name: name, Size: -1}, Args: l.opts.TransformArgs, Body: r}
		err = t.Transform(ctx, in, w)
	} else {
		// ReadFrom reads straight into buf, with no copy buffer.
		sc.r = io.LimitedReader{R: r, N: l.opts.MaxSampleSize + 1}
		_, err = buf.ReadFrom(&sc.r)
		sc.r.R = nil
		w.over = int64(buf.Len()) > l.opts.MaxSampleSize
		if err == nil && w.over {
			err = errTooLarge
		}
	}
	if err != nil {
		if w.over {
			return nil, insitu.Errorf(insitu.TooLarge, "loader: sample over MaxSampleSize (%d bytes)", l.opts.MaxSampleSize)
		}
		return nil, err
	}
	// make and copy of len(b), as one allocation left unzeroed
	// (makeslicecopy).
	b := buf.Bytes()
	data := make([]byte, len(b))
	copy(data, b)
	if buf.Cap() > 4<<20 {
		*buf = bytes.Buffer{} // keep no large buffer between samples
	}
	return data, nil
}

// readBatch reads the samples of names, at positions first on, in one
// batch read, and puts them in w.
func (l *Loader) readBatch(ctx context.Context, w *window, first int64, names []insitu.Name, sc *scratch) {
	done := make([]bool, len(names))
	finish := func(i int, data []byte, err error) {
		if !done[i] {
			done[i] = true
			w.put(first+int64(i), names[i], data, err)
		}
	}
	var end error
	for e, err := range l.batch.ReadBatch(ctx, names) {
		switch {
		case e == nil:
			end = err
		case e.Index < 0 || e.Index >= len(names):
			end = insitu.Errorf(insitu.Internal, "loader: batch read: entry %d of %d", e.Index, len(names))
		case err != nil:
			finish(e.Index, nil, err)
		default:
			data, err := l.readBody(ctx, names[e.Index], e.Body, sc)
			finish(e.Index, data, err)
		}
		if end != nil {
			break
		}
	}
	if end == nil {
		end = ctx.Err()
	}
	if end == nil {
		end = insitu.Errorf(insitu.Unavailable, "loader: batch read ended early")
	}
	for i := range names {
		finish(i, nil, end)
	}
}

// scratch is what a reader reuses from one sample to the next, so that
// reading one allocates only its bytes (and what the source and the
// transform allocate).
type scratch struct {
	buf bytes.Buffer
	w   limitWriter
	r   io.LimitedReader
}

// limitWriter writes to buf at most n bytes.
type limitWriter struct {
	buf  *bytes.Buffer
	n    int64
	over bool
}

var errTooLarge = errors.New("loader: sample too large")

func (w *limitWriter) Write(p []byte) (int, error) {
	if int64(w.buf.Len())+int64(len(p)) > w.n {
		w.over = true
		return 0, errTooLarge
	}
	return w.buf.Write(p)
}

// hashName adds name to the digest of an order.
func hashName(d *xxhash.Digest, name insitu.Name) {
	_, _ = d.WriteString(name.Bucket)
	_, _ = d.WriteString("/")
	_, _ = d.WriteString(name.Key)
	_, _ = d.WriteString("\n")
}
