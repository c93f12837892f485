package pipeline

import (
	"log/slog"
	"runtime"
	"strings"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/batch"
)

// Options configure [Run]. A nil *Options means all defaults; so does the
// zero value of each field.
type Options struct {
	// Workers is the number of objects in flight at once (of batches,
	// when the transform takes batches: see Batch).
	// Default: runtime.GOMAXPROCS(0), right for CPU-bound transforms; raise
	// it for transforms that wait on a network. Negative is an error.
	Workers int

	// Rename maps an input name to its output name, e.g. ReplaceExt(".flac",
	// ".wav"). An error fails that object. It must give the same output for
	// the same input. Two inputs of a run cannot have one output name (one
	// output would silently replace the other): the first input renamed to
	// a name takes it, and any other fails with an [insitu.InvalidArgument]
	// error that names both inputs and the output. To tell, the run keeps
	// a 128-bit hash of each output name with the name of the input that
	// took it, about 100 bytes per object plus the input's bucket and key;
	// Rename is called once per object. Default: the output keeps the
	// input's name (and nothing is kept).
	Rename func(insitu.Name) (insitu.Name, error)

	// Args reach the transform unchanged in Input.Args. Default: "".
	Args string

	// SkipExisting skips an object whose output the sink already has (per
	// Sink.Stat), without running the transform; it counts as skipped. Use
	// it to resume an interrupted run with a sink that cannot record
	// origins: an output made from an older version of its input, or by
	// another transform or other args, is kept. Default: off.
	SkipExisting bool

	// SkipUnchanged skips an object whose output the sink already has
	// with the [insitu.Origin] this run would record for it (per
	// Sink.Stat's Object.Origin): the same input, the same version of the
	// input (Object.Version), the same TransformID and the same Args. Any
	// other output is made again, and so is every output of an input whose
	// source gives no Version, an output with no origin recorded (put by
	// a sink or a run that recorded none, or whose file system keeps
	// none) and an output whose origin text would be over
	// [insitu.MaxOriginLen]; a skipped object counts as skipped, one made
	// again as transformed. Use it to resume or to bring outputs up to
	// date after inputs, the transform or its args changed. The sink must
	// be an [insitu.OriginSink] (sink.Dir, sink.Cluster, s3's sink), else
	// Run fails with InvalidArgument before anything runs; it cannot be
	// set with SkipExisting, and needs a TransformID. Default: off.
	SkipUnchanged bool

	// TransformID names the transform, and the version of its behaviour,
	// in the origin a run records with each output (whenever the sink is
	// an [insitu.OriginSink], whatever SkipUnchanged). Set it, and change
	// it whenever the transform's behaviour changes (such as
	// "flac2wav/2"), so that SkipUnchanged makes its outputs again;
	// SkipUnchanged requires it. Default: the transform's Go type
	// (fmt.Sprintf("%T", t)), recorded but not trusted: it does not tell
	// two [insitu.TransformFunc]s or two transform servers apart, nor two
	// versions of one transform.
	TransformID string

	// DryRun runs the transform and counts its output bytes but writes
	// nothing to the sink. Default: off.
	DryRun bool

	// DirectPut lets the transform's side put each output straight to
	// where the sink says it belongs, when the sink is an
	// [insitu.DirectSink] and the transform an [insitu.DirectTransform]
	// (e.g. a remote transform server and the cluster sink): the bytes
	// never pass through the runner. Ignored otherwise, and in a dry run.
	// Default: off.
	DirectPut bool

	// CountFirst lists the source once before the run to count its
	// objects, so that progress has a true total and ETA from the start
	// (Stats.Total) and a run cut short knows how much it left undone. It
	// costs one more listing. Default: off.
	CountFirst bool

	// ContinueOnError records every failure and goes on. When off (the
	// default), the first failure cancels the run and Run returns it.
	ContinueOnError bool

	// Retries is how many more times an object is tried after an
	// [insitu.Unavailable] failure; no other code is retried. Default: 3.
	// Negative disables retries.
	Retries int

	// Backoff is the wait before the first retry; it doubles on each retry
	// up to 30 times itself, with jitter. Default: 100ms.
	Backoff time.Duration

	// Timeout bounds each attempt at an object: opening, transforming and
	// storing it. When it passes, the object fails with
	// [insitu.DeadlineExceeded]. Default: 0, no timeout.
	Timeout time.Duration

	// Progress, when set, is called with live stats every ProgressInterval
	// and once more at the end with Stats.Final set, always from one
	// goroutine, never two calls at once. [TerminalProgress] draws them as
	// one live line on a terminal, [LogProgress] as a line per call for
	// logs and pipes. Default: nil, no progress and no output at all.
	Progress func(Stats)

	// ProgressInterval is the time between progress updates.
	// Default: 500ms.
	ProgressInterval time.Duration

	// OnFailure, when set, is called once for each object that fails
	// (listing errors included), as it fails, with the same Failure that
	// Report.Failures records (if it has room). It is called from the
	// worker goroutine of the failed object, but the calls are serialized:
	// never two at once, so OnFailure need not be safe for concurrent use;
	// a slow OnFailure holds up the workers whose objects fail meanwhile.
	// [NewFailureLog] appends the failures to a file as JSON lines.
	// Default: nil.
	OnFailure func(Failure)

	// MaxFailures is the most failures kept in Report.Failures, the first
	// ones; the others are only counted, in Report.FailuresDropped, so that
	// a run of millions of failing objects holds a bounded report in
	// memory (OnFailure still gets every one). Default:
	// [DefaultMaxFailures]. Negative keeps none.
	MaxFailures int

	// Logger gets a record per failure and retry. Default: discard.
	Logger *slog.Logger

	// Batch bounds the batches the run hands a transform that is an
	// [insitu.BatchTransform]; other transforms get one object per call.
	// Default: nil, the defaults of [BatchOptions].
	Batch *BatchOptions
}

