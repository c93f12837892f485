// Package loader iterates over the samples of a dataset for training: in a
// shuffled order that depends only on a seed and the epoch, read and
// transformed ahead of the trainer in parallel, split between ranks and
// workers, batched, and resumable from a saved [State].
//
// A [Loader] reads any [insitu.Source]: a local directory (source.Dir), a
// bucket of a storage cluster, S3. On a cluster, use [Cluster] (which is
// source.Cluster that also reads in batches): the loader then reads
// Options.ReadBatch consecutive samples of its order in one batch GET per
// owner, and with a ClusterOptions.Transform (a chain of transforms the
// nodes know by name) each sample is transformed on its owner, next to
// the data, so that only the transformed bytes reach the trainer.
// Options.Transform runs in this process instead, after the bytes are
// read.
//
//	src, err := loader.Cluster(client, "train", &source.ClusterOptions{Transform: []string{"decode"}})
//	l, err := loader.New(src, &loader.Options{Seed: 42})
//	for epoch := range 3 {
//		for batch, err := range l.Batches(ctx, epoch, 64) {
//			if err != nil {
//				return err // or count it and go on: the epoch goes on
//			}
//			train(batch)
//			save(l.State()) // resumable from here
//		}
//	}
//
// # Order
//
// For a given seed, epoch and split, the order of the samples is the same
// on every run, whatever the timing of the reads: Prefetch samples are read
// at once, ahead of the consumer, and delivered in the order. Three modes
// ([ShuffleMode]):
//
//   - [ShuffleGlobal] (the default) lists the source once, keeping names
//     only (about the length of the name plus 12 bytes each: 1M names of
//     30 bytes take about 45 MiB), and draws a permutation of them per
//     epoch. Its first sample waits for the whole listing (a permutation
//     cannot start before it knows every name), unless Options.Listing
//     gives it: the [Listing] of another loader of the source, or one
//     saved with [Listing.WriteTo] and read with [ReadListing].
//   - [ShuffleBuffer] streams the listing through a shuffle buffer of
//     Options.BufferSize names, for listings too large to hold: samples
//     move at most about BufferSize places from where a listing puts them.
//   - [ShuffleNone] keeps the source's listing order.
//
// # Shards
//
// With Options.Shards, each object is a tar shard in the webdataset
// convention: the members that share a key (a path up to the first "."
// of the base name) make one sample, whose Sample.Fields hold each
// member's bytes under its extension ("x/0001.jpg" and "x/0001.cls" make
// sample "x/0001" with fields "jpg" and "cls"). The order, the split and
// a Resume state's position are then those of the shards, and each
// sample goes through a shuffle buffer of Options.SampleBuffer samples.
// Shards are read as streams, Options.Concurrency at once; a truncated
// or corrupt shard yields its whole samples, then an InvalidArgument
// error, and the epoch goes on. A sample without one of Options.Fields
// is an InvalidArgument error, or with Options.SkipIncomplete, skipped and
// counted in Stats.Skipped. A [State] of shards holds where their reading
// is (State.Shard: the shard under way, the samples taken of it, and the
// shuffle buffer's samples, by shard and place); resuming from it reads
// again only the buffered samples (each shard that holds some, up to the
// last) and the shard under way (its members before the position are
// skipped, not kept), not every shard before the position.
//
// # Splitting
//
// Options.Rank of Options.WorldSize (the processes of a distributed run)
// and Options.Worker of Options.Workers (the loaders of one process) split
// each epoch: split s of S = WorldSize×Workers (s = Rank×Workers+Worker)
// takes the positions s, s+S, s+2S... of the epoch's order. The splits are
// disjoint and together cover the epoch exactly once; their lengths differ
// by at most one.
//
// # Resume
//
// [Loader.State], taken in the loop's body, describes the position after
// the samples delivered so far; it marshals to JSON. A loader made with
// Options.Resume set to it yields, for the state's epoch, exactly the
// samples not yet delivered, in the same order, and every later epoch as
// if it had never stopped. The loader checks that the state fits: another
// seed, mode or split, or a listing that changed (in global mode: another
// count or other names; in every mode: other names before the position),
// is an InvalidArgument error, never a silently different order.
package loader
