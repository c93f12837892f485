package transport

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/sourcegraph/conc/panics"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/fserr"
	"github.com/insitu-data/insitu/internal/wire"
	"github.com/insitu-data/insitu/locality"
)

// ServerOptions configures a [Server]. The zero value (or nil) gives the
// defaults each field documents.
type ServerOptions struct {
	// MaxConcurrent bounds the objects transformed at once, over all
	// transports and connections; more wait for a slot (their deadline
	// running). A request takes a slot only once its work can start: a
	// local file once opened, an input that travels once its first 64 KiB
	// (or all of it, when shorter) arrived, a source URL at once; so a
	// client whose input is slow to come holds no slot. A batch call (see
	// Batch) takes one slot for all of its objects. Default:
	// 4 × GOMAXPROCS.
	MaxConcurrent int
	// MaxObjectSize bounds an input's length in bytes; a longer one fails
	// with [insitu.TooLarge]. Default 0: no limit.
	MaxObjectSize int64
	// Timeout bounds the time spent on one object, from its request to its
	// last output byte (the wait for its input and for a slot included);
	// past it the object fails with [insitu.DeadlineExceeded]. A client
	// may ask for a shorter one per request. Default [DefaultTimeout].
	Timeout time.Duration
	// IOTimeout bounds every wait of the server on a peer: each write to
	// a client (a WebSocket frame, a piece of an HTTP response), each wait
	// for more of a client's input (a DATA frame, the next bytes of a
	// request body) and for a client's credit, and, through its own HTTP
	// client, each dial, each write of a direct put, the wait for a
	// destination's or a source's answer and each wait for a source's next
	// bytes. A peer that makes no progress for this long fails the object
	// with [insitu.DeadlineExceeded] (a WebSocket write that does not
	// complete closes the whole connection, which cannot be used after a
	// half-written frame). A transform that computes without reading or
	// writing is not bounded by it, only by Timeout. Default
	// [DefaultIOTimeout].
	IOTimeout time.Duration
	// IdleTimeout closes a WebSocket connection that has carried no
	// request and no frame for this long (with status 1000), so that an
	// idle or half-open peer holds nothing for ever. Keep it above the
	// clients' [DialOptions.IdleTimeout], so that a client retires its
	// idle connections first. Default [DefaultIdleTimeout].
	IdleTimeout time.Duration
	// Roots are the directories local-file input may come from: a request's
	// path, once cleaned, must be inside one of them (as given, or as its
	// symbolic links resolve), and is then opened once, through an os.Root
	// of that directory (no link can lead out of it), without blocking,
	// and on Linux without following a link at its last element; the
	// transform gets that open file, and on Linux an Input.Path that names
	// it (see docs/PROTOCOL.md, Local files). Each must exist ([NewServer]
	// fails otherwise); NewServer opens them, and they stay open for the
	// Server's life. Default: none, and local-file input is refused.
	Roots []string
	// HTTPClient makes the direct-put requests and the hpull fetches.
	// Default: a client with a keep-alive pool of twice MaxConcurrent
	// connections per host (an object may fetch from and put to one node
	// at once), times Batch.Size when the transform takes batches (a
	// batch holds all its inputs open at once; a client given here needs
	// as many), that follows no redirects (a redirect would escape
	// AllowPut and AllowSource; a client given here should refuse them
	// too), and that bounds each dial, each write on a connection and the
	// wait for a response's header by IOTimeout. A client given here
	// brings its own bounds; the server still bounds each wait for a
	// source's next bytes by IOTimeout.
	HTTPClient *http.Client
	// Secret authenticates every request but GET /health: each must carry
	// a token of this secret that allows it (see [locality.Secret.Verify]),
	// or gets 401. In a cluster, it is the transform secret of the node
	// the server is next to ([locality.Secret.TransformSecret]), never the
	// cluster's: with it the server can check its clients but cannot make
	// a token that a node or another node's server accepts; it fetches and
	// puts with the object tokens each request carries. Default: the zero Secret, no authentication.
	Secret locality.Secret
	// AllowPut reports whether the output may be put to u, the direct-put
	// destination a request names; a refused destination fails the object
	// with [insitu.InvalidArgument] before anything is sent. Default:
	// [LoopbackOnly].
	AllowPut func(u *url.URL) bool
	// AllowSource reports whether the input may be fetched from u, the
	// source URL of an hpull request; a refused source fails the object
	// with [insitu.InvalidArgument]. Default: [LoopbackOnly].
	AllowSource func(u *url.URL) bool
	// NodeMap, when set, confines direct puts and hpull fetches to the
	// storage nodes of a cluster: a request's destination and source must
	// be object URLs (<node URL>/v1/objects/...) of nodes of the map it
	// returns, which is asked for each request so that it follows map
	// changes; another URL fails the object with [insitu.InvalidArgument]
	// saying that it is not a node of the map, before any connection is
	// made. With NodeMap set, AllowPut and AllowSource default to allowing
	// every host (the map decides), and still apply when given. A
	// transform server next to a storage node sets it to the node's Map
	// method (package node). Default: nil, no map check.
	NodeMap func() *locality.Map
	// Window is the WebSocket receive window of one stream: the bytes of
	// input a client may send ahead of the transform's reading. Default
	// 256 KiB; a value under 64 KiB is raised to 64 KiB, one over 64 MiB
	// lowered to 64 MiB.
	Window int
	// MaxStreams bounds the objects one WebSocket connection carries at
	// once, so a connection holds at most MaxStreams × Window bytes of
	// input (in buffers of at most about twice that). Default 128.
	MaxStreams int
	// Logger receives the server's log records: a panic of the transform
	// and an object that failed with [insitu.Internal] at Error level,
	// protocol errors at Warn, other failures at Debug. Default: none (a
	// discarding logger).
	Logger *slog.Logger
	// Batch bounds the batches the server makes of requests that arrive
	// together, when its transform is an [insitu.BatchTransform] (see
	// [Server]); other transforms take one object per call. Default:
	// nil, the defaults of [BatchOptions]; Size 1 turns batching off.
	Batch *BatchOptions
}

