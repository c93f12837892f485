package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/cespare/xxhash/v2"
	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/wire"
	"github.com/insitu-data/insitu/locality"
	"github.com/insitu-data/insitu/transform"
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
		return readChain{}, nil
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
		if _, ok := n.transforms[name]; !ok {
			return readChain{}, insitu.Errorf(insitu.NotFound, "transform %q is not known on node %s (known: %s)", name, n.id, n.transformNames())
		}
	}
	return readChain{names: names, args: args}, nil
}

// transformNames lists the names of the node's transforms, sorted, for
// errors.
func (n *Node) transformNames() string {
	names := make([]string, 0, len(n.transforms))
	for name := range n.transforms {
		names = append(names, name)
	}
	slices.Sort(names)
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// transform returns the one transform that runs the chain's stages in
// order, streaming from one to the next.
func (n *Node) chainTransform(rc readChain) insitu.Transform {
	if len(rc.names) == 1 {
		return n.transforms[rc.names[0]]
	}
	stages := make([]insitu.Transform, len(rc.names))
	for i, name := range rc.names {
		stages[i] = named{name: name, t: n.transforms[name]}
	}
	return transform.Chain(stages...)
}

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

// openRead opens name's object on this node, which must own it under m,
// for a read: its bytes as stored when rc names no transform, else the
// output of rc's chain over them, made as it is read. The chain's first
// stage gets the object's file opened once through the store, as Body,
// and as a Path naming that open file, as an embedded job's transform
// does. The reader's Read returns the chain's error, if it fails, in
// place of io.EOF; Close stops the chain and waits for it. The Object is
// the stored one's (its Size is the stored size, not the output's).
func (n *Node) openRead(ctx context.Context, m *locality.Map, name insitu.Name, rc readChain) (io.ReadCloser, insitu.Object, error) {
	f, obj, err := n.open(ctx, m, name)
	if err != nil || len(rc.names) == 0 {
		return f, obj, err
	}
	in := &insitu.Input{Object: obj, Args: rc.args, Body: f}
	in.Path = fdPath(f)
	t := n.chainTransform(rc)
	ctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	r := &transformedReader{pr: pr, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		defer f.Close()
		var err error
		defer func() {
			if v := recover(); v != nil {
				err = &insitu.Error{Code: insitu.Internal, Name: name, Msg: fmt.Sprintf("the transform panicked: %v", v)}
				n.log.Error("read transform panicked", "object", name.String(), "panic", v)
			}
			pw.CloseWithError(n.readError(name, in.Path, err))
		}()
		err = t.Transform(ctx, in, pw)
	}()
	return r, obj, nil
}

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

// transformedReader reads a chain's output as it is made.
type transformedReader struct {
	pr     *io.PipeReader
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

func (r *transformedReader) Read(p []byte) (int, error) { return r.pr.Read(p) }

// Close stops the chain, if it still runs, and waits for it to return.
func (r *transformedReader) Close() error {
	r.once.Do(func() {
		r.cancel()
		r.pr.CloseWithError(errReadClosed)
		<-r.done
	})
	return nil
}

var errReadClosed = errors.New("node: the read was closed")

// firstChunk is how much of a transformed read's output a GET waits for
// before it answers: an error before it is a plain error response.
const firstChunk = 32 << 10

// serveTransformedGet answers a GET through the chain rc. An error before
// the first byte (an unknown transform, an object the transform
// rejects at once) is the usual status and code. After it, the status is
// 200 and sent: the response then ends with the trailers Insitu-Checksum
// (the XXH64 of the body sent, on success) or Insitu-Error-Code and
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
	body, obj, err := n.openRead(r.Context(), m, name, rc)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	defer body.Close()
	buf := make([]byte, firstChunk)
	k, err := io.ReadFull(body, buf)
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		err = nil // all of it, in the first chunk
	case err != nil:
		n.writeError(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set(wire.Owner, n.id)
	h.Set("Trailer", wire.Checksum+", "+wire.ErrorCode+", "+wire.ErrorMessage)
	if obj.Origin != "" {
		h.Set(wire.Origin, obj.Origin)
	}
	w.WriteHeader(http.StatusOK)
	sum := xxhash.New()
	out := io.MultiWriter(w, sum)
	if _, werr := out.Write(buf[:k]); werr != nil {
		return // the client is gone; body.Close stops the chain
	}
	if k == firstChunk {
		_, err = io.CopyBuffer(writerOnly{out}, body, buf)
	}
	if err != nil {
		if errors.Is(err, errReadClosed) || r.Context().Err() != nil {
			return
		}
		b := wire.Body(err)
		h.Set(wire.ErrorCode, b.Code.String())
		h.Set(wire.ErrorMessage, url.PathEscape(b.Message))
		n.log.Warn("read through transforms failed after the first byte", "object", name.String(), "err", err)
		return
	}
	h.Set(wire.Checksum, fmt.Sprintf("%016x", sum.Sum64()))
}

// writerOnly hides a writer's ReadFrom, so that io.CopyBuffer uses the
// buffer it is given.
type writerOnly struct{ io.Writer }
