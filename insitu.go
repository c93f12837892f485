package insitu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
)

// Object describes one object a [Source] lists.
type Object struct {
	Name Name `json:"name"`
	// Size is the object's length in bytes, or -1 when unknown.
	Size int64 `json:"size"`
	// Owner is the ID of the storage node that owns the object, or "" when
	// unknown (an S3 bucket, a local directory).
	Owner string `json:"owner,omitempty"`
	// Path is the object's file on this machine's disk when the bytes are
	// local, else "". A transform that can read a file (such as ffmpeg) may
	// use it instead of Input.Body and save a copy.
	Path string `json:"path,omitempty"`
	// Version identifies the content of the object's current bytes, as
	// the source sees them: an ETag, or the size and modification time of
	// a file. Another version means other bytes (the same bytes may show
	// under another version, as when a file is touched). "" when the
	// source cannot tell. Sources set it in listings and Stat; a run that
	// skips unchanged outputs records it in each output's [Origin].
	Version string `json:"version,omitempty"`
	// Origin is, in an object a sink's Stat describes, the text of the
	// [Origin] recorded with it ([Origin.String]); "" when none is
	// recorded or the sink cannot record one. Sources leave it "".
	Origin string `json:"origin,omitempty"`
}

// Input is what a [Transform] gets for one object.
type Input struct {
	Object
	// Args are the job's arguments, opaque to insitu, delivered unchanged
	// in every mode and over every transport.
	Args string
	// Body reads the object's bytes. It is opened lazily on the first Read,
	// so a transform that only uses Path never opens the object. The caller
	// closes it after Transform returns.
	Body io.Reader
}

// Transform turns one object into one output.
//
// Transform reads in.Body (or in.Path) and streams the output to out; it
// must not buffer whole objects when it can stream, and must not keep in or
// out after it returns. It is called concurrently for different objects.
// It returns [ErrSkip] to drop the object (nothing is written, and the
// object counts as skipped), and must return soon after ctx is done.
type Transform interface {
	Transform(ctx context.Context, in *Input, out io.Writer) error
}

// TransformFunc adapts a function to [Transform].
type TransformFunc func(ctx context.Context, in *Input, out io.Writer) error

// Transform calls f(ctx, in, out).
func (f TransformFunc) Transform(ctx context.Context, in *Input, out io.Writer) error {
	return f(ctx, in, out)
}

// ErrSkip is returned by a [Transform] to drop an object: nothing is
// written and the object counts as skipped, not failed.
var ErrSkip = errors.New("insitu: object skipped by the transform")

// Identity is the transform that copies its input unchanged.
var Identity Transform = TransformFunc(func(_ context.Context, in *Input, out io.Writer) error {
	_, err := io.Copy(out, in.Body)
	return err
})

// Source lists objects and opens them. A Source is safe for concurrent use.
type Source interface {
	// Objects lists the source's objects in a deterministic order. The
	// iteration stops when the consumer stops; nothing is left running. An
	// error for one entry is yielded with a zero Object and the listing
	// goes on where it can; an error that ends the listing is the last
	// thing yielded.
	Objects(ctx context.Context) iter.Seq2[Object, error]
	// Open returns a reader of the object's bytes, which the caller must
	// close. It works with an Object that has only its Name set. A missing
	// object is a [NotFound] error.
	Open(ctx context.Context, obj Object) (io.ReadCloser, error)
}

// Sink stores outputs. A Sink is safe for concurrent use.
type Sink interface {
	// Put stores the bytes of r under name. size is the length of r, or -1
	// when unknown; a known size that r does not match, or a size below
	// -1, is an [InvalidArgument] error. The object becomes visible, whole, only
	// after r returns io.EOF; if r fails, ctx ends or anything else goes
	// wrong, nothing is left under the name (an older object there stays).
	// A nil r is an [InvalidArgument] error; an empty object is an empty
	// reader (such as strings.NewReader("")).
	Put(ctx context.Context, name Name, r io.Reader, size int64) (PutResult, error)
	// Stat returns the stored object's description, or a [NotFound] error.
	Stat(ctx context.Context, name Name) (Object, error)
}

// ValidatePut returns the [InvalidArgument] error that the [Sink] contract
// requires of Put for a nil r or a size below -1, naming name, or nil.
// Sink implementations call it before anything else; what makes a valid
// name is theirs to check.
func ValidatePut(name Name, r io.Reader, size int64) error {
	switch {
	case r == nil:
		return &Error{Code: InvalidArgument, Name: name, Msg: "nil reader"}
	case size < -1:
		return &Error{Code: InvalidArgument, Name: name, Msg: fmt.Sprintf("size %d; want the length, or -1 when unknown", size)}
	}
	return nil
}