// The default time limits of a [Server] and a [Client].
const (
	// DefaultTimeout is the default per-object time limit of a server
	// ([ServerOptions.Timeout]) and of a client ([DialOptions.Timeout]).
	DefaultTimeout = 10 * time.Minute
	// DefaultIOTimeout is the default bound on each wait on a peer
	// ([ServerOptions.IOTimeout], [DialOptions.IOTimeout]).
	DefaultIOTimeout = 30 * time.Second
	// DefaultIdleTimeout is how long a server keeps an idle WebSocket
	// connection by default ([ServerOptions.IdleTimeout]).
	DefaultIdleTimeout = 5 * time.Minute
	// DefaultClientIdleTimeout is how long a client keeps an idle
	// WebSocket connection by default ([DialOptions.IdleTimeout]).
	DefaultClientIdleTimeout = time.Minute
)

// Default WebSocket limits.
const (
	// readyBytes is how much of an input that travels (a request body,
	// DATA frames) must have arrived, unless it ended sooner, before the
	// request takes a transform slot: a client that sends its input
	// slowly, or not at all, holds no slot while it does.
	readyBytes = 64 << 10
	// defaultWindow is the default per-stream receive window of the WebSocket transport.
	defaultWindow = 256 << 10
	// defaultMaxStreams is the default bound on the objects in flight on one WebSocket connection.
	defaultMaxStreams = 128
	// chunkSize is the largest DATA payload a sender puts in one frame
	// (chunkFor: half the peer's window, up to this). At 64 KiB, a 1 MiB
	// object took twice the system calls, and twice the frames to read,
	// of 128–256 KiB chunks (see docs/BENCHMARKS.md).
	chunkSize = 256 << 10
	// minWindow is the smallest window a peer may announce. A sender with
	// less credit than a chunk sends the chunk in pieces.
	minWindow = 64 << 10
	// maxWindow is the largest window a peer may announce.
	maxWindow = 64 << 20
)

