// Package sink holds insitu's sinks: where a pipeline stores its outputs.
//
//   - [Dir] stores objects as files under a local directory, all or
//     nothing: a temporary file, fsync, rename.
//   - [Cluster] puts each output in one PUT straight to the storage node
//     that owns its name ("direct put"), and names that destination to a
//     transform server that can put there itself (insitu.DirectSink).
//   - [S3] streams outputs into an S3-compatible bucket, multipart with
//     bounded memory when the size is unknown.
//   - [Discard] reads and drops everything, for dry runs and benchmarks.
//
// Package sinktest holds the conformance suite every sink passes.
package sink
