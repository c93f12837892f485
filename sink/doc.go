// Package sink holds insitu's sinks: where a pipeline stores its outputs.
//
//   - [Dir] stores objects as files under a local directory, all or
//     nothing: a temporary file, fsync, rename.
//   - [Discard] reads and drops everything, for dry runs and benchmarks.
//
// Package sinktest holds the conformance suite every sink passes.
package sink
