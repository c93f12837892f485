package transport

import (
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/wire"
)

// emptyBucket stands for the empty bucket in a URL path; it is not a valid
// bucket name, so it cannot clash with one.
const emptyBucket = "~"

// request is one object's request, whatever the transport: the JSON payload
// of a WebSocket OPEN frame, or the URL path and headers of an HTTP request.
type request struct {
	Bucket string `json:"bucket"`
	Key    string `json:"key"`
	// Size is the input's length in bytes, -1 when unknown.
	Size  int64  `json:"size"`
	Owner string `json:"owner,omitempty"`
	Args  string `json:"args,omitempty"`
	// Path is the input's local file (local-file mode): no bytes are sent.
	Path string `json:"path,omitempty"`
	// SourceURL is where the server GETs the input (pull): no bytes are sent.
	SourceURL   string `json:"source_url,omitempty"`
	SourceToken string `json:"source_token,omitempty"`
	// PutURL is the direct-put destination of the output.
	PutURL   string `json:"put_url,omitempty"`
	PutToken string `json:"put_token,omitempty"`
	// PutOrigin is the text of the output's insitu.Origin, which the
	// direct put sends on in its Insitu-Origin header; "" for none.
	PutOrigin string `json:"put_origin,omitempty"`
	// TimeoutMS is the client's per-object timeout in milliseconds, 0 for none.
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
}

func (r *request) name() insitu.Name { return insitu.Name{Bucket: r.Bucket, Key: r.Key} }

// hasBody reports whether the input's bytes travel with the request.
func (r *request) hasBody() bool { return r.Path == "" && r.SourceURL == "" }

func (r *request) timeout() time.Duration { return time.Duration(r.TimeoutMS) * time.Millisecond }

// validate checks what every transport requires of a request.
func (r *request) validate() error {
	name := r.name()
	if err := name.Validate(); err != nil {
		return err
	}
	bad := func(format string, args ...any) error {
		return insitu.WithName(insitu.Errorf(insitu.InvalidArgument, format, args...), name)
	}
	switch {
	case r.Size < -1:
		return bad("size %d is negative", r.Size)
	case r.TimeoutMS < 0:
		return bad("timeout %dms is negative", r.TimeoutMS)
	case r.Path != "" && r.SourceURL != "":
		return bad("a request names both a local path and a source URL; send one")
	case r.Path != "" && (!filepath.IsAbs(r.Path) || strings.IndexByte(r.Path, 0) >= 0):
		return bad("local path %q is not an absolute path", r.Path)
	}
	if r.SourceURL != "" {
		if _, err := parseHTTPURL(r.SourceURL); err != nil {
			return bad("source URL: %v", err)
		}
	}
	if r.PutURL != "" {
		if _, err := parseHTTPURL(r.PutURL); err != nil {
			return bad("put URL: %v", err)
		}
	}
	if r.PutOrigin != "" {
		if r.PutURL == "" {
			return bad("a put origin without a put URL")
		}
		if _, err := insitu.ParseOrigin(r.PutOrigin); err != nil {
			return bad("put origin: %w", err)
		}
	}
	return nil
}

// parseHTTPURL parses an absolute http or https URL.
func parseHTTPURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, insitu.Errorf(insitu.InvalidArgument, "%q is not an http or https URL", s)
	}
	if u.Host == "" {
		return nil, insitu.Errorf(insitu.InvalidArgument, "%q has no host", s)
	}
	if u.User != nil {
		return nil, insitu.Errorf(insitu.InvalidArgument, "URL %q carries credentials; send a token instead", u.Redacted())
	}
	return u, nil
}

// parseOpen decodes the JSON payload of an OPEN frame.
func parseOpen(payload []byte) (*request, error) {
	r := &request{Size: -1}
	if err := json.Unmarshal(payload, r); err != nil {
		return nil, insitu.Errorf(insitu.InvalidArgument, "bad OPEN frame: the JSON does not parse: %v", err)
	}
	if err := r.validate(); err != nil {
		return nil, err
	}
	return r, nil
}

// parseHeaders builds the request of an HTTP call from the two wildcards of
// its URL path (already unescaped) and its headers. contentLength is the
// request's Content-Length, -1 when unknown.
func parseHeaders(bucket, key string, h http.Header, contentLength int64) (*request, error) {
	if bucket == emptyBucket {
		bucket = ""
	}
	r := &request{Bucket: bucket, Key: key, Size: -1}
	name := r.name()
	bad := func(header string, err error) error {
		return insitu.WithName(insitu.Errorf(insitu.InvalidArgument, "header %s: %v", header, err), name)
	}
	var err error
	for _, f := range []struct {
		header string
		dst    *string
	}{{wire.Args, &r.Args}, {wire.Path, &r.Path}, {wire.Owner, &r.Owner}} {
		if *f.dst, err = url.PathUnescape(h.Get(f.header)); err != nil {
			return nil, bad(f.header, err)
		}
	}
	r.SourceURL = h.Get(wire.SourceURL)
	r.SourceToken = h.Get(wire.SourceToken)
	r.PutURL = h.Get(wire.PutURL)
	r.PutToken = h.Get(wire.PutToken)
	r.PutOrigin = h.Get(wire.PutOrigin)
	if v := h.Get(wire.Size); v != "" {
		if r.Size, err = strconv.ParseInt(v, 10, 64); err != nil {
			return nil, bad(wire.Size, err)
		}
		if r.Size < -1 {
			return nil, bad(wire.Size, insitu.Errorf(insitu.InvalidArgument, "%d is below -1", r.Size))
		}
	}
	if contentLength >= 0 && r.hasBody() {
		if r.Size >= 0 && r.Size != contentLength {
			return nil, bad(wire.Size, insitu.Errorf(insitu.InvalidArgument, "%d does not match the Content-Length %d", r.Size, contentLength))
		}
		r.Size = contentLength
	}
	if v := h.Get(wire.Timeout); v != "" {
		if r.TimeoutMS, err = strconv.ParseInt(v, 10, 64); err != nil {
			return nil, bad(wire.Timeout, err)
		}
	}
	if err := r.validate(); err != nil {
		return nil, err
	}
	return r, nil
}

// urlPath returns the hpush/hpull path of the request's object.
func (r *request) urlPath() string {
	var b strings.Builder
	b.WriteString("/v1/transform/")
	if r.Bucket == "" {
		b.WriteString(emptyBucket)
	} else {
		b.WriteString(url.PathEscape(r.Bucket))
	}
	for seg := range strings.SplitSeq(r.Key, "/") {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(seg))
	}
	return b.String()
}

// setHeaders writes the request's fields, but its name, into h.
func (r *request) setHeaders(h http.Header) {
	set := func(k, v string) {
		if v != "" {
			h.Set(k, v)
		}
	}
	set(wire.Args, url.PathEscape(r.Args))
	set(wire.Path, url.PathEscape(r.Path))
	set(wire.Owner, url.PathEscape(r.Owner))
	set(wire.SourceURL, r.SourceURL)
	set(wire.SourceToken, r.SourceToken)
	set(wire.PutURL, r.PutURL)
	set(wire.PutToken, r.PutToken)
	set(wire.PutOrigin, r.PutOrigin)
	if r.Size >= 0 {
		h.Set(wire.Size, strconv.FormatInt(r.Size, 10))
	}
	if r.TimeoutMS > 0 {
		h.Set(wire.Timeout, strconv.FormatInt(r.TimeoutMS, 10))
	}
}
