package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"

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
//	GET    /v1/objects/{bucket}/{key...}   an object (HEAD: its size)
//	PUT    /v1/objects/{bucket}/{key...}   store an object; answers {size, checksum, owner}
//	DELETE /v1/objects/{bucket}/{key...}   remove an object
//	POST   /v1/jobs                        start this node's part of a job (a cluster.JobSpec)
//	GET    /v1/jobs                        the statuses of the jobs the node knows
//	GET    /v1/jobs/{id}?wait=500ms        a job's status, waiting up to wait for it to end
//	DELETE /v1/jobs/{id}                   abort a job; answers its final status
//
// Every endpoint but health requires the header
// "Authorization: Bearer <token>" with the token of the node's secret (see
// [locality.Secret.Token]); without it the answer is 401. Errors are JSON
// documents {"code", "message"} with the insitu code name, whose code
// is also in the header Insitu-Error-Code (docs/PROTOCOL.md). A PUT of a
// job's output carries the headers Insitu-Job and Insitu-Input (see
// [Node.StartJob]). Once [Node.Shutdown] has begun, every request is
// answered 503 unavailable. The handler uses a ServeMux of its own and may
// be mounted in any server.
func (n *Node) Handler() http.Handler { return n.mux }

func (n *Node) routes() {
	n.mux = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
	f, _, err := n.open(r.Context(), m, name)
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
	res, err := n.put(r.Context(), m, name, uploadReader{r.Body}, r.ContentLength, c)
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

// errUpload marks the errors of reading an upload's body.
var errUpload = errors.New("reading the upload")

// uploadReader classifies the errors of reading a request body, such as a
// client that disconnects in the middle, as InvalidArgument.
type uploadReader struct{ r io.Reader }

func (u uploadReader) Read(p []byte) (int, error) {
	n, err := u.r.Read(p)
	if err != nil && err != io.EOF {
		err = &insitu.Error{Code: insitu.InvalidArgument, Err: fmt.Errorf("%w: %w", errUpload, err)}
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
