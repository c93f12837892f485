package transport

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/wire"
)

// handleTransform serves hpush (PUT) and hpull (GET) requests.
func (s *Server) handleTransform(w http.ResponseWriter, r *http.Request) {
	req, err := parseHeaders(r.PathValue("bucket"), r.PathValue("key"), r.Header, r.ContentLength)
	if err != nil {
		wire.WriteError(w, err)
		return
	}
	name := req.name()
	switch {
	case r.Method == http.MethodGet && req.hasBody():
		wire.WriteError(w, insitu.WithName(insitu.Errorf(insitu.InvalidArgument,
			"an hpull request (GET) names its input with the %s or %s header", wire.SourceURL, wire.Path), name))
		return
	case !req.hasBody() && r.ContentLength > 0:
		wire.WriteError(w, insitu.WithName(insitu.Errorf(insitu.InvalidArgument,
			"a request that names its input by %s or %s has an empty body", wire.SourceURL, wire.Path), name))
		return
	}
	p, err := s.prepare(req)
	if err != nil {
		wire.WriteError(w, err)
		return
	}
	if err := s.begin(); err != nil {
		wire.WriteError(w, insitu.WithName(err, name))
		return
	}
	defer s.end()

	rc := http.NewResponseController(w)
	ctx, cancel := s.objectContext(r.Context(), req)
	defer cancel()
	var body io.Reader
	if req.hasBody() {
		// Stream the output while the input is still arriving.
		if err := rc.EnableFullDuplex(); err != nil {
			s.log.Debug("transport: no full duplex; the output waits for the input", "err", err)
		}
		// A full-duplex body left unread makes the server panic when it
		// reads the next request on the connection (golang/go#68560).
		defer r.Body.Close()
		rb := newRequestBody(ctx, r.Body, rc, s.opts.IOTimeout)
		defer rb.close()
		body = rb
	}
	out := &responseWriter{w: w, rc: rc, s: s}
	res, err := s.serveObject(ctx, p, body, out)
	if rb, ok := body.(*requestBody); ok && rb.stalled != nil && insitu.CodeOf(err) == insitu.Canceled {
		// The stall canceled the request's context (see requestBody.read).
		err = insitu.WithName(rb.stalled, name)
	}
	switch {
	case err == insitu.ErrSkip && !out.started:
		w.Header().Set(wire.Skipped, "true")
		w.WriteHeader(http.StatusNoContent)
	case err == insitu.ErrSkip:
		w.Header().Set(wire.Skipped, "true")
	case err != nil && !out.started:
		s.logFailure(name, err)
		wire.WriteError(w, err)
	case err != nil:
		s.logFailure(name, err)
		b := wire.Body(err)
		w.Header().Set(wire.ErrorCode, b.Code.String())
		w.Header().Set(wire.ErrorMessage, url.PathEscape(b.Message))
	case p.put != nil:
		b, _ := json.Marshal(res)
		w.Header().Set("Content-Type", "application/json")
		w.Write(append(b, '\n'))
	case !out.started:
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
	}
}

// logFailure logs a failed object: at Debug level, since the client gets
// the error too, except for Internal errors.
func (s *Server) logFailure(name insitu.Name, err error) {
	if insitu.CodeOf(err) == insitu.Internal {
		s.log.Error("transport: object failed", "object", name.String(), "err", err)
		return
	}
	s.log.Debug("transport: object failed", "object", name.String(), "err", err)
}

// trailers are the trailers a streamed hpush/hpull response may end with.
var trailers = strings.Join([]string{wire.ErrorCode, wire.ErrorMessage, wire.Skipped}, ", ")

// responseWriter sends the 200 status only with the first output byte, so
// that a transform failing before it writes gets a proper error status.
// Each write must complete within IOTimeout.
type responseWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	s       *Server
	started bool
}

