package loader

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
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
	index int64 // the shard's place in the order
	ch    chan []shardItem
	chunk int
	// skip and pick select the items sent, by their place in the shard
	// (the samples, an error included): those from skip on; when pick is
	// not nil, only those of pick (sorted), and the shard is read no
	// further than the last. The others' members are not read.
	skip int64
	pick []int64
}

type shardItem struct {
	s     Sample
	err   error
	bytes int64 // the sum of the lengths of s's fields
	shard int64 // the shard's place in the order
	item  int64 // the item's place in the shard
}

// shardCursor is where the consumer of runShards is: the shard whose
// items it takes and how many it took, its sample buffer, the buffer's
// random source, and the digest of the samples it delivered. It is
// guarded by Loader.mu, for State.
type shardCursor struct {
	index, items int64
	buf          []shardItem
	r            *rand.PCG
	d            *xxhash.Digest
}

// errNotKept marks a sample of a shard that is not sent, whose members
// are not read.
var errNotKept = errors.New("loader: sample not kept")

// errStopped ends a transform whose output is no longer read.
var errStopped = errors.New("loader: shard no longer read")

// runShards reads the shards of order, Concurrency at once, and yields
// their samples in order through the sample shuffle buffer, from position
// start. With a resume state's cursor (cur), it starts where the cursor
// is, reading again only the samples of its buffer; without, the samples
// before start are read again to check that their digest is want.
func (l *Loader) runShards(ctx context.Context, epoch int, start int64, want uint64, cur *ShardState, order func() (insitu.Name, error, bool), yield func(Sample, error) bool) {
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

	c := &shardCursor{r: l.rng(epoch, uint64(l.split)+1<<32), d: xxhash.New()}
	var pos int64
	var first int64        // the shard index the dispatcher starts at
	var skip int64         // the items of that shard already taken
	var under *insitu.Name // that shard's name, when taken from order
	if cur != nil {
		var err error
		if under, err = l.seekShards(ctx, epoch, want, cur, order, c); err != nil {
			yield(Sample{}, err)
			return
		}
		pos, first, skip = start, cur.Index, cur.Items
	}
	if pos == start { // else the state stays the resume state's until start
		l.mu.Lock()
		l.pos = position{epoch: epoch, next: pos, sum: c.d.Sum64(), shards: c}
		l.mu.Unlock()
	}

	shards := make(chan *shardFuture, conc)
	jobs := make(chan *shardFuture)
	var endErr error // the dispatcher's last error; read after shards closes
	wg.Add(1)
	go func() { // the dispatcher
		defer wg.Done()
		defer close(shards)
		defer close(jobs)
		for i := first; ; i++ {
			var name insitu.Name
			var err error
			ok := true
			if i == first && under != nil {
				name = *under
			} else if cur != nil && i == first {
				ok = false // every shard was taken
			} else {
				name, err, ok = order()
			}
			if err != nil {
				endErr = err
				return
			}
			if !ok {
				return
			}
			f := &shardFuture{name: name, index: i, ch: make(chan []shardItem, 1), chunk: chunk}
			if i == first {
				f.skip = skip
			}
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

	// deliver yields it (or its error) as the sample at pos, unless pos
	// is before start; false ends the iteration. l.mu is held, and is
	// released when it returns.
	deliver := func(it shardItem) bool {
		hashSample(c.d, it.s.Name, it.s.Key)
		it.s.Index = pos
		pos++
		if pos <= start {
			sum := c.d.Sum64()
			l.mu.Unlock()
			if pos == start && sum != want {
				yield(Sample{}, insitu.Errorf(insitu.InvalidArgument, "loader: the first %d samples of epoch %d are not those of the resume state: another dataset, or the listing changed", start, epoch))
				return false
			}
			return true
		}
		l.pos = position{epoch: epoch, next: pos, sum: c.d.Sum64(), shards: c}
		l.mu.Unlock()
		switch {
		case errors.Is(it.err, insitu.ErrSkip):
			l.skipped.Add(1)
			return true
		case it.err != nil:
			l.errs.Add(1)
		default:
			l.samples.Add(1)
			l.bytes.Add(it.bytes)
		}
		return yield(it.s, it.err)
	}
	next := first
	for f := range shards {
		l.mu.Lock()
		c.index, c.items = f.index, f.skip
		l.mu.Unlock()
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
				l.mu.Lock()
				c.items = it.item + 1
				switch {
				case it.err != nil, l.opts.SampleBuffer == 0:
					if !deliver(it) {
						return
					}
				case len(c.buf) < l.opts.SampleBuffer:
					c.buf = append(c.buf, it)
					l.mu.Unlock()
				default:
					if !deliver(swapRandom(c.r, c.buf, it)) {
						return
					}
				}
			}
		}
		next = f.index + 1
	}
	if err := ctx.Err(); err != nil {
		yield(Sample{}, err)
		return
	}
	if endErr != nil {
		yield(Sample{}, endErr)
		return
	}
	l.mu.Lock()
	c.index, c.items = next, 0 // every shard taken
	l.mu.Unlock()
	for len(c.buf) > 0 {
		l.mu.Lock()
		var out shardItem
		out, c.buf = takeRandom(c.r, c.buf)
		if !deliver(out) {
			return
		}
	}
	if pos < start {
		yield(Sample{}, insitu.Errorf(insitu.InvalidArgument, "loader: resume state at sample %d of epoch %d, but the shards give only %d: the listing changed", start, epoch, pos))
		return
	}
	l.setPos(epoch+1, 0, emptySum)
}

