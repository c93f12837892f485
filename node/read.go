package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/putcheck"
	"github.com/insitu-data/insitu/internal/wire"
	"github.com/insitu-data/insitu/locality"
	"github.com/insitu-data/insitu/transform"
	"github.com/insitu-data/insitu/transport"
)

// Limits of a read through transforms (GET ?transform=).
const (
	// MaxReadStages is the most transforms a read's chain names.
	MaxReadStages = 8
	// MaxReadArgs is the longest args string of a read, in bytes.
	MaxReadArgs = 4096
)

// readChain is what a read asks of an object's bytes: the transforms
// they go through, in order, with the args every stage gets; no names
// means the bytes as stored.
type readChain struct {
	names []string
	args  string
}

// parseReadChain parses the transform and args of a read: a chain
// "a,b,c" of the names of transforms the node knows, each once, at most
// MaxReadStages of them, and args of at most MaxReadArgs bytes. Anything
// else is an InvalidArgument error that says what.
func (n *Node) parseReadChain(chain, args string) (readChain, error) {
	if chain == "" {
		if args != "" {
			return readChain{}, insitu.Errorf(insitu.InvalidArgument, "args given without a transform")
		}
		return readChain{}, nil // the bytes as stored
	}
	if len(args) > MaxReadArgs {
		return readChain{}, insitu.Errorf(insitu.InvalidArgument, "args of %d bytes; at most %d", len(args), MaxReadArgs)
	}
	names := strings.Split(chain, ",")
	if len(names) > MaxReadStages {
		return readChain{}, insitu.Errorf(insitu.InvalidArgument, "a chain of %d transforms; at most %d", len(names), MaxReadStages)
	}
	for i, name := range names {
		switch {
		case name == "":
			return readChain{}, insitu.Errorf(insitu.InvalidArgument, "transform chain %q: stage %d has no name", chain, i+1)
		case slices.Contains(names[:i], name):
			return readChain{}, insitu.Errorf(insitu.InvalidArgument, "transform chain %q: %q is named twice", chain, name)
		}
		if !n.knowsTransform(name) {
			return readChain{}, insitu.Errorf(insitu.NotFound, "unknown transform %q on node %s (it knows: %s)", name, n.id, n.transformNames())
		}
	}
	return readChain{names: names, args: args}, nil
}

// resolve returns the one transform that runs the chain's stages in
// order for a read of in, streaming from one to the next, and the
// function that releases what it holds. When the first stage is a
// transform server, in.Path is set to the object's file in the store if
// it reads local files (the server confines it to its Roots), else
// cleared: the open file's /proc path is not for another process.
func (n *Node) resolve(ctx context.Context, rc readChain, in *insitu.Input) (insitu.Transform, func(), error) {
	t, first, release, err := n.chainOf(ctx, rc)
	if err != nil {
		return nil, nil, err
	}
	if first.Mode != "" {
		in.Path = ""
		if first.LocalFile {
			in.Path = n.storePath(in.Name)
		}
	}
	return t, release, nil
}

// chainOf returns the one transform that runs rc's stages in order, the
// registration of its first stage (Mode "" for a builtin), and the
// function that releases the clients of the registered servers it holds.
// An hpull server after the first stage is refused (see laterStage).
func (n *Node) chainOf(ctx context.Context, rc readChain) (insitu.Transform, locality.TransformSpec, func(), error) {
	stages := make([]insitu.Transform, 0, len(rc.names))
	var first locality.TransformSpec
	var releases []func()
	release := func() {
		for _, r := range releases {
			r()
		}
	}
	for i, name := range rc.names {
		t, spec, rel, err := n.lookupTransform(ctx, name)
		if err == nil && i > 0 {
			err = laterStage(name, spec)
		}
		if err != nil {
			if rel != nil {
				rel()
			}
			release()
			return nil, first, nil, err
		}
		releases = append(releases, rel)
		if i == 0 {
			first = spec
		}
		stages = append(stages, named{name: name, t: t})
	}
	if len(stages) == 1 {
		return stages[0].(named).t, first, release, nil
	}
	return transform.Chain(stages...), first, release, nil
}

// laterStage refuses a transform server that cannot be a chain's stage
// after the first: one reached with hpull fetches the stored object by
// its URL, so it would transform the input, not the stage before it.
func laterStage(name string, spec locality.TransformSpec) error {
	if spec.Mode == transport.HPull.String() {
		return insitu.Errorf(insitu.InvalidArgument, "transform %q is reached with hpull, which fetches the stored object: it can only be a chain's first stage", name)
	}
	return nil
}

// acquireRead takes a slot for a transformed read, waiting at most
// readSlotWait; a node with every slot taken is Unavailable.
func (n *Node) acquireRead(ctx context.Context) (func(), error) {
	t := time.NewTimer(readSlotWait)
	defer t.Stop()
	select {
	case n.readSlots <- struct{}{}:
		return func() { <-n.readSlots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.C:
		return nil, insitu.Errorf(insitu.Unavailable, "node %s runs %d reads through transforms already, its limit (Options.MaxTransformedReads); try again later", n.id, cap(n.readSlots))
	}
}

// readSlotWait is how long a transformed read waits for a slot.
const readSlotWait = 5 * time.Second

// named gives a transform a name for errors: a chain names its failing
// stage with it.
type named struct {
	name string
	t    insitu.Transform
}

func (t named) Transform(ctx context.Context, in *insitu.Input, out io.Writer) error {
	return t.t.Transform(ctx, in, out)
}

func (t named) String() string { return t.name }

// readError returns the error of a read's chain as the read reports it:
// named, with the open file's path replaced by the object's, and an
// ErrSkip (a transform that drops the object) as InvalidArgument.
func (n *Node) readError(name insitu.Name, path string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, insitu.ErrSkip):
		return &insitu.Error{Code: insitu.InvalidArgument, Name: name, Msg: "the transform skipped the object: it has no output", Err: err}
	}
	if path != "" && strings.Contains(err.Error(), path) {
		err = &relativeError{err: err, msg: strings.ReplaceAll(err.Error(), path, relPath(name))}
	}
	return insitu.WithName(err, name)
}