func (o *responseWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if !o.started {
		o.started = true
		h := o.w.Header()
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Trailer", trailers)
		o.w.WriteHeader(http.StatusOK)
	}
	o.s.extendWrite(o.rc)
	n, err := o.w.Write(p)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return n, insitu.Errorf(insitu.Unavailable, "sending the output: the client took nothing for %v", o.s.opts.IOTimeout)
		}
		return n, insitu.Errorf(insitu.Unavailable, "sending the output: %w", err)
	}
	return n, nil
}

// requestBody is the input of an hpush request. Each Read must bring
// bytes within IOTimeout (the connection's read deadline, set before each
// Read), and the end of the object's context ends a Read in progress; both
// are errors with a code. ready reads the first bytes ahead, before the
// request takes a slot.
type requestBody struct {
	ctx context.Context
	r   io.Reader
	rc  *http.ResponseController
	d   time.Duration

	buf     *[]byte // holds head
	head    []byte  // read by ready, not yet by Read
	err     error   // the error after head
	stalled error   // the error of a Read that waited IOTimeout

	mu   sync.Mutex
	done bool // the body ended: its read deadline is cleared for good
	stop func() bool
}

var readyPool = sync.Pool{New: func() any { b := make([]byte, readyBytes); return &b }}

func newRequestBody(ctx context.Context, r io.Reader, rc *http.ResponseController, d time.Duration) *requestBody {
	b := &requestBody{ctx: ctx, r: r, rc: rc, d: d}
	b.stop = context.AfterFunc(ctx, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if !b.done {
			b.rc.SetReadDeadline(time.Now()) // ends a Read in progress
		}
	})
	return b
}

// ready reads up to n bytes ahead (at most readyBytes), or to the end.
func (b *requestBody) ready(n int) error {
	bp := readyPool.Get().(*[]byte)
	buf := (*bp)[:min(n, len(*bp))]
	k := 0
	for k < len(buf) {
		m, err := b.read(buf[k:])
		k += m
		if err == io.EOF {
			b.err = io.EOF
			break
		}
		if err != nil {
			readyPool.Put(bp)
			return err
		}
	}
	b.buf, b.head = bp, buf[:k]
	return nil
}

func (b *requestBody) Read(p []byte) (int, error) {
	if len(b.head) > 0 {
		n := copy(p, b.head)
		b.head = b.head[n:]
		if len(b.head) == 0 {
			b.release()
		}
		return n, nil
	}
	if b.err != nil {
		return 0, b.err
	}
	return b.read(p)
}

func (b *requestBody) read(p []byte) (int, error) {
	b.rc.SetReadDeadline(time.Now().Add(b.d))
	if b.ctx.Err() != nil { // after the deadline is set: see newRequestBody
		return 0, context.Cause(b.ctx)
	}
	n, err := b.r.Read(p)
	switch {
	case err == nil:
	case err == io.EOF:
		b.end()
	case errors.Is(err, os.ErrDeadlineExceeded) && (b.ctx.Err() == nil || context.Cause(b.ctx) == context.Canceled):
		// The IOTimeout deadline passed. (The end of the object's context
		// sets a deadline too, but with a cause of its own; net/http
		// cancels the request's context, plainly, on any read error.)
		err = insitu.Errorf(insitu.DeadlineExceeded, "no input from the client for %v", b.d)
		b.stalled = err
	case b.ctx.Err() != nil:
		err = context.Cause(b.ctx)
	}
	return n, err
}

// end clears the read deadline once the body is read: net/http then reads
// the connection in the background, and a deadline passing there would
// cancel the request.
func (b *requestBody) end() {
	b.mu.Lock()
	b.done = true
	b.mu.Unlock()
	b.rc.SetReadDeadline(time.Time{})
}

func (b *requestBody) release() {
	if b.buf != nil {
		readyPool.Put(b.buf)
		b.buf, b.head = nil, nil
	}
}

// close releases the body's buffer and its watch on the context.
func (b *requestBody) close() {
	b.stop()
	b.release()
}
