package loader

import (
	"context"
	"fmt"
	"iter"
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"

	"github.com/cespare/xxhash/v2"

	"github.com/insitu-data/insitu"
)

// nameTable holds the names of a listing compactly: the keys end to end
// in one array, and the buckets as an index into the few distinct ones.
type nameTable struct {
	keys    []byte   // while listing; then str
	str     string   // the keys, once listed: a name's Key is a substring
	ends    []int    // str[ends[i-1]:ends[i]] is the i-th key
	buckets []string // the distinct buckets
	bidx    []uint16 // the i-th name's bucket; nil while there is one bucket
	id      string   // "<count>-<hex>": the count and digest of the names
}

func (t *nameTable) len() int { return len(t.ends) }

func (t *nameTable) name(i int) insitu.Name {
	start := 0
	if i > 0 {
		start = t.ends[i-1]
	}
	b := 0
	if t.bidx != nil {
		b = int(t.bidx[i])
	}
	return insitu.Name{Bucket: t.buckets[b], Key: t.str[start:t.ends[i]]}
}

func (t *nameTable) add(n insitu.Name) error {
	b := 0
	if len(t.buckets) == 0 || t.buckets[0] != n.Bucket {
		b = slices.Index(t.buckets, n.Bucket)
		if b < 0 {
			if len(t.buckets) > math.MaxUint16 {
				return insitu.Errorf(insitu.InvalidArgument, "loader: over %d buckets in one listing", math.MaxUint16+1)
			}
			b = len(t.buckets)
			t.buckets = append(t.buckets, n.Bucket)
		}
	}
	if b != 0 && t.bidx == nil {
		t.bidx = make([]uint16, len(t.ends), cap(t.ends))
	}
	if t.bidx != nil {
		t.bidx = append(t.bidx, uint16(b))
	}
	t.keys = append(t.keys, n.Key...)
	t.ends = append(t.ends, len(t.keys))
	return nil
}

// listing returns the source's names, listing it on the first call.
func (l *Loader) listing(ctx context.Context) (*nameTable, error) {
	l.listMu.Lock()
	defer l.listMu.Unlock()
	if l.list != nil {
		return l.list, nil
	}
	if ls := l.opts.Listing; ls != nil {
		if r := l.opts.Resume; r != nil && r.Listing != "" && r.Listing != ls.t.id {
			return nil, insitu.Errorf(insitu.InvalidArgument, "loader: resume state of a listing %s, but Options.Listing is %s: another dataset, or the listing changed", r.Listing, ls.t.id)
		}
		l.list = ls.t
		return l.list, nil
	}
	t := &nameTable{}
	d := xxhash.New()
	for obj, err := range l.src.Objects(ctx) {
		if err != nil {
			return nil, fmt.Errorf("loader: listing: %w", err)
		}
		if err := t.add(obj.Name); err != nil {
			return nil, err
		}
		hashName(d, obj.Name)
	}
	if t.len() > math.MaxUint32 {
		return nil, insitu.Errorf(insitu.InvalidArgument, "loader: %d objects; ShuffleGlobal takes at most %d, ShuffleBuffer any number", t.len(), uint64(math.MaxUint32))
	}
	// Give back what append over-allocated; the keys become one string,
	// so that a name costs no allocation.
	t.str, t.keys, t.ends = string(t.keys), nil, slices.Clone(t.ends)
	if t.bidx != nil {
		t.bidx = slices.Clone(t.bidx)
	}
	t.id = fmt.Sprintf("%d-%016x", t.len(), d.Sum64())
	if r := l.opts.Resume; r != nil && r.Listing != "" && r.Listing != t.id {
		return nil, insitu.Errorf(insitu.InvalidArgument, "loader: resume state of a listing %s, but the source lists %s: another dataset, or the listing changed", r.Listing, t.id)
	}
	l.list = t
	return t, nil
}

// rng returns the random source of an epoch's order; stream tells the
// split's apart in the streaming modes.
func (l *Loader) rng(epoch int, stream uint64) *rand.PCG {
	return rand.NewPCG(l.opts.Seed, uint64(epoch)*0x9e3779b97f4a7c15^stream)
}

// swapRandom returns a random element of the shuffle buffer buf (not
// empty) and puts the new element in there in its place.
func swapRandom[T any](r *rand.PCG, buf []T, in T) T {
	j := uintn(r, uint64(len(buf)))
	out := buf[j]
	buf[j] = in
	return out
}