// LoopbackOnly reports whether u's host is a loopback address (127.0.0.0/8,
// ::1) or "localhost". It is the default of [ServerOptions.AllowPut] and
// [ServerOptions.AllowSource].
func LoopbackOnly(u *url.URL) bool {
	h := u.Hostname()
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// Server serves a [insitu.Transform] over every transport: it is an
// http.Handler with its own routes (see docs/PROTOCOL.md):
//
//	GET /health                        200 while serving, 503 once shutting down
//	PUT /v1/transform/{bucket}/{key...} hpush: the bytes, or a local path
//	GET /v1/transform/{bucket}/{key...} hpull: a source URL, or a local path
//	GET /v1/stream                      the WebSocket stream
//
// Mount it at the root of an http.Server, or under a prefix with
// http.StripPrefix. A Server is safe for concurrent use.
//
// When the transform is an [insitu.BatchTransform], the server groups the
// requests that arrive together, on one connection or many and over every
// transport, into TransformBatch calls bounded by [ServerOptions.Batch];
// the protocol is the same. Only requests whose input can be read again
// are grouped: a local file and a source URL (fetched as the batch call
// first reads it). An input that travels with its request (an hpush body,
// WebSocket DATA frames) could not be given again if its batch failed,
// and is transformed alone, as by any transform. A request waits up to
// Batch.Wait for company, holding no transform slot; a batch of two or
// more takes one slot for all of them (so MaxConcurrent bounds the calls
// in flight, not the objects), a lone request is transformed alone as
// before. When TransformBatch returns, its slot is free and each request
// sends its own output on (to its client, or to its direct-put
// destination), whole or failed as with Transform. When it fails (or
// panics), each request of the batch is transformed alone with Transform,
// each in a slot of its own, so that exactly the bad inputs fail, each
// with its own error. Each request keeps its own deadline: one that ends,
// or whose client goes, while it waits or while its batch runs leaves it,
// and the batch call is canceled once every request of it has left.
type Server struct {
	t      insitu.Transform
	opts   ServerOptions
	roots  []localRoot
	sem    chan struct{}
	mux    *http.ServeMux
	log    *slog.Logger
	client *http.Client

	// ctx ends when a Shutdown gives up waiting: it cancels what is left.
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	closing  bool
	inflight sync.WaitGroup
	conns    map[*wsServerConn]struct{}
	batch    *batcher // nil: no batching

	// onObject, when set (by tests), is called as each object's work
	// begins, before it waits for its input or a slot.
	onObject func(insitu.Name)
}

// NewServer returns a Server of t with the options opts (nil: the
// defaults each field documents). It fails with [insitu.InvalidArgument]
// when t is nil, when a root in opts.Roots does not resolve to a
// directory it can open (it does not exist, say) or when a limit is
// negative (Batch's included).
func NewServer(t insitu.Transform, opts *ServerOptions) (*Server, error) {
	if t == nil {
		return nil, insitu.Errorf(insitu.InvalidArgument, "transport.NewServer: nil transform")
	}
	s := &Server{t: t, conns: make(map[*wsServerConn]struct{})}
	if opts != nil {
		s.opts = *opts
	}
	o := &s.opts
	switch {
	case o.MaxObjectSize < 0:
		return nil, insitu.Errorf(insitu.InvalidArgument, "transport.NewServer: MaxObjectSize %d is negative", o.MaxObjectSize)
	case o.Timeout < 0:
		return nil, insitu.Errorf(insitu.InvalidArgument, "transport.NewServer: Timeout %v is negative", o.Timeout)
	case o.IOTimeout < 0:
		return nil, insitu.Errorf(insitu.InvalidArgument, "transport.NewServer: IOTimeout %v is negative", o.IOTimeout)
	case o.IdleTimeout < 0:
		return nil, insitu.Errorf(insitu.InvalidArgument, "transport.NewServer: IdleTimeout %v is negative", o.IdleTimeout)
	}
	if err := o.Batch.validate(); err != nil {
		return nil, err
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.IOTimeout == 0 {
		o.IOTimeout = DefaultIOTimeout
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	roots, err := openRoots(o.Roots)
	if err != nil {
		return nil, err
	}
	s.roots = roots
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = 4 * runtime.GOMAXPROCS(0)
	}
	defaultAllow := LoopbackOnly
	if o.NodeMap != nil {
		defaultAllow = func(*url.URL) bool { return true }
	}
	if o.AllowPut == nil {
		o.AllowPut = defaultAllow
	}
	if o.AllowSource == nil {
		o.AllowSource = defaultAllow
	}
	if o.Window <= 0 {
		o.Window = defaultWindow
	}
	o.Window = min(max(o.Window, minWindow), maxWindow)
	if o.MaxStreams <= 0 {
		o.MaxStreams = defaultMaxStreams
	}
	s.log = o.Logger
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.client = o.HTTPClient
	if s.client == nil {
		// Twice the objects that can be in the slots: an object may fetch
		// its input from a node and put its output to the same node at
		// once. A batch takes one slot for all its objects, and its
		// transform may hold all their inputs open at once (ffmpeg opens
		// every input before it reads one to the end): fewer connections
		// than that and two batches each wait for the other's.
		perSlot := 1
		if _, ok := t.(insitu.BatchTransform); ok {
			perSlot = max(o.Batch.limits().Count, 1)
		}
		tr := newHTTPTransport(2*o.MaxConcurrent*perSlot, o.IOTimeout)
		tr.DialContext = wire.WriteDeadlineDialer(o.IOTimeout, o.IOTimeout)
		tr.ResponseHeaderTimeout = o.IOTimeout
		s.client = &http.Client{
			Transport: tr,
			// A redirect could lead past AllowSource and AllowPut.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	s.sem = make(chan struct{}, o.MaxConcurrent)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if bt, ok := t.(insitu.BatchTransform); ok {
		if b := o.Batch.limits(); b.Count > 1 {
			s.batch = newBatcher(s, bt, b)
		}
	}

	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /health", s.handleHealth)
	s.mux.HandleFunc("PUT /v1/transform/{bucket}/{key...}", s.authed(s.handleTransform))
	s.mux.HandleFunc("GET /v1/transform/{bucket}/{key...}", s.authed(s.handleTransform))
	s.mux.HandleFunc("GET /v1/stream", s.authed(s.handleStream))
	return s, nil
}

// ServeHTTP routes r to the endpoint it names. Each piece of a response
// is written under a deadline of IOTimeout from when it is written (the
// WebSocket endpoint clears the deadlines before the upgrade, and bounds
// each frame itself).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	s.extendWrite(rc)
	s.mux.ServeHTTP(w, r)
	s.extendWrite(rc) // what the handler left buffered goes out after it returns
}

// extendWrite sets the connection's write deadline to IOTimeout from now.
// It does nothing on a connection that was hijacked or cannot set one.
func (s *Server) extendWrite(rc *http.ResponseController) {
	rc.SetWriteDeadline(time.Now().Add(s.opts.IOTimeout))
}

// Shutdown stops accepting objects (new requests get [insitu.Unavailable])
// and waits for those in flight to finish, then closes the WebSocket
// connections. If ctx ends first, it cancels the objects left, closes the
// connections and returns ctx.Err(). A request waiting for its batch is
// in flight: Shutdown waits for the batch to gather (at most Batch.Wait)
// and run; a forced end fails the objects of a running batch with
// [insitu.Unavailable] too. Shut the http.Server that serves s
// down too (http.Server.Shutdown does not see WebSocket connections, and
// this method does not close listeners).
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()

	drained := make(chan struct{})
	go func() {
		s.inflight.Wait()
		if s.batch != nil {
			s.batch.wg.Wait() // the gatherers and batch calls, past their last request
		}
		close(drained)
	}()
	var err error
	select {
	case <-drained:
	case <-ctx.Done():
		err = ctx.Err()
		s.cancel()
	}
	s.mu.Lock()
	conns := make([]*wsServerConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.goAway()
	}
	return err
}

// errShuttingDown is the error of a request that arrives during Shutdown.
var errShuttingDown = insitu.Errorf(insitu.Unavailable, "the transform server is shutting down")

// begin counts an object in flight, unless the server is shutting down.
func (s *Server) begin() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return errShuttingDown
	}
	s.inflight.Add(1)
	return nil
}

