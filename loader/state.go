package loader

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/cespare/xxhash/v2"

	"github.com/insitu-data/insitu"
)

// StateVersion is the version of the [State] this package writes and
// reads.
const StateVersion = 1

// State is where a [Loader] is: the epoch, how many samples of its share
// of that epoch were delivered, and what fixes the order (seed, mode,
// split, listing). It marshals to JSON; give it to Options.Resume to
// resume from it. Make one with [Loader.State].
type State struct {
	// Version is StateVersion.
	Version int `json:"version"`
	// Seed, Shuffle and BufferSize are the options that fix the order.
	Seed       uint64      `json:"seed,string"`
	Shuffle    ShuffleMode `json:"shuffle"`
	BufferSize int         `json:"buffer_size,omitempty"`
	// Shards and SampleBuffer are those options.
	Shards       bool `json:"shards,omitempty"`
	SampleBuffer int  `json:"sample_buffer,omitempty"`
	// Rank, WorldSize, Worker and Workers are the loader's split.
	Rank      int `json:"rank"`
	WorldSize int `json:"world_size"`
	Worker    int `json:"worker"`
	Workers   int `json:"workers"`
	// Listing identifies the listing in ShuffleGlobal: its count and a
	// hash of its names, "<count>-<hex>"; "" before it is listed and in
	// the other modes.
	Listing string `json:"listing,omitempty"`
	// Epoch is the epoch under way, or the next one when the last ended.
	Epoch int `json:"epoch"`
	// Next is the number of samples of the loader's share of Epoch
	// delivered (yielded, as samples or errors, or skipped): the index
	// of the next one.
	Next int64 `json:"next"`
	// Digest is a hash of the names of those samples, in order, as 16 hex
	// digits: a resumed loader checks that its first Next names give
	// the same.
	Digest string `json:"digest"`
	// Shard is, with Shards, where the reading of the shards is, so that
	// a resumed loader reads again only the samples of the shuffle
	// buffer and the shard under way, not every shard before the
	// position. It holds a reference to each buffered sample (about 40
	// bytes of JSON each: SampleBuffer of them at most). A state without
	// it (nil) is resumed by reading every shard before the position
	// again.
	Shard *ShardState `json:"shard,omitempty"`
}

// ShardState is where the reading of a [Loader]'s shards is, in a
// [State].
type ShardState struct {
	// Index is the place in the epoch's order of the shard under way:
	// the samples of the shards before it were all taken, and the first
	// Items of it (its samples in the tar's order, an error counting as
	// one). Index is the number of shards once all were taken.
	Index int64 `json:"index"`
	Items int64 `json:"items"`
	// Buffer is the samples in the shuffle buffer, in its order.
	Buffer []SampleRef `json:"buffer,omitempty"`
	// RNG is the state of the buffer's random source; Hash, that of the
	// digest of the samples delivered (whose sum is State.Digest).
	RNG  []byte `json:"rng"`
	Hash []byte `json:"hash"`
}

// SampleRef is a sample of a shard: the shard's place in the epoch's
// order, the sample's place in the shard, and its key.
type SampleRef struct {
	Shard int64  `json:"shard"`
	Item  int64  `json:"item"`
	Key   string `json:"key"`
}

// position is where an iteration is.
type position struct {
	epoch int
	next  int64
	sum   uint64 // the digest of the names before next
	// shards is, with Shards, the cursor of the iteration under way
	// (guarded by Loader.mu); shard, that of a resume state.
	shards *shardCursor
	shard  *ShardState
}

// emptySum is the digest of no names.
var emptySum = xxhash.New().Sum64()