// seekShards puts c where the resume state's cursor cur is, with the
// digest and position of start and want: it takes the names of the
// shards before the cursor's from order, and reads again, from those
// shards, only the samples of its buffer, checking their keys.
//
// It returns the name of the shard under way (nil when every shard was
// taken), which it took from order too.
func (l *Loader) seekShards(ctx context.Context, epoch int, want uint64, cur *ShardState, order func() (insitu.Name, error, bool), c *shardCursor) (*insitu.Name, error) {
	changed := func(format string, args ...any) error {
		return insitu.Errorf(insitu.InvalidArgument, "loader: resume state of epoch %d: "+format+": another dataset, or the listing changed", append([]any{epoch}, args...)...)
	}
	if err := c.d.UnmarshalBinary(cur.Hash); err != nil || c.d.Sum64() != want {
		return nil, insitu.Errorf(insitu.InvalidArgument, "loader: resume state: its shard hash is not that of its digest")
	}
	if err := c.r.UnmarshalBinary(cur.RNG); err != nil {
		return nil, insitu.Errorf(insitu.InvalidArgument, "loader: resume state: its shard random source: %v", err)
	}
	// The samples of the buffer, by shard.
	picks := map[int64][]int64{}
	for _, ref := range cur.Buffer {
		if ref.Shard < 0 || ref.Shard > cur.Index || ref.Shard == cur.Index && ref.Item >= cur.Items || ref.Item < 0 {
			return nil, insitu.Errorf(insitu.InvalidArgument, "loader: resume state: buffered sample %d of shard %d, past its cursor", ref.Item, ref.Shard)
		}
		picks[ref.Shard] = append(picks[ref.Shard], ref.Item)
	}
	futures := map[int64]*shardFuture{}
	for i := int64(0); i < cur.Index; i++ {
		name, err, ok := order()
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, changed("its cursor is at shard %d, but there are %d", cur.Index, i)
		}
		if p := picks[i]; p != nil {
			slices.Sort(p)
			futures[i] = &shardFuture{name: name, index: i, pick: slices.Compact(p)}
		}
	}
	// The shard under way: the dispatcher reads it again from the
	// cursor; its buffered samples are read here.
	name, err, ok := order()
	if err != nil {
		return nil, err
	}
	var under *insitu.Name
	if ok {
		under = &name
		if p := picks[cur.Index]; p != nil {
			slices.Sort(p)
			futures[cur.Index] = &shardFuture{name: name, index: cur.Index, pick: slices.Compact(p)}
		}
	} else if picks[cur.Index] != nil {
		return nil, changed("its cursor is at shard %d, but there are %d", cur.Index, cur.Index)
	}
	// Read the picked samples, Concurrency shards at once.
	var wg sync.WaitGroup
	sem := make(chan struct{}, l.opts.Concurrency)
	got := map[int64][]shardItem{}
	var mu sync.Mutex
	for i, f := range futures {
		f.ch, f.chunk = make(chan []shardItem, 1), 64
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			var items []shardItem
			done := make(chan struct{})
			go func() {
				defer close(done)
				for chunk := range f.ch {
					items = append(items, chunk...)
				}
			}()
			l.readShard(ctx, f, newTarReader(nil))
			close(f.ch)
			<-done
			mu.Lock()
			got[i] = items
			mu.Unlock()
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, ref := range cur.Buffer {
		items := got[ref.Shard]
		k := slices.IndexFunc(items, func(it shardItem) bool { return it.item == ref.Item })
		switch {
		case k < 0:
			return nil, changed("sample %d of shard %d is gone", ref.Item, ref.Shard)
		case items[k].err != nil:
			return nil, fmt.Errorf("loader: resume: %w", items[k].err)
		case items[k].s.Key != ref.Key:
			return nil, changed("sample %d of shard %d is %q, not %q", ref.Item, ref.Shard, items[k].s.Key, ref.Key)
		}
		c.buf = append(c.buf, items[k])
	}
	return under, nil
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
	var ord int64 // the place in the shard of the next item
	keep := func(o int64) bool {
		if o < f.skip {
			return false
		}
		_, ok := slices.BinarySearch(f.pick, o)
		return f.pick == nil || ok
	}
	send := func(s Sample, n int64, err error) bool {
		o := ord
		ord++
		if !keep(o) {
			return true
		}
		if err != nil {
			s.Fields, n = nil, 0
		}
		if items == nil {
			items = make([]shardItem, 0, f.chunk)
		}
		items = append(items, shardItem{s: s, err: err, bytes: n, shard: f.index, item: o})
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
		if bad == errNotKept {
			return send(s, 0, bad) // counted, not sent
		}
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
			if f.pick != nil && ord > f.pick[len(f.pick)-1] {
				return // past the last sample wanted
			}
			cur, in, size, bad = Sample{Name: f.name, Key: string(keyb)}, true, 0, nil
			if keep(ord) {
				cur.Fields = make(map[string][]byte, nfields)
			} else {
				bad = errNotKept
			}
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