func (s *Server) end() { s.inflight.Done() }

func (s *Server) shuttingDown() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	if s.shuttingDown() {
		wire.WriteError(w, errShuttingDown)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{"status":"ok"}` + "\n"))
}

// authed refuses a request without a token of the secret that allows it.
func (s *Server) authed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.opts.Secret.Verify(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="insitu"`)
			wire.WriteBody(w, http.StatusUnauthorized, wire.ErrorBody{
				Code:    insitu.PermissionDenied,
				Message: "missing or wrong bearer token (the server and its client need the same secret)",
			})
			return
		}
		h(w, r)
	}
}

// prepared is a request checked against the server's policy.
type prepared struct {
	*request
	root *localRoot // the local file: a root and its path inside it
	rel  string
	put  *url.URL
}

// prepare checks what a request asks against the options: the local path
// against Roots (by its text: the file is opened later, confined), the
// source against AllowSource, the destination against AllowPut. It runs
// before the request waits for its input or a slot.
func (s *Server) prepare(req *request) (*prepared, error) {
	p := &prepared{request: req}
	name := req.name()
	if req.Path != "" {
		root, rel, err := s.confine(req.Path)
		if err != nil {
			return nil, insitu.WithName(err, name)
		}
		p.root, p.rel = root, rel
	}
	if req.SourceURL != "" {
		u, _ := url.Parse(req.SourceURL) // validated
		if !s.opts.AllowSource(u) {
			return nil, insitu.WithName(insitu.Errorf(insitu.InvalidArgument,
				"source %s is not allowed by the server (ServerOptions.AllowSource)", u.Redacted()), name)
		}
		if err := s.checkNode("source", u); err != nil {
			return nil, insitu.WithName(err, name)
		}
	}
	if req.PutURL != "" {
		u, _ := url.Parse(req.PutURL) // validated
		if !s.opts.AllowPut(u) {
			return nil, insitu.WithName(insitu.Errorf(insitu.InvalidArgument,
				"direct-put destination %s is not allowed by the server (ServerOptions.AllowPut)", u.Redacted()), name)
		}
		if err := s.checkNode("direct-put destination", u); err != nil {
			return nil, insitu.WithName(err, name)
		}
		p.put = u
	}
	return p, nil
}

