package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/putcheck"
	"github.com/insitu-data/insitu/internal/wire"
	"github.com/insitu-data/insitu/locality"
)

// maxMapBody bounds the JSON of a map that a client pushes.
const maxMapBody = 1 << 20

// Handler returns the node's HTTP handler, which serves the node API:
//
//	GET    /v1/health                      no authentication
//	GET    /v1/map                         the node's map
//	PUT    /v1/map                         install a newer map
//	GET    /v1/objects/{bucket}            a page of the listing: ?prefix=&after=&limit=
//	GET    /v1/objects/{bucket}/{key...}   an object (HEAD: its size); ?transform=a,b&args= through transforms
//	PUT    /v1/objects/{bucket}/{key...}   store an object; answers {size, checksum, owner}
//	DELETE /v1/objects/{bucket}/{key...}   remove an object
//	POST   /v1/jobs                        start this node's part of a job (a cluster.JobSpec)
//	GET    /v1/jobs                        the statuses of the jobs the node knows
//	GET    /v1/jobs/{id}?wait=500ms        a job's status, waiting up to wait for it to end
//	DELETE /v1/jobs/{id}                   abort a job; answers its final status
//	POST   /v1/jobs/{id}/claims            claim a job's output before a direct put
//	POST   /v1/rebalance?after=            move copies this node does not own to their owners
//	GET    /v1/transforms                  the named transforms (builtins and registered servers)
//	GET    /v1/transforms/{name}           one of them; PUT registers a server, DELETE removes it
//	POST   /v1/batch                       many objects as one ordered tar stream (locality.BatchRequest)
//
// Every endpoint but health requires the header
// "Authorization: Bearer <token>" with an unexpired token of the node's
// secret that allows the request (see [locality.Secret.Verify]): an
// administrative token allows everything; an object token one GET and HEAD,
// or PUT, of one object. Without it the answer is 401. Errors are JSON
// documents {"code", "message"} with the insitu code name, whose code
// is also in the header Insitu-Error-Code (docs/PROTOCOL.md). A PUT of a
// job's output carries the headers Insitu-Job and Insitu-Input (see
// [Node.StartJob]). Once [Node.Shutdown] has begun, every request is
// answered 503 unavailable. Error messages name objects by bucket and
// key, never by their files' paths (the node's log has those). The handler
// uses a ServeMux of its own and may be mounted in any server.
//
// The handler bounds the bodies it reads and the responses it writes (see
// Options.ProgressTimeout), through the connection's deadlines; what comes
// before and after a request is the server's to bound. Serve it with a
// ReadHeaderTimeout and an IdleTimeout, as package nodetest does:
//
//	srv := &http.Server{Handler: n.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
func (n *Node) Handler() http.Handler { return n.mux }

func (n *Node) routes() {
	n.mux = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ex := n.bound(w, r)
		defer ex.finish()
		w, r = &ex.w, ex.r
		if err := n.enter(); err != nil {
			n.writeError(w, r, err)
			return
		}
		defer n.leave()
		n.routeMux.ServeHTTP(w, r)
	})
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/health", n.serveHealth)
	mux.Handle("/v1/map", n.authed(n.serveMap))
	mux.Handle("/v1/objects/{bucket}", n.authed(n.serveList))
	mux.Handle("/v1/objects/{bucket}/{key...}", n.authed(n.serveObject))
	mux.Handle("/v1/jobs", n.authed(n.serveJobs))
	mux.Handle("/v1/jobs/{id}", n.authed(n.serveJob))
	mux.Handle("/v1/jobs/{id}/claims", n.authed(n.serveClaim))
	mux.Handle("/v1/rebalance", n.authed(n.serveRebalance))
	mux.Handle("/v1/transforms", n.authed(n.serveTransforms))
	mux.Handle("/v1/transforms/{name}", n.authed(n.serveTransform))
	mux.Handle("/v1/batch", n.authed(n.serveBatch))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		n.writeError(w, r, insitu.Errorf(insitu.NotFound, "no such endpoint: %s", r.URL.Path))
	})
	n.routeMux = mux
}