// takeRandom removes a random element of buf (not empty) and returns it
// and what is left, as a shuffle buffer drains.
func takeRandom[T any](r *rand.PCG, buf []T) (T, []T) {
	j := uintn(r, uint64(len(buf)))
	out := buf[j]
	last := len(buf) - 1
	buf[j] = buf[last]
	return out, buf[:last]
}

// uintn returns a uniform number in [0, n), n > 0, by Lemire's method: a
// fixed algorithm, so that an order never changes with Go's version.
func uintn(r *rand.PCG, n uint64) uint64 {
	hi, lo := bits.Mul64(r.Uint64(), n)
	if lo < n {
		thresh := -n % n
		for lo < thresh {
			hi, lo = bits.Mul64(r.Uint64(), n)
		}
	}
	return hi
}

// epochOrder is the names of a loader's share of an epoch, in order.
type epochOrder struct {
	// pull returns the next name (ok false at the end, err non-nil at an
	// error that ends it); nil in ShuffleGlobal.
	pull func() (insitu.Name, error, bool)
	stop func()
	// In ShuffleGlobal: the listing, the epoch's permutation of it, and
	// the split; position i is name perm[split+i*splits].
	t             *nameTable
	perm          []uint32
	split, splits int
	p             int64 // the position next returns
}

// indexed reports whether the order gives the name of any position at
// once (with at), as ShuffleGlobal does.
func (o *epochOrder) indexed() bool { return o.pull == nil }

// count is, when indexed, the number of positions.
func (o *epochOrder) count() int64 {
	n := len(o.perm)
	if n <= o.split {
		return 0
	}
	return int64((n - o.split + o.splits - 1) / o.splits)
}

// at returns, when indexed, the name at position i < count().
func (o *epochOrder) at(i int64) insitu.Name {
	return o.t.name(int(o.perm[int64(o.split)+i*int64(o.splits)]))
}

// next returns the name at the next position: ok false at the end, err
// non-nil at an error that ends the order.
func (o *epochOrder) next() (insitu.Name, error, bool) {
	if o.pull != nil {
		return o.pull()
	}
	if o.p >= o.count() {
		return insitu.Name{}, nil, false
	}
	o.p++
	return o.at(o.p - 1), nil, true
}

// order returns the names of the loader's share of epoch, in order; its
// stop releases it.
func (l *Loader) order(ctx context.Context, epoch int) (*epochOrder, error) {
	if l.opts.Shuffle == ShuffleGlobal {
		t, err := l.listing(ctx)
		if err != nil {
			return nil, err
		}
		n := t.len()
		perm := make([]uint32, n)
		for i := range perm {
			perm[i] = uint32(i)
		}
		r := l.rng(epoch, 0)
		for i := n - 1; i > 0; i-- {
			j := uintn(r, uint64(i+1))
			perm[i], perm[j] = perm[j], perm[i]
		}
		return &epochOrder{t: t, perm: perm, split: l.split, splits: l.splits, stop: func() {}}, nil
	}
	pull, stop := iter.Pull2(l.stream(ctx, epoch))
	return &epochOrder{pull: pull, stop: stop}, nil
}

// stream yields the names of the loader's share of epoch in the streaming
// modes: every splits-th name of the listing, through the shuffle buffer
// in ShuffleBuffer. An error ends it.
func (l *Loader) stream(ctx context.Context, epoch int) iter.Seq2[insitu.Name, error] {
	return func(yield func(insitu.Name, error) bool) {
		shuffle := l.opts.Shuffle == ShuffleBuffer
		r := l.rng(epoch, uint64(l.split)+1)
		var buf []insitu.Name
		i := 0
		for obj, err := range l.src.Objects(ctx) {
			if err != nil {
				yield(insitu.Name{}, fmt.Errorf("loader: listing: %w", err))
				return
			}
			mine := i%l.splits == l.split
			i++
			if !mine {
				continue
			}
			if !shuffle {
				if !yield(obj.Name, nil) {
					return
				}
				continue
			}
			if len(buf) < l.opts.BufferSize {
				buf = append(buf, obj.Name)
				continue
			}
			if !yield(swapRandom(r, buf, obj.Name), nil) {
				return
			}
		}
		for len(buf) > 0 {
			var out insitu.Name
			if out, buf = takeRandom(r, buf); !yield(out, nil) {
				return
			}
		}
	}
}