// readier is an input that travels from the client (an inbox, a request
// body): ready waits until n bytes of it have arrived or it ended, each
// wait for more bounded by IOTimeout and by the object's context.
type readier interface {
	io.Reader
	ready(n int) error
}

// serveObject runs the transform on one prepared request. body holds the
// input when the request carries it. The output goes to out, or to the
// request's direct-put destination, whose result it then returns.
// insitu.ErrSkip comes back as is.
//
// A transform slot is taken only once the work can start: after a local
// file was opened, after the first readyBytes of an input that travels
// arrived (or all of it, when it is shorter), at once for an input
// fetched from a source (which the server itself then reads, in the slot).
//
// ctx is the object's context, from objectContext.
func (s *Server) serveObject(ctx context.Context, req *prepared, body io.Reader, out io.Writer) (insitu.PutResult, error) {
	name := req.name()
	if s.onObject != nil {
		s.onObject(name)
	}
	fail := func(err error) (insitu.PutResult, error) {
		if ctx.Err() != nil {
			err = context.Cause(ctx)
		}
		if err == insitu.ErrSkip {
			return insitu.PutResult{}, err
		}
		return insitu.PutResult{}, insitu.WithName(err, name)
	}

	in := &insitu.Input{
		Object: insitu.Object{Name: name, Size: req.Size, Owner: req.Owner},
		Args:   req.Args,
	}
	var file *sharedFile
	switch {
	case req.Path != "":
		// Opened once, confined and without blocking; the transform gets
		// this open file, as Input.Body and as Input.Path, and it stays
		// open until the transform returns (and a batch call that reads
		// it, too).
		f, err := s.openLocal(name, req.root, req.rel, req.Path)
		if err != nil {
			return fail(err)
		}
		file = newSharedFile(f)
		defer file.release()
		in.Size, in.Path, body = f.size, f.path, f
	}
	if max := s.opts.MaxObjectSize; max > 0 && in.Size > max {
		return fail(insitu.Errorf(insitu.TooLarge, "the input is %d bytes, over the server's limit of %d", in.Size, max))
	}
	if s.batch != nil && !req.hasBody() {
		// An input that can be read again: it goes in a batch, and is
		// transformed alone below only if that is what the batch says.
		res, alone, err := s.batch.serve(ctx, req, in, file, out)
		if !alone {
			if err != nil {
				return fail(err)
			}
			return res, nil
		}
		if file != nil {
			if err := file.rewind(); err != nil {
				return fail(fserr.Wrap(name, err))
			}
		}
	}
	if r, ok := body.(readier); ok {
		if err := r.ready(readyBytes); err != nil {
			return fail(err)
		}
	}

	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	defer func() { <-s.sem }()

	if req.SourceURL != "" {
		rc, size, err := s.fetch(ctx, req.request)
		if err != nil {
			return fail(err)
		}
		defer rc.Close()
		in.Size, body = size, rc
	}
	var sized *sizedReader
	switch {
	case body == nil:
		body = http.NoBody
	case req.hasBody() && req.Size >= 0:
		// The bytes the request carries must be as many as it said.
		sized = newSizedReader(body, name, req.Size, "the request")
		body = sized
	}
	if max := s.opts.MaxObjectSize; max > 0 {
		if in.Size > max { // a source's Content-Length
			return fail(insitu.Errorf(insitu.TooLarge, "the input is %d bytes, over the server's limit of %d", in.Size, max))
		}
		body = &limitReader{r: body, left: max, max: max}
	}
	in.Body = body

	var put *putWriter
	if req.put != nil {
		put = s.newPutWriter(ctx, req.put, req.PutToken, req.PutOrigin)
		out = put
	}
	var err error
	if r := panics.Try(func() { err = s.t.Transform(ctx, in, out) }); r != nil {
		s.log.Error("transform panicked", "object", name.String(), "panic", r.Value, "stack", string(r.Stack))
		err = insitu.Errorf(insitu.Internal, "the transform panicked: %v", r.Value)
	}
	if sized != nil {
		if merr := sized.mismatch(); merr != nil {
			err = merr // whatever the transform made of a wrong input
		}
	}
	if put != nil {
		var res insitu.PutResult
		res, err = put.finish(err)
		if err == nil {
			return res, nil
		}
	}
	if err != nil {
		return fail(err)
	}
	return insitu.PutResult{}, nil
}