// State returns the state of the iteration started last: taken in the
// body of a loop over [Loader.Samples] or [Loader.Batches], it counts the
// samples yielded so far as delivered, the one(s) in hand included. Before
// any iteration it is Options.Resume, or epoch 0 from its start; after an
// epoch ran to its end, the next epoch from its start.
func (l *Loader) State() State {
	l.mu.Lock()
	pos := l.pos
	shard := pos.shard
	if c := pos.shards; c != nil {
		shard = c.state()
	}
	l.mu.Unlock()
	o := &l.opts
	st := State{
		Version: StateVersion, Seed: o.Seed, Shuffle: o.Shuffle, BufferSize: o.BufferSize,
		Shards: o.Shards, SampleBuffer: o.SampleBuffer,
		Rank: o.Rank, WorldSize: o.WorldSize, Worker: o.Worker, Workers: o.Workers,
		Epoch: pos.epoch, Next: pos.next, Digest: fmt.Sprintf("%016x", pos.sum),
		Shard: shard,
	}
	l.listMu.Lock()
	if l.list != nil {
		st.Listing = l.list.id
	} else if o.Resume != nil {
		st.Listing = o.Resume.Listing
	}
	l.listMu.Unlock()
	return st
}

func (l *Loader) setPos(epoch int, next int64, sum uint64) {
	l.mu.Lock()
	l.pos = position{epoch: epoch, next: next, sum: sum}
	l.mu.Unlock()
}

// fits checks that st can resume a loader of l's options.
func (l *Loader) fits(st *State) (position, error) {
	o := &l.opts
	bad := func(format string, args ...any) (position, error) {
		return position{}, insitu.Errorf(insitu.InvalidArgument, "loader: resume state: "+format, args...)
	}
	switch {
	case st.Version != StateVersion:
		return bad("version %d; want %d", st.Version, StateVersion)
	case st.Seed != o.Seed:
		return bad("seed %d, but the loader's is %d", st.Seed, o.Seed)
	case st.Shuffle != o.Shuffle || st.BufferSize != o.BufferSize || st.Shards != o.Shards || st.SampleBuffer != o.SampleBuffer:
		return bad("shuffle %v (buffer %d, shards %v, sample buffer %d), but the loader's is %v (buffer %d, shards %v, sample buffer %d)",
			st.Shuffle, st.BufferSize, st.Shards, st.SampleBuffer, o.Shuffle, o.BufferSize, o.Shards, o.SampleBuffer)
	case st.Rank != o.Rank || st.WorldSize != o.WorldSize || st.Worker != o.Worker || st.Workers != o.Workers:
		return bad("split rank %d/%d worker %d/%d, but the loader's is rank %d/%d worker %d/%d",
			st.Rank, st.WorldSize, st.Worker, st.Workers, o.Rank, o.WorldSize, o.Worker, o.Workers)
	case st.Epoch < 0 || st.Next < 0:
		return bad("negative epoch %d or position %d", st.Epoch, st.Next)
	}
	sum, err := strconv.ParseUint(st.Digest, 16, 64)
	if err != nil || len(st.Digest) != 16 {
		return bad("digest %q; want 16 hex digits", st.Digest)
	}
	if sh := st.Shard; sh != nil {
		if !o.Shards || sh.Index < 0 || sh.Items < 0 || len(sh.Buffer) > max(o.SampleBuffer, 0) {
			return bad("a shard cursor at %d/%d with %d buffered samples, for a loader of shards %v and a sample buffer of %d", sh.Index, sh.Items, len(sh.Buffer), o.Shards, o.SampleBuffer)
		}
		sh = &ShardState{Index: sh.Index, Items: sh.Items, Buffer: slices.Clone(sh.Buffer), RNG: slices.Clone(sh.RNG), Hash: slices.Clone(sh.Hash)}
		return position{epoch: st.Epoch, next: st.Next, sum: sum, shard: sh}, nil
	}
	return position{epoch: st.Epoch, next: st.Next, sum: sum}, nil
}

// state returns c as a ShardState; l.mu is held.
func (c *shardCursor) state() *ShardState {
	st := &ShardState{Index: c.index, Items: c.items, Buffer: make([]SampleRef, len(c.buf))}
	for i, it := range c.buf {
		st.Buffer[i] = SampleRef{Shard: it.shard, Item: it.item, Key: it.s.Key}
	}
	st.RNG, _ = c.r.MarshalBinary()
	st.Hash, _ = c.d.MarshalBinary()
	return st
}