// authed refuses requests without the secret's token, and sets the map
// version header on the others.
func (n *Node) authed(h func(http.ResponseWriter, *http.Request, *locality.Map)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !n.secret.Verify(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="insitu"`)
			n.writeErrorStatus(w, r, http.StatusUnauthorized, insitu.Errorf(insitu.PermissionDenied, "missing or wrong bearer token"))
			return
		}
		m := n.Map()
		w.Header().Set(wire.MapVersion, strconv.FormatInt(m.Version(), 10))
		h(w, r, m)
	})
}

func (n *Node) serveHealth(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		n.methodNotAllowed(w, r, "GET, HEAD")
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Status string `json:"status"`
		Node   string `json:"node"`
	}{"ok", n.id})
}

func (n *Node) serveMap(w http.ResponseWriter, r *http.Request, m *locality.Map) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodPut:
		raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxMapBody))
		if err != nil {
			n.writeError(w, r, insitu.Errorf(insitu.InvalidArgument, "reading the map: %w", err))
			return
		}
		nm, err := locality.ParseMap(raw)
		if err != nil {
			n.writeError(w, r, err)
			return
		}
		if cur := n.Map(); nm.Newer(cur) {
			if err := nm.Succeeds(cur); err != nil {
				n.writeError(w, r, err) // a jump no later map could pass
				return
			}
		}
		n.SetMap(nm)
		m = n.Map()
		w.Header().Set(wire.MapVersion, strconv.FormatInt(m.Version(), 10))
	default:
		n.methodNotAllowed(w, r, "GET, HEAD, PUT")
		return
	}
	writeJSON(w, http.StatusOK, m)
}

func (n *Node) serveList(w http.ResponseWriter, r *http.Request, m *locality.Map) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		n.methodNotAllowed(w, r, "GET, HEAD")
		return
	}
	q := r.URL.Query()
	opts := &locality.ListOptions{Prefix: q.Get("prefix"), After: q.Get("after")}
	if s := q.Get("limit"); s != "" {
		limit, err := strconv.Atoi(s)
		if err != nil || limit < 0 {
			n.writeError(w, r, insitu.Errorf(insitu.InvalidArgument, "bad limit %q", s))
			return
		}
		opts.Limit = limit
	}
	page, err := n.list(r.Context(), m, r.PathValue("bucket"), opts)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

func (n *Node) serveObject(w http.ResponseWriter, r *http.Request, m *locality.Map) {
	name := insitu.Name{Bucket: r.PathValue("bucket"), Key: r.PathValue("key")}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		n.serveGet(w, r, m, name)
	case http.MethodPut:
		n.servePut(w, r, m, name)
	case http.MethodDelete:
		if err := n.delete(r.Context(), m, name); err != nil {
			n.writeError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		n.methodNotAllowed(w, r, "GET, HEAD, PUT, DELETE")
	}
}

func (n *Node) serveGet(w http.ResponseWriter, r *http.Request, m *locality.Map, name insitu.Name) {
	q := r.URL.Query()
	if q.Has("transform") || q.Has("args") {
		rc, err := n.parseReadChain(q.Get("transform"), q.Get("args"))
		if err == nil && len(rc.names) == 0 {
			err = insitu.Errorf(insitu.InvalidArgument, "an empty transform parameter: name a transform, or leave the parameter out")
		}
		if err != nil {
			n.writeError(w, r, insitu.WithName(err, name))
			return
		}
		n.serveTransformedGet(w, r, m, name, rc)
		return
	}
	f, obj, err := n.open(r.Context(), m, name)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		n.writeError(w, r, n.fileError(name, err, false))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set(wire.Owner, n.id)
	h.Set(wire.Version, obj.Version)
	if obj.Origin != "" {
		h.Set(wire.Origin, obj.Origin)
	}
	http.ServeContent(w, r, "", fi.ModTime(), storeFile{f, n})
}

// storeFile is an object's file for [http.ServeContent], which answers a
// failed Seek with the error's text: the text is made store-relative (see
// [Node.relative]). It keeps the *os.File's other methods, SyscallConn
// among them, so the bytes still go out by sendfile.
type storeFile struct {
	*os.File
	n *Node
}

func (f storeFile) Seek(offset int64, whence int) (int64, error) {
	off, err := f.File.Seek(offset, whence)
	if err != nil {
		err = f.n.relative(err)
	}
	return off, err
}

func (n *Node) servePut(w http.ResponseWriter, r *http.Request, m *locality.Map, name insitu.Name) {
	// Refuse before reading the body, so a client that waits for
	// "100 Continue" sends none.
	if err := n.own(m, name); err != nil {
		n.writeError(w, r, err)
		return
	}
	if _, err := putcheck.New(r.Context(), name, r.Body, r.ContentLength, n.maxSize); err != nil {
		n.writeError(w, r, err) // a declared size over the limit, say
		return
	}
	c, err := claimOf(r.Header)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	createOnly, err := createOnlyOf(r.Header)
	if err != nil {
		n.writeError(w, r, insitu.WithName(err, name))
		return
	}
	if createOnly {
		// Refused before the body when it exists already; the commit
		// checks again, atomically.
		if _, _, err := n.statFile(r.Context(), m, name); err == nil {
			n.writeError(w, r, errExists(name))
			return
		}
	}
	origin := r.Header.Get(wire.Origin)
	if origin != "" {
		if _, err := insitu.ParseOrigin(origin); err != nil {
			n.writeError(w, r, insitu.WithName(insitu.Errorf(insitu.InvalidArgument, "header %s: %w", wire.Origin, err), name))
			return
		}
	}
	res, err := n.putFile(r.Context(), m, name, uploadReader{r.Body}, r.ContentLength, c, origin, createOnly)
	if err != nil {
		if r.Context().Err() != nil || errors.Is(err, errUpload) {
			n.log.Info("upload aborted; nothing stored", "name", name.String(), "err", err)
		}
		n.writeError(w, r, err)
		return
	}
	h := w.Header()
	h.Set(wire.Checksum, res.Checksum)
	h.Set(wire.Owner, n.id)
	writeJSON(w, http.StatusOK, res)
}

// createOnlyOf reads a PUT's preconditions: If-None-Match: * (store only
// if nothing is under the name) is the one supported; any other value of
// If-None-Match, and any If-Match, is InvalidArgument rather than ignored.
func createOnlyOf(h http.Header) (bool, error) {
	if h.Get("If-Match") != "" {
		return false, insitu.Errorf(insitu.InvalidArgument, "If-Match is not supported; If-None-Match: * is")
	}
	switch v := h.Values("If-None-Match"); {
	case len(v) == 0:
		return false, nil
	case len(v) == 1 && strings.TrimSpace(v[0]) == "*":
		return true, nil
	}
	return false, insitu.Errorf(insitu.InvalidArgument, "If-None-Match: only * is supported")
}

// errUpload marks the errors of reading an upload's body.
var errUpload = errors.New("reading the upload")

// uploadReader classifies the errors of reading a request body, such as a
// client that disconnects in the middle, as InvalidArgument.
type uploadReader struct{ r io.Reader }

func (u uploadReader) Read(p []byte) (int, error) {
	n, err := u.r.Read(p)
	if err != nil && err != io.EOF {
		code := insitu.CodeOf(err) // DeadlineExceeded for a body too slow
		if code == insitu.Unknown {
			code = insitu.InvalidArgument
		}
		err = &insitu.Error{Code: code, Err: fmt.Errorf("%w: %w", errUpload, err)}
	}
	return n, err
}

func (n *Node) methodNotAllowed(w http.ResponseWriter, r *http.Request, allow string) {
	w.Header().Set("Allow", allow)
	n.writeErrorStatus(w, r, http.StatusMethodNotAllowed, insitu.Errorf(insitu.InvalidArgument, "method %s not allowed; use %s", r.Method, allow))
}

// writeError answers with err's wire body and the status of its code
// (see package wire: a code travels as it is).
func (n *Node) writeError(w http.ResponseWriter, r *http.Request, err error) {
	n.writeErrorStatus(w, r, 0, err)
}

// writeErrorStatus answers with err's wire body and status (0: the status
// of err's code). A NotOwner error carries the version of the map the
// node answered with.
func (n *Node) writeErrorStatus(w http.ResponseWriter, r *http.Request, status int, err error) {
	if bw, ok := w.(*boundedWriter); ok && bw.ex.cutErr != nil {
		// The failed read of the body also canceled the request's
		// context, which the handler may have noticed first.
		err = bw.ex.cutErr
	}
	body := wire.Body(err)
	if status == 0 {
		status = wire.Status(body.Code)
	}
	if body.Code == insitu.NotOwner {
		body.MapVersion = n.Map().Version()
		if v := w.Header().Get(wire.MapVersion); v != "" {
			body.MapVersion, _ = strconv.ParseInt(v, 10, 64)
		} else {
			w.Header().Set(wire.MapVersion, strconv.FormatInt(body.MapVersion, 10))
		}
	}
	level := n.log.Debug
	if status >= 500 && body.Code != insitu.Unavailable {
		level = n.log.Error
	} else if status == http.StatusUnauthorized || status >= 500 {
		level = n.log.Warn
	}
	level("request refused", "method", r.Method, "path", r.URL.Path, "status", status, "code", body.Code.String(), "msg", body.Message, "remote", r.RemoteAddr)
	// Clients see store-relative names only, whatever error got here; the
	// log line above has the full text.
	body.Message = n.scrub(body.Message)
	wire.WriteBody(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Content-Length")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// progressBound is the node's Options.ProgressTimeout and ProgressBytes.
type progressBound struct {
	timeout time.Duration
	bytes   int64
}

// exchange bounds the network reads and writes of one request (see
// Options.ProgressTimeout): it moves the connection's read deadline
// ProgressTimeout ahead when the node starts reading the body and after
// every ProgressBytes of it, and the write deadline before every
// ProgressBytes of the response. It is used by the request's goroutine
// only.
type exchange struct {
	n    *Node
	r    *http.Request
	rc   http.ResponseController
	w    boundedWriter
	body *boundedBody // nil for a request without a body, else &bb
	bb   boundedBody
	// unbounded is set when the server does not support deadlines: the
	// exchange then does nothing.
	unbounded bool
	cut       string // what a deadline cut off, for the log: "request body" or "response"
	moved     int64  // the bytes of what was cut off that did move
	cutErr    error  // the DeadlineExceeded error of the cut
}

// bound starts bounding the reads of r's body and the writes to w; the
// caller serves the exchange's r and w and calls finish once done.
func (n *Node) bound(w http.ResponseWriter, r *http.Request) *exchange {
	ex := &exchange{n: n, r: r, rc: *http.NewResponseController(w)}
	ex.w = boundedWriter{ResponseWriter: w, ex: ex}
	// A request without a body has none to bound; net/http then reads
	// the connection in the background to notice a client that goes away,
	// and a read deadline would end that read (and cancel the request).
	// So does a body read to its end, which boundedBody notes.
	if r.Body != nil && r.Body != http.NoBody {
		ex.bb = boundedBody{ReadCloser: r.Body, ex: ex}
		ex.body = &ex.bb
		// A copy: net/http looks at its own request's Body to tell
		// whether the client still waits for "100 Continue" (and then
		// closes the connection instead of reading a body that the
		// handler refused).
		r2 := *r
		r2.Body = ex.body
		ex.r = &r2
	}
	return ex
}

// setReadDeadline moves the read deadline ProgressTimeout ahead.
func (ex *exchange) setReadDeadline() {
	if !ex.unbounded {
		ex.check(ex.rc.SetReadDeadline(time.Now().Add(ex.n.progress.timeout)))
	}
}

// setWriteDeadline moves the write deadline ProgressTimeout ahead.
func (ex *exchange) setWriteDeadline() {
	if !ex.unbounded {
		ex.check(ex.rc.SetWriteDeadline(time.Now().Add(ex.n.progress.timeout)))
	}
}

func (ex *exchange) check(err error) {
	if errors.Is(err, http.ErrNotSupported) {
		ex.unbounded = true
	}
}

// timedOut records that a deadline cut what off (once, the first), and
// returns err, classified as DeadlineExceeded, when it is a deadline's.
func (ex *exchange) timedOut(what string, moved int64, err error) error {
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	b := ex.n.progress
	err = &insitu.Error{Code: insitu.DeadlineExceeded, Err: err,
		Msg: fmt.Sprintf("the %s moved less than %d bytes in %v", what, b.bytes, b.timeout)}
	if ex.cut == "" {
		ex.cut, ex.moved, ex.cutErr = what, moved, err
	}
	return err
}

// finish bounds what the server does once the handler has returned: it
// reads what is left of a body that the handler did not read to its end
// (up to 256 KiB, to keep the connection; ProgressTimeout), and then
// writes what the handler left buffered (ProgressTimeout more); and it
// logs a request that a deadline cut off.
func (ex *exchange) finish() {
	b := ex.n.progress
	if ex.cut != "" {
		ex.n.log.Warn("request cut off: the client is too slow", "method", ex.r.Method, "path", ex.r.URL.Path, "remote", ex.r.RemoteAddr,
			"cut", ex.cut, "moved", ex.moved, "progress_bytes", b.bytes, "progress_timeout", b.timeout)
	}
	if ex.unbounded {
		return
	}
	now := time.Now()
	ex.check(ex.rc.SetWriteDeadline(now.Add(2 * b.timeout)))
	// A body cut off keeps its passed deadline: the server gives up on
	// it at once and closes the connection after the answer.
	if ex.body != nil && !ex.body.eof && ex.cut != "request body" {
		ex.check(ex.rc.SetReadDeadline(now.Add(b.timeout)))
	}
}

// boundedBody is a request body whose reads are bounded by its exchange.
type boundedBody struct {
	io.ReadCloser
	ex      *exchange
	left    int64 // bytes to read before the deadline moves again
	started bool
	eof     bool
	read    int64
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.eof {
		return b.ReadCloser.Read(p)
	}
	if !b.started || b.left <= 0 {
		b.started = true
		b.left = b.ex.n.progress.bytes
		b.ex.setReadDeadline()
	}
	k, err := b.ReadCloser.Read(p)
	b.left -= int64(k)
	b.read += int64(k)
	switch {
	case err == io.EOF:
		b.eof = true // net/http has cleared the read deadline
	case err != nil:
		err = b.ex.timedOut("request body", b.read, err)
	}
	return k, err
}

// boundedWriter is a response whose writes are bounded by its exchange:
// it writes ProgressBytes at most at a time, each after moving the write
// deadline. Its ReadFrom keeps the ResponseWriter's, so that a file still
// goes out by sendfile, a slice at a time.
type boundedWriter struct {
	http.ResponseWriter
	ex      *exchange
	written int64
	slice   io.LimitedReader // ReadFrom's, kept to spare an allocation per slice
}

func (w *boundedWriter) Write(p []byte) (int, error) {
	total := 0
	for len(p) > 0 {
		step := p[:min(int64(len(p)), w.ex.n.progress.bytes)]
		w.ex.setWriteDeadline()
		k, err := w.ResponseWriter.Write(step)
		total += k
		w.written += int64(k)
		if err != nil {
			return total, w.ex.timedOut("response", w.written, err)
		}
		p = p[k:]
	}
	return total, nil
}

func (w *boundedWriter) ReadFrom(src io.Reader) (int64, error) {
	rf, ok := w.ResponseWriter.(io.ReaderFrom)
	if !ok {
		return io.Copy(struct{ io.Writer }{w}, src)
	}
	// The slices are LimitedReaders of the underlying reader, which
	// sendfile sees through (a LimitedReader of a LimitedReader it would
	// not).
	lr, ok := src.(*io.LimitedReader)
	if !ok {
		lr = &io.LimitedReader{R: src, N: math.MaxInt64}
	}
	var total int64
	for lr.N > 0 {
		step := min(lr.N, w.ex.n.progress.bytes)
		w.ex.setWriteDeadline()
		w.slice = io.LimitedReader{R: lr.R, N: step}
		k, err := rf.ReadFrom(&w.slice)
		w.slice.R = nil
		total += k
		w.written += k
		lr.N -= k
		if err != nil {
			return total, w.ex.timedOut("response", w.written, err)
		}
		if k < step {
			break // the end of src
		}
	}
	return total, nil
}

// Flush sends what is buffered, within the write deadline.
func (w *boundedWriter) Flush() {
	w.ex.setWriteDeadline()
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap returns the ResponseWriter, for [http.ResponseController].
func (w *boundedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
