// Package pipeline runs Source → Transform → Sink.
//
// [Run] lists the source, hands each object to the transform on one of a
// bounded number of workers, and streams the output into the sink, so that
// no object is held in memory whole. It retries transient failures, applies
// a per-object timeout, can skip outputs that already exist (to resume an
// interrupted run), and returns a [Report] whose counts always add up:
// Listed = Transformed + Skipped + Failed.
//
// Each output records where it came from (an [insitu.Origin]: the input
// and its version, Options.TransformID, a digest of the args) when the
// sink can keep it (an [insitu.OriginSink]: sink.Dir, sink.Cluster, the S3
// sink). A rerun with Options.SkipUnchanged then makes again exactly the
// outputs whose origin differs and skips the rest; Options.SkipExisting,
// which looks at existence only, stays for sinks that cannot record.
//
// A failing object never takes the process down: transform errors, panics
// (reported with their stack) and timeouts fail that object, with its name
// and an insitu error code. With ContinueOnError off (the default) the first
// failure cancels the run and is returned; with it on, every failure is
// recorded and the run goes on. Report.Failures keeps the first
// Options.MaxFailures of them and counts the rest.
//
// A run writes nothing on its own, to a terminal or anywhere else; it
// reports what the caller asks for. Options.Progress gets live [Stats]:
// [TerminalProgress] draws them as one live line on a terminal,
// [LogProgress] as a line per interval for logs and pipes.
// Options.OnFailure gets each failure as it happens: a [FailureLog]
// appends them to a file as JSON lines.
package pipeline
