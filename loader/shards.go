package loader

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"sync"

	"github.com/cespare/xxhash/v2"

	"github.com/insitu-data/insitu"
)

// shardFuture is one shard being read: its samples (and errors) come over
// ch in chunks of at most chunk, which the reader closes at the shard's
// end.
type shardFuture struct {
	name  insitu.Name
	ch    chan []shardItem
	chunk int
}

type shardItem struct {
	s     Sample
	err   error
	bytes int64 // the sum of the lengths of s's fields
}

// errStopped ends a transform whose output is no longer read.
var errStopped = errors.New("loader: shard no longer read")

// runShards reads the shards of order, Concurrency at once, and yields
// their samples in order through the sample shuffle buffer, from position
// start; the samples before start are read again to check that their
// digest is want.
func (l *Loader) runShards(ctx context.Context, epoch int, start int64, want uint64, order func() (insitu.Name, error, bool), yield func(Sample, error) bool) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	conc := l.opts.Concurrency
	// Each shard's reader runs ahead by at most two chunks (one in its
	// channel, one being filled): Prefetch samples in all.
	chunk := max(l.opts.Prefetch/conc/2, 1)
	shards := make(chan *shardFuture, conc)
	jobs := make(chan *shardFuture)
	var endErr error // the dispatcher's last error; read after shards closes

	wg.Add(1)
	go func() { // the dispatcher
		defer wg.Done()
		defer close(shards)
		defer close(jobs)
		for {
			name, err, ok := order()
			if err != nil {
				endErr = err
				return
			}
			if !ok {
				return
			}
			f := &shardFuture{name: name, ch: make(chan []shardItem, 1), chunk: chunk}
			select {
			case shards <- f:
			case <-ctx.Done():
				return
			}
			select {
			case jobs <- f:
			case <-ctx.Done():
				return
			}
		}
	}()
	for range conc {
		wg.Go(func() {
			tr := newTarReader(nil) // and its buffer, for every shard
			for f := range jobs {
				l.readShard(ctx, f, tr)
				close(f.ch)
			}
		})
	}

	d := xxhash.New()
	var pos int64
	// deliver yields s (or its error) as the sample at pos, unless pos
	// is before start; false ends the iteration.
	deliver := func(s Sample, n int64, err error) bool {
		hashSample(d, s.Name, s.Key)
		s.Index = pos
		pos++
		if pos <= start {
			if pos == start && d.Sum64() != want {
				yield(Sample{}, insitu.Errorf(insitu.InvalidArgument, "loader: the first %d samples of epoch %d are not those of the resume state: another dataset, or the listing changed", start, epoch))
				return false
			}
			return true
		}
		l.setPos(epoch, pos, d.Sum64())
		switch {
		case errors.Is(err, insitu.ErrSkip):
			l.skipped.Add(1)
			return true
		case err != nil:
			l.errs.Add(1)
		default:
			l.samples.Add(1)
			l.bytes.Add(n)
		}
		return yield(s, err)
	}
	r := l.rng(epoch, uint64(l.split)+1<<32)
	var buf []shardItem
	for f := range shards {
	shard:
		for {
			var items []shardItem
			var ok bool
			select {
			case items, ok = <-f.ch:
				if !ok {
					break shard
				}
			case <-ctx.Done():
				yield(Sample{}, ctx.Err())
				return
			}
			for _, it := range items {
				switch {
				case it.err != nil, l.opts.SampleBuffer == 0:
					if !deliver(it.s, it.bytes, it.err) {
						return
					}
				case len(buf) < l.opts.SampleBuffer:
					buf = append(buf, it)
				default:
					if out := swapRandom(r, buf, it); !deliver(out.s, out.bytes, nil) {
						return
					}
				}
			}
		}
	}
	if err := ctx.Err(); err != nil {
		yield(Sample{}, err)
		return
	}
	if endErr != nil {
		yield(Sample{}, endErr)
		return
	}
	for len(buf) > 0 {
		var out shardItem
		if out, buf = takeRandom(r, buf); !deliver(out.s, out.bytes, nil) {
			return
		}
	}
	if pos < start {
		yield(Sample{}, insitu.Errorf(insitu.InvalidArgument, "loader: resume state at sample %d of epoch %d, but the shards give only %d: the listing changed", start, epoch, pos))
		return
	}
	l.setPos(epoch+1, 0, emptySum)
}