// objectContext returns the context of one object: parent's, ended by a
// forced shutdown and by the per-object timeout (the server's or the
// request's, whichever is shorter), with the reason as its cause.
func (s *Server) objectContext(parent context.Context, req *request) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(parent)
	stop := context.AfterFunc(s.ctx, func() { cancel(errShuttingDown) })
	timeout := s.opts.Timeout
	if t := req.timeout(); t > 0 && t < timeout {
		timeout = t
	}
	ctx, cancelTimeout := context.WithTimeoutCause(ctx, timeout,
		insitu.Errorf(insitu.DeadlineExceeded, "the per-object timeout of %v passed", timeout))
	return ctx, func() {
		cancelTimeout()
		stop()
		cancel(nil)
	}
}

// limitReader fails with TooLarge once more than max bytes came through.
type limitReader struct {
	r         io.Reader
	left, max int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left < 0 {
		return 0, insitu.Errorf(insitu.TooLarge, "the input is over the server's limit of %d bytes", l.max)
	}
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return n, insitu.Errorf(insitu.TooLarge, "the input is over the server's limit of %d bytes", l.max)
	}
	return n, err
}

// fetch GETs the input of an hpull request from its source. The body it
// returns fails a read that waits IOTimeout for the source's next bytes.
func (s *Server) fetch(parent context.Context, req *request) (io.ReadCloser, int64, error) {
	ctx, cancel := context.WithCancelCause(parent)
	hr, err := http.NewRequestWithContext(ctx, http.MethodGet, req.SourceURL, nil)
	if err != nil {
		cancel(nil)
		return nil, 0, insitu.Errorf(insitu.InvalidArgument, "source URL: %v", err)
	}
	if req.SourceToken != "" {
		hr.Header.Set("Authorization", "Bearer "+req.SourceToken)
	}
	src := hr.URL.Redacted()
	resp, err := s.client.Do(hr)
	if err != nil {
		cancel(nil)
		if parent.Err() != nil {
			return nil, 0, parent.Err()
		}
		return nil, 0, insitu.Errorf(insitu.Unavailable, "fetching the input from %s: %w", src, err)
	}
	if resp.StatusCode != http.StatusOK {
		_, err := wire.DecodeError(resp, insitu.Name{}, "fetching the input from "+src)
		cancel(nil)
		return nil, 0, err
	}
	return newStallReader(ctx, resp.Body, cancel, s.opts.IOTimeout, "the source "+src), resp.ContentLength, nil
}