// firstChunk is how much of a transformed read's output a GET holds
// before it answers: an error before then is a plain error response, and
// an output that fits is sent with its length.
const firstChunk = 32 << 10

// chunkPool holds the first-chunk buffers of transformed GETs.
var chunkPool = sync.Pool{New: func() any { b := make([]byte, 0, firstChunk); return &b }}

// serveTransformedGet answers a GET through the chain rc, run on this
// goroutine, writing into the response as it goes. The output's first
// firstChunk bytes are held: a chain that fails before it has made more
// is answered with its status and code, and an output that fits is sent
// whole with its Content-Length and Insitu-Checksum (XXH64) headers.
// Past it, the status is 200 and sent, and the chunked body ends with the
// trailers Insitu-Checksum (on success) or Insitu-Error-Code and
// Insitu-Error-Message (on failure), so a client tells a whole body from
// a cut one. See PROTOCOL.md ("Reading through transforms").
func (n *Node) serveTransformedGet(w http.ResponseWriter, r *http.Request, m *locality.Map, name insitu.Name, rc readChain) {
	if r.Method == http.MethodHead {
		n.writeError(w, r, insitu.Errorf(insitu.InvalidArgument, "HEAD cannot tell a transformed object's size: GET it"))
		return
	}
	if r.Header.Get("Range") != "" {
		n.writeError(w, r, insitu.Errorf(insitu.InvalidArgument, "a read through transforms cannot take a Range"))
		return
	}
	ctx := r.Context()
	releaseSlot, err := n.acquireRead(ctx)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	defer releaseSlot()
	f, obj, err := n.open(ctx, m, name)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	in := &insitu.Input{Object: obj, Args: rc.args, Body: f}
	in.Path = fdPath(f)
	t, release, err := n.resolve(ctx, rc, in)
	if err != nil {
		f.Close()
		n.writeError(w, r, err)
		return
	}
	defer release()
	bp := chunkPool.Get().(*[]byte)
	out := &readWriter{w: w, buf: (*bp)[:0], sum: xxhash.New(), header: func(h http.Header) {
		h.Set("Content-Type", "application/octet-stream")
		h.Set(wire.Owner, n.id)
		h.Set(wire.Version, obj.Version) // the input's
		if obj.Origin != "" {
			h.Set(wire.Origin, obj.Origin)
		}
	}}
	err = n.runRead(ctx, name, t, in, out)
	f.Close()
	err = n.readError(name, in.Path, err)
	defer func() {
		*bp = out.buf[:0]
		chunkPool.Put(bp)
	}()
	switch {
	case !out.sent && err != nil:
		n.writeError(w, r, err)
	case !out.sent:
		// The whole output fits the first chunk: it goes with its length.
		h := w.Header()
		out.header(h)
		h.Set("Content-Length", strconv.Itoa(len(out.buf)))
		h.Set(wire.Checksum, putcheck.Hex(xxhash.Sum64(out.buf)))
		w.WriteHeader(http.StatusOK)
		w.Write(out.buf)
	case out.err != nil || ctx.Err() != nil:
		// The client is gone or stopped reading: nothing to tell it.
	case err != nil:
		b := wire.Body(err)
		w.Header().Set(wire.ErrorCode, b.Code.String())
		w.Header().Set(wire.ErrorMessage, url.PathEscape(b.Message))
		n.log.Warn("read through transforms failed after its first bytes were sent", "object", name.String(), "err", err)
	default:
		w.Header().Set(wire.Checksum, putcheck.Hex(out.sum.Sum64()))
	}
}

// runRead runs t over in into out, a panic being an Internal error.
func (n *Node) runRead(ctx context.Context, name insitu.Name, t insitu.Transform, in *insitu.Input, out io.Writer) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &insitu.Error{Code: insitu.Internal, Name: name, Msg: fmt.Sprintf("the transform panicked: %v", v)}
			n.log.Error("read transform panicked", "object", name.String(), "panic", v)
		}
	}()
	return t.Transform(ctx, in, out)
}

// readWriter is the output of a transformed GET: it holds the first
// firstChunk bytes, then sends the status and headers (with the
// trailers declared) and writes through, summing what it sends.
type readWriter struct {
	w      http.ResponseWriter
	header func(http.Header) // sets the headers of a 200
	buf    []byte
	sum    *xxhash.Digest
	sent   bool  // the status is sent
	err    error // the first error writing the response
}

func (rw *readWriter) Write(p []byte) (int, error) {
	if rw.err != nil {
		return 0, rw.err
	}
	if !rw.sent {
		if len(rw.buf)+len(p) <= firstChunk {
			rw.buf = append(rw.buf, p...)
			return len(p), nil
		}
		h := rw.w.Header()
		rw.header(h)
		h.Set("Trailer", wire.Checksum+", "+wire.ErrorCode+", "+wire.ErrorMessage)
		rw.w.WriteHeader(http.StatusOK)
		rw.sent = true
		if len(rw.buf) > 0 {
			rw.sum.Write(rw.buf)
			if _, err := rw.w.Write(rw.buf); err != nil {
				rw.err = err
				return 0, err
			}
		}
	}
	rw.sum.Write(p)
	k, err := rw.w.Write(p)
	if err != nil {
		rw.err = err
	}
	return k, err
}