// readShard reads the samples of f's shard into f.ch, then returns; it
// returns early when ctx ends.
func (l *Loader) readShard(ctx context.Context, f *shardFuture, tr *tarReader) {
	var items []shardItem
	flushItems := func() bool {
		if len(items) == 0 {
			return true
		}
		select {
		case f.ch <- items:
			items = nil
			return true
		case <-ctx.Done():
			return false
		}
	}
	defer flushItems()
	send := func(s Sample, n int64, err error) bool {
		if err != nil {
			s.Fields, n = nil, 0
		}
		if items == nil {
			items = make([]shardItem, 0, f.chunk)
		}
		items = append(items, shardItem{s: s, err: err, bytes: n})
		return len(items) < f.chunk || flushItems()
	}
	fail := func(err error) { send(Sample{Name: f.name}, 0, insitu.WithName(err, f.name)) }
	rc, err := l.src.Open(ctx, insitu.Object{Name: f.name, Size: -1})
	if err != nil {
		fail(err)
		return
	}
	defer rc.Close()
	var r io.Reader = rc
	if t := l.opts.Transform; t != nil {
		pr, pw := io.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			in := &insitu.Input{Object: insitu.Object{Name: f.name, Size: -1}, Args: l.opts.TransformArgs, Body: rc}
			pw.CloseWithError(t.Transform(ctx, in, pw))
		}()
		defer func() {
			pr.CloseWithError(errStopped)
			rc.Close() // unblocks a transform still reading
			<-done
		}()
		r = pr
	}

	tr.reset(r)
	defer tr.reset(nil)
	var cur Sample // the sample being read, when in
	in := false
	var size int64
	var bad error     // what is wrong with cur
	var exts []string // the extensions met, to make no string per member
	nfields := 2      // the fields of the last sample: a map's size hint
	flush := func() bool {
		if !in {
			return true
		}
		s := cur
		cur, in = Sample{}, false
		nfields = max(len(s.Fields), 1)
		if bad == nil {
			for _, want := range l.opts.Fields {
				if _, ok := s.Fields[want]; !ok {
					if l.opts.SkipIncomplete {
						bad = insitu.ErrSkip
					} else {
						bad = insitu.Errorf(insitu.InvalidArgument, "loader: sample %q of shard %s has no field %q", s.Key, s.Name, want)
					}
					break
				}
			}
		}
		return send(s, size, bad)
	}
	for n := 0; ; n++ {
		err := tr.next()
		if err == io.EOF {
			flush()
			return
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if insitu.CodeOf(err) == insitu.Unknown {
				err = insitu.Errorf(insitu.InvalidArgument, "loader: shard truncated or corrupt after %d members: %w", n, err)
			}
			fail(err)
			return
		}
		keyb, extb := splitMember(tr.name)
		if len(extb) == 0 {
			continue // no field: skipped, as webdataset does
		}
		if in && cur.Key != string(keyb) {
			if !flush() {
				return
			}
		}
		if !in {
			cur, in, size, bad = Sample{Name: f.name, Key: string(keyb), Fields: make(map[string][]byte, nfields)}, true, 0, nil
		}
		i := slices.IndexFunc(exts, func(e string) bool { return e == string(extb) })
		if i < 0 {
			i = len(exts)
			exts = append(exts, string(extb))
		}
		ext := exts[i]
		if bad != nil || (l.opts.Fields != nil && !slices.Contains(l.opts.Fields, ext)) {
			continue // next skips the body
		}
		if size+tr.size > l.opts.MaxSampleSize {
			bad = insitu.Errorf(insitu.TooLarge, "loader: sample %q of shard %s over MaxSampleSize (%d bytes) with member %q (%d bytes)", cur.Key, f.name, l.opts.MaxSampleSize, tr.name, tr.size)
			continue
		}
		b := make([]byte, tr.size)
		if err := tr.read(b); err != nil {
			if ctx.Err() != nil {
				return
			}
			if insitu.CodeOf(err) == insitu.Unknown {
				err = insitu.Errorf(insitu.InvalidArgument, "loader: shard truncated in member %q: %w", tr.name, err)
			}
			fail(err)
			return
		}
		cur.Fields[ext] = b
		size += tr.size
	}
}

// splitMember splits a member's name into the sample's key (its path up to
// the first "." of its base name) and the field's extension (what
// follows).
func splitMember(name []byte) (key, ext []byte) {
	base := bytes.LastIndexByte(name, '/') + 1
	dot := bytes.IndexByte(name[base:], '.')
	if dot < 0 {
		return name, nil
	}
	return name[:base+dot], name[base+dot+1:]
}

// hashSample adds a sample of a shard (or an object, key "") to the
// digest of an order.
func hashSample(d *xxhash.Digest, shard insitu.Name, key string) {
	_, _ = d.WriteString(shard.Bucket)
	_, _ = d.WriteString("/")
	_, _ = d.WriteString(shard.Key)
	_, _ = d.WriteString("#")
	_, _ = d.WriteString(key)
	_, _ = d.WriteString("\n")
}