// BatchOptions bound the batches of objects a run hands an
// [insitu.BatchTransform] in one TransformBatch call. A batch goes once
// it is full by Size or Bytes, once Wait has passed since its first
// object was listed, or when the listing ends, so a slow listing is not
// held back. With batches, Options.Workers bounds the calls in flight
// (each of up to Size objects), and each batch call has Options.Timeout
// per object it holds. A nil *BatchOptions means all defaults.
type BatchOptions struct {
	// Size is the most objects in a batch; 1 turns batching off.
	// Default: 16.
	Size int
	// Bytes bounds the sum of the listed sizes of a batch's objects
	// (unknown sizes count as 0); an object that would take a batch past
	// it goes in the next one, and a batch holds at least one object.
	// Default: 256 MiB.
	Bytes int64
	// Wait is the longest a batch waits for more objects once its first
	// is listed. Default: 20ms.
	Wait time.Duration
}

// Defaults of [BatchOptions].
const (
	DefaultBatchSize  = 16
	DefaultBatchBytes = 256 << 20
	DefaultBatchWait  = 20 * time.Millisecond
)

// limits returns b's bounds with every default filled in.
func (b *BatchOptions) limits() batch.Limits {
	var l batch.Limits
	if b != nil {
		l = batch.Limits{Count: b.Size, Bytes: b.Bytes, Wait: b.Wait}
	}
	return l.Or(batch.Limits{Count: DefaultBatchSize, Bytes: DefaultBatchBytes, Wait: DefaultBatchWait})
}

// DefaultMaxFailures is the default of Options.MaxFailures: the most
// failures a Report keeps. A cluster's report keeps as many.
const DefaultMaxFailures = 1000

const (
	defaultRetries          = 3
	defaultBackoff          = 100 * time.Millisecond
	defaultProgressInterval = 500 * time.Millisecond
)

// resolved returns a copy of o with every default filled in.
func (o *Options) resolved() Options {
	var r Options
	if o != nil {
		r = *o
	}
	if r.Workers == 0 {
		r.Workers = runtime.GOMAXPROCS(0)
	}
	if r.Rename == nil {
		r.Rename = func(n insitu.Name) (insitu.Name, error) { return n, nil }
	}
	switch {
	case r.Retries == 0:
		r.Retries = defaultRetries
	case r.Retries < 0:
		r.Retries = 0
	}
	if r.Backoff <= 0 {
		r.Backoff = defaultBackoff
	}
	switch {
	case r.MaxFailures == 0:
		r.MaxFailures = DefaultMaxFailures
	case r.MaxFailures < 0:
		r.MaxFailures = 0
	}
	if r.ProgressInterval <= 0 {
		r.ProgressInterval = defaultProgressInterval
	}
	if r.Logger == nil {
		r.Logger = slog.New(slog.DiscardHandler)
	}
	return r
}

func (o *Options) validate() error {
	if o == nil {
		return nil
	}
	if o.Workers < 0 {
		return insitu.Errorf(insitu.InvalidArgument, "pipeline: Workers is %d; it must be positive, or 0 for the default", o.Workers)
	}
	if o.Timeout < 0 {
		return insitu.Errorf(insitu.InvalidArgument, "pipeline: Timeout is %v; it must be positive, or 0 for none", o.Timeout)
	}
	if b := o.Batch; b != nil && (b.Size < 0 || b.Bytes < 0 || b.Wait < 0) {
		return insitu.Errorf(insitu.InvalidArgument, "pipeline: Batch has Size %d, Bytes %d, Wait %v; none may be negative (0 is the default)", b.Size, b.Bytes, b.Wait)
	}
	if o.SkipExisting && o.SkipUnchanged {
		return insitu.Errorf(insitu.InvalidArgument, "pipeline: SkipExisting and SkipUnchanged are both set; set one")
	}
	if o.SkipUnchanged && o.TransformID == "" {
		return insitu.Errorf(insitu.InvalidArgument, "pipeline: SkipUnchanged needs a TransformID: the default, the transform's Go type, tells neither two transforms of one type (two TransformFuncs, two transform servers) nor two versions of one apart, so a changed transform's outputs would be kept")
	}
	return nil
}

// ReplaceExt returns a Rename function that replaces the extension from
// (matched without regard to case) at the end of a key with to, and appends
// to when the key does not end in from, so an output never takes the name
// of its input. For example ReplaceExt(".flac", ".wav") renames
// "a/b.FLAC" to "a/b.wav" and "notes.txt" to "notes.txt.wav".
func ReplaceExt(from, to string) func(insitu.Name) (insitu.Name, error) {
	return func(n insitu.Name) (insitu.Name, error) {
		k := n.Key
		if len(k) >= len(from) && strings.EqualFold(k[len(k)-len(from):], from) {
			k = k[:len(k)-len(from)]
		}
		out := insitu.Name{Bucket: n.Bucket, Key: k + to}
		return out, out.Validate()
	}
}