// PutResult describes a stored object.
type PutResult struct {
	Name Name  `json:"name"`
	Size int64 `json:"size"`
	// Checksum is the XXH64 (seed 0) of the stored bytes as 16 lowercase
	// hex digits, or "" when the sink does not compute one.
	Checksum string `json:"checksum,omitempty"`
	// Owner is the node that stored the object, or "" for sinks without nodes.
	Owner string `json:"owner,omitempty"`
}

// Destination is where an output can be put directly, in one HTTP PUT of
// its bytes, by whoever produces them: normally the object endpoint of the
// storage node that owns the output's name. See [DirectSink] and
// [DirectTransform].
type Destination struct {
	Name Name `json:"name"`
	// URL is the absolute URL of the PUT.
	URL string `json:"url"`
	// Token is the bearer token the PUT must carry; "" for none.
	Token string `json:"token,omitempty"`
	// Origin is the text of the output's [Origin] ([Origin.String]), or
	// "" for none. Whoever puts to the destination sends it as the PUT's
	// request header Insitu-Origin, and a destination that records
	// origins (a storage node) stores it with the bytes. The runner sets
	// it; a [DirectSink] leaves it "".
	Origin string `json:"origin,omitempty"`
}

// DirectSink is a Sink that can tell where an output should be put, so
// that the transform's side can send it there itself ("direct put")
// instead of handing the bytes back to the runner.
type DirectSink interface {
	Sink
	// Destination returns where name should be put. A sink that cannot
	// place this name returns an error, and the runner falls back to Put.
	Destination(ctx context.Context, name Name) (Destination, error)
}

// NearSink is a DirectSink that can keep an output on the node that holds
// its input: a store whose writer chooses where new bytes go (SeaweedFS's
// volume servers, say), unlike insitu's nodes, where a name's owner is
// fixed by placement. The runner asks a NearSink, rather than
// Destination, where each output of a direct put goes.
type NearSink interface {
	DirectSink
	// DestinationNear returns a destination that stores name on the node
	// that holds near, near.Owner (near is the input the output is made
	// of); with no Owner, or one the sink cannot place on, where
	// Destination would.
	DestinationNear(ctx context.Context, name Name, near Object) (Destination, error)
}

// DirectTransform is a Transform that can deliver its output to a
// Destination itself, such as a client of a remote transform server.
type DirectTransform interface {
	Transform
	// TransformTo transforms in and puts the output to dst, returning what
	// the destination stored. Like Sink.Put, it is all or nothing.
	TransformTo(ctx context.Context, in *Input, dst Destination) (PutResult, error)
}

// BatchTransform is a Transform that can also transform many objects in
// one call: one whose cost per call (starting a process, loading a model)
// dwarfs its cost per object. ffmpeg's transcoders are one: a single
// ffmpeg process converts many files for little more than the price of
// one start.
//
// Callers that see a BatchTransform hand it objects in groups: the
// pipeline's runner (see pipeline.BatchOptions), a storage node's jobs
// (which run through that runner) and a transform server, which groups
// requests that arrive together. Each output is still stored on its own,
// whole or not at all. One bad input must not sink its batch: when
// TransformBatch fails, the caller transforms each input of the batch
// alone with Transform, so that exactly the bad ones fail.
type BatchTransform interface {
	Transform
	// TransformBatch transforms ins together and returns their outputs:
	// outs[i] reads the whole output of ins[i], and len(outs) is
	// len(ins). The inputs are as Transform gets them (Body, and Path
	// where the object is a local file); ins may hold a single input.
	//
	// It returns only once every output is complete, so nothing is
	// stored before the batch has succeeded; the outputs must not read
	// the inputs (whose bodies are closed once it returns) or need ctx
	// afterwards. The caller reads each output it wants and closes every
	// one, read or not, which releases what it holds (a temporary file).
	// An error reading an output fails that object alone.
	//
	// A non-nil error fails the batch as a whole; no outputs are
	// returned, and whatever the call made is released before it
	// returns. The caller then transforms each input alone with
	// Transform (unless ctx is done), so the error need not say which
	// input was bad. ErrSkip is not an answer for a batch.
	TransformBatch(ctx context.Context, ins []*Input) (outs []io.ReadCloser, err error)
}
