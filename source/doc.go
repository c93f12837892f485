// Package source holds insitu's sources: the lists of objects a pipeline
// reads.
//
//   - [Dir] is a local directory seen as a bucket (a node's local store):
//     files listed recursively in S3 key order, with their local paths.
//   - [Cluster] lists a bucket across every storage node of a cluster, in
//     parallel and merged in key order, each object with its owner; it
//     opens objects from their owners.
//   - [S3] lists an S3-compatible bucket through minio-go, page by page,
//     and streams objects (Owner ""); the fallback when there is no cluster.
//   - [Names] and [Template] list explicit names, or the names a brace
//     template such as "shard-{0000..0999}.tar" expands to, and open them
//     through another source.
//
// Every source here lists with iter.Seq2: the listing is lazy, stops when
// the consumer stops, and yields an error for one entry without ending.
// Package sourcetest holds the conformance suite they all pass.
package source
