package transport

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

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

	var body = r.Body
	if req.hasBody() {
		// Stream the output while the input is still arriving.
		if err := http.NewResponseController(w).EnableFullDuplex(); err != nil {
			s.log.Debug("transport: no full duplex; the output waits for the input", "err", err)
		}
		// A full-duplex body left unread makes the server panic when it
		// reads the next request on the connection (golang/go#68560).
		defer r.Body.Close()
	} else {
		body = nil
	}
	out := &responseWriter{w: w}
	ctx, cancel := s.objectContext(r.Context(), req)
	defer cancel()
	res, err := s.serveObject(ctx, p, body, out)
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
type responseWriter struct {
	w       http.ResponseWriter
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
	n, err := o.w.Write(p)
	if err != nil {
		return n, insitu.Errorf(insitu.Unavailable, "sending the output: %w", err)
	}
	return n, nil
}