// stallReader fails a Read that waits longer than d: it ends the context
// of the request whose body it reads, with a DeadlineExceeded cause, and
// returns that cause. Close closes the body and ends the context.
type stallReader struct {
	ctx    context.Context
	r      io.ReadCloser
	cancel context.CancelCauseFunc
	timer  *time.Timer
	d      time.Duration
}

func newStallReader(ctx context.Context, r io.ReadCloser, cancel context.CancelCauseFunc, d time.Duration, who string) *stallReader {
	s := &stallReader{ctx: ctx, r: r, cancel: cancel, d: d}
	s.timer = time.AfterFunc(time.Hour, func() { // armed by each Read
		cancel(insitu.Errorf(insitu.DeadlineExceeded, "%s sent nothing for %v", who, d))
	})
	s.timer.Stop()
	return s
}

func (s *stallReader) Read(p []byte) (int, error) {
	if s.ctx.Err() != nil {
		return 0, context.Cause(s.ctx)
	}
	s.timer.Reset(s.d)
	n, err := s.r.Read(p)
	s.timer.Stop()
	if err != nil && err != io.EOF && s.ctx.Err() != nil {
		err = context.Cause(s.ctx)
	}
	return n, err
}

func (s *stallReader) Close() error {
	s.timer.Stop()
	err := s.r.Close()
	s.cancel(nil)
	return err
}

// newHTTPTransport returns a keep-alive pool for one host with conns
// connections, tuned for streaming large bodies on a local network. Each
// dial is bounded by dialTimeout (and by the request's context).
func newHTTPTransport(conns int, dialTimeout time.Duration) *http.Transport {
	// conns <= 0: no limit on the connections (WebSocket handshakes).
	perHost := max(conns, 0)
	return &http.Transport{
		DialContext:           (&net.Dialer{Timeout: dialTimeout}).DialContext,
		MaxIdleConns:          4 * perHost,
		MaxIdleConnsPerHost:   perHost,
		MaxConnsPerHost:       perHost,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   dialTimeout,
		ResponseHeaderTimeout: 0,
		ExpectContinueTimeout: 0,
		DisableCompression:    true,
		WriteBufferSize:       64 << 10,
		ReadBufferSize:        64 << 10,
	}
}
