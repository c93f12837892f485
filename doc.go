// Package insitu holds the core contracts of insitu, a library for
// data-locality-aware ETL pipelines: Source → Transform → Sink.
//
// A [Source] lists [Object]s, each with the storage node that owns it; a
// [Transform] turns one object's bytes into one output; a [Sink] stores the
// output, all-or-nothing. The runner that drives them lives in package
// pipeline; placement lives in package locality; sources and sinks live in
// packages source and sink; transform servers and their clients live in
// package transport. This package imports none of them.
//
// # Contracts
//
// Who closes what, and what is safe concurrently:
//
//   - Source.Objects may be called more than once; each call lists afresh.
//     Iteration stops early when the consumer stops, with no goroutine left
//     behind. A yielded error with a zero Object is fatal to the listing
//     when the iterator ends right after it; otherwise the listing goes on.
//   - Source.Open returns a reader the caller must Close. Open works with an
//     Object that has only its Name set. Sources are safe for concurrent use.
//   - Transform.Transform reads in.Body (which the caller closes) and writes
//     the output to out; it must not retain either after it returns. It is
//     called concurrently for different objects. It returns [ErrSkip] to drop
//     an object. It must honour ctx: the caller cancels ctx when the object's
//     deadline passes.
//   - Sink.Put reads r to io.EOF and makes the object visible only then; if
//     r returns any other error, or ctx ends first, nothing is left behind
//     under the name. Sinks are safe for concurrent use.
//
// # Errors
//
// Errors carry a [Code], checkable with errors.Is against the Code itself
// (errors.Is(err, insitu.NotFound)) or read with [CodeOf]. Context errors and
// io.EOF are never wrapped.
package insitu
