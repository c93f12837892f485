package gateway

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"maps"
	"mime"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/locality"
)

// DefaultRegion is the region of a gateway whose Options.Region is "".
const DefaultRegion = "us-east-1"

// Bucket is what one S3 bucket of the gateway reads: the cluster bucket
// Source, through the chain of transforms Transform (names the nodes
// know) with Args, or as stored when Transform is empty.
type Bucket struct {
	// Source is the cluster bucket whose objects the S3 bucket shows,
	// under the same keys.
	Source string
	// Transform is the chain of transforms that each object's owner runs
	// on a GET (locality.Client.GetTransformed). Default: nil, the
	// objects as stored.
	Transform []string
	// Args reach every stage of Transform. Default "".
	Args string
}

// Options configure [New]. Buckets and Credentials are required.
type Options struct {
	// Buckets maps each S3 bucket name the gateway serves to what it
	// reads. Any other bucket name is NoSuchBucket: the gateway never
	// passes a name through to the cluster's buckets. S3 bucket names
	// follow insitu's bucket rule ([insitu.ValidateBucket]).
	Buckets map[string]Bucket
	// Credentials maps each access key to its secret key. Every request
	// must be signed with one of them (AWS Signature Version 4); there is
	// no anonymous access.
	Credentials map[string]string
	// Region is the region that signatures must name. Default
	// DefaultRegion ("us-east-1").
	Region string
	// Logger receives a line for each request that failed on the
	// cluster's side (InternalError, ServiceUnavailable) and for each
	// response cut in the middle. Default: no logging.
	Logger *slog.Logger
	// Now is the clock that request times are checked against. Default:
	// time.Now.
	Now func() time.Time
}

// Gateway is an http.Handler that answers a small read-only part of the
// S3 API, path-style, over a cluster. Make one with [New]. A Gateway is
// safe for concurrent use.
type Gateway struct {
	c       *locality.Client
	buckets map[string]Bucket
	creds   map[string]string
	region  string
	log     *slog.Logger
	now     func() time.Time
	started time.Time
}

// New returns a gateway that reads the cluster that c talks to. Per
// request time limits are c's (locality.ClientOptions ReadTimeout);
// request header sizes and read timeouts are those of the http.Server
// that serves the gateway, which the caller makes (set its
// MaxHeaderBytes and ReadHeaderTimeout).
//
// A nil c, no bucket, an invalid bucket name or Source, a Transform with
// an empty or repeated stage, Args without a Transform, no credentials, or
// an empty access or secret key are InvalidArgument errors.
func New(c *locality.Client, opts *Options) (*Gateway, error) {
	if c == nil {
		return nil, insitu.Errorf(insitu.InvalidArgument, "gateway: nil client")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	g := &Gateway{
		c: c, buckets: make(map[string]Bucket, len(o.Buckets)), creds: maps.Clone(o.Credentials),
		region: o.Region, log: o.Logger, now: o.Now,
	}
	if g.region == "" {
		g.region = DefaultRegion
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.now == nil {
		g.now = time.Now
	}
	g.started = g.now().UTC().Truncate(time.Second)
	if len(o.Buckets) == 0 {
		return nil, insitu.Errorf(insitu.InvalidArgument, "gateway: no buckets")
	}
	for name, b := range o.Buckets {
		if err := insitu.ValidateBucket(name); err != nil {
			return nil, insitu.Errorf(insitu.InvalidArgument, "gateway: bucket %q: %w", name, err)
		}
		if err := insitu.ValidateBucket(b.Source); err != nil {
			return nil, insitu.Errorf(insitu.InvalidArgument, "gateway: bucket %q: source: %w", name, err)
		}
		for i, s := range b.Transform {
			if s == "" || strings.Contains(s, ",") || slices.Contains(b.Transform[:i], s) {
				return nil, insitu.Errorf(insitu.InvalidArgument, "gateway: bucket %q: transform stage %q is empty, holds a comma or is repeated", name, s)
			}
		}
		if len(b.Transform) == 0 && b.Args != "" {
			return nil, insitu.Errorf(insitu.InvalidArgument, "gateway: bucket %q: Args without a Transform", name)
		}
		b.Transform = slices.Clone(b.Transform)
		g.buckets[name] = b
	}
	if len(g.creds) == 0 {
		return nil, insitu.Errorf(insitu.InvalidArgument, "gateway: no credentials")
	}
	for k, s := range g.creds {
		if k == "" || s == "" {
			return nil, insitu.Errorf(insitu.InvalidArgument, "gateway: an empty access key or secret key")
		}
	}
	return g, nil
}

// ServeHTTP answers one S3 request; see the package documentation for
// what it answers.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var id [8]byte
	_, _ = rand.Read(id[:])
	w.Header().Set("X-Amz-Request-Id", strings.ToUpper(hex.EncodeToString(id[:])))
	w.Header().Set("Server", "insitu-gateway")

	p := strings.TrimPrefix(r.URL.Path, "/")
	bucket, key, _ := strings.Cut(p, "/")
	if _, aerr := g.authenticate(r); aerr != nil {
		writeError(w, r, aerr, bucket, key)
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodPut, http.MethodPost, http.MethodDelete:
		writeError(w, r, errorf(errAccessDenied, "this gateway is read-only: %s is refused", r.Method), bucket, key)
		return
	default:
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, r, errorf(errMethodNotAllowed, "the method %s is not allowed: GET and HEAD only", r.Method), bucket, key)
		return
	}
	if bucket == "" {
		if r.Method == http.MethodGet && len(subresources(r, false)) == 0 {
			g.listBuckets(w)
			return
		}
		writeError(w, r, errorf(errNotImplemented, "only ListBuckets (GET /) is served at the root"), "", "")
		return
	}
	b, ok := g.buckets[bucket]
	if !ok {
		writeError(w, r, errorf(errNoSuchBucket, "the bucket %q does not exist here", bucket), bucket, "")
		return
	}
	if key == "" {
		g.serveBucket(w, r, bucket, b)
		return
	}
	if sub := subresources(r, false); len(sub) > 0 {
		writeError(w, r, errorf(errNotImplemented, "the %s subresource is not served: GetObject and HeadObject only", sub[0]), bucket, key)
		return
	}
	name := insitu.Name{Bucket: b.Source, Key: key}
	if len(key) > insitu.MaxKeyLen {
		writeError(w, r, errorf(errKeyTooLong, "the key is %d bytes, over the limit of %d", len(key), insitu.MaxKeyLen), bucket, key)
		return
	}
	if err := name.Validate(); err != nil {
		// A name no object can have.
		writeError(w, r, errorf(errNoSuchKey, "no object can have this key: %s", insitu.CodeOf(err)), bucket, key)
		return
	}
	g.serveObject(w, r, bucket, key, b, name)
}

// subresources returns the query parameters of r that name an S3
// operation or subresource the gateway does not serve (sorted), leaving
// out the presigned URL's X-Amz-* parameters and, for a bucket, the
// listing parameters.
func subresources(r *http.Request, bucket bool) []string {
	var out []string
	for k := range r.URL.Query() {
		switch {
		case strings.HasPrefix(k, "X-Amz-"), strings.HasPrefix(k, "x-amz-"):
		case bucket && listParams[k]:
		case k == "x-id": // the AWS SDKs' operation hint
		default:
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// listParams are the query parameters of ListObjectsV2 and
// GetBucketLocation.
var listParams = map[string]bool{
	"list-type": true, "prefix": true, "delimiter": true, "max-keys": true, "continuation-token": true,
	"start-after": true, "encoding-type": true, "fetch-owner": true, "location": true, "metadata": true,
}

// stat describes name's object with a HEAD on its owner: its Size and
// Version (the node's "<size>-<mtime in ns>"). A missing object is
// NotFound; the client follows a map change to the new owner.
func (g *Gateway) stat(ctx context.Context, name insitu.Name) (insitu.Object, error) {
	return g.c.Head(ctx, name)
}

// etag is the entity tag of obj's bytes read through b: a digest of the
// object's version (size and modification time on its node) and of b's
// chain and args. It changes when the object or the mapping changes; it
// is not an MD5 of the bytes.
func etag(obj insitu.Object, b Bucket) string {
	h := sha256.New()
	h.Write([]byte(obj.Version))
	h.Write([]byte{0})
	h.Write([]byte(strings.Join(b.Transform, ",")))
	h.Write([]byte{0})
	h.Write([]byte(b.Args))
	return `"` + hex.EncodeToString(h.Sum(nil)[:16]) + `"`
}

// modTime is obj's modification time, from its Version, or the gateway's
// start when the version does not tell.
func (g *Gateway) modTime(obj insitu.Object) time.Time {
	if _, ns, ok := strings.Cut(obj.Version, "-"); ok {
		if n, err := strconv.ParseInt(ns, 10, 64); err == nil {
			return time.Unix(0, n).UTC()
		}
	}
	return g.started
}

// respond logs a failure on the cluster's side and answers it.
func (g *Gateway) respond(w http.ResponseWriter, r *http.Request, err error, bucket, key string) {
	aerr := fromInsitu(err)
	if aerr.status >= 500 {
		g.log.Warn("gateway: request failed", "method", r.Method, "bucket", bucket, "key", key, "err", err)
	}
	writeError(w, r, aerr, bucket, key)
}

// serveObject answers GetObject and HeadObject.
func (g *Gateway) serveObject(w http.ResponseWriter, r *http.Request, bucket, key string, b Bucket, name insitu.Name) {
	ctx := r.Context()
	obj, err := g.stat(ctx, name)
	if err != nil {
		g.respond(w, r, err, bucket, key)
		return
	}
	tag := etag(obj, b)
	mod := g.modTime(obj)
	h := w.Header()
	h.Set("ETag", tag)
	h.Set("Last-Modified", mod.Format(http.TimeFormat))
	ctype := "application/octet-stream"
	if len(b.Transform) == 0 {
		if t := mime.TypeByExtension(path.Ext(key)); t != "" {
			ctype = t
		}
	}
	h.Set("Content-Type", ctype)
	if aerr := preconditions(r, tag); aerr != nil {
		if aerr.status == http.StatusNotModified {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		writeError(w, r, aerr, bucket, key)
		return
	}
	transformed := len(b.Transform) > 0
	h.Set("Accept-Ranges", "bytes")
	rangeHdr := r.Header.Get("Range")
	size := obj.Size
	if transformed {
		size = -1
		if r.Method == http.MethodHead || rangeHdr != "" {
			// The output's size is known only once the chain has run:
			// run it and count.
			if size, err = g.count(ctx, name, b); err != nil {
				g.respond(w, r, err, bucket, key)
				return
			}
		}
	}
	rng, aerr := parseRange(rangeHdr, size)
	if aerr != nil {
		if aerr.status == http.StatusRequestedRangeNotSatisfiable {
			h.Set("Content-Range", "bytes */"+strconv.FormatInt(size, 10))
		}
		writeError(w, r, aerr, bucket, key)
		return
	}
	if r.Method == http.MethodHead {
		if rng != nil {
			h.Set("Content-Range", rng.contentRange(size))
			h.Set("Content-Length", strconv.FormatInt(rng.length, 10))
			w.WriteHeader(http.StatusPartialContent)
			return
		}
		h.Set("Content-Length", strconv.FormatInt(size, 10))
		w.WriteHeader(http.StatusOK)
		return
	}

	rc, got, err := g.open(ctx, name, b)
	if err == nil && !transformed && got.Size >= 0 && got.Size != size {
		// Replaced since stat: the ETag and range were of another
		// version.
		rc.Close()
		err = &insitu.Error{Code: insitu.Unavailable, Name: name, Msg: "the object changed while it was read; try again"}
	}
	if size < 0 {
		size = got.Size // a small output, sent with its length
	}
	if err != nil {
		g.respond(w, r, err, bucket, key)
		return
	}
	defer rc.Close()
	status := http.StatusOK
	var body io.Reader = rc
	if rng != nil {
		if _, err := io.CopyN(io.Discard, rc, rng.start); err != nil {
			if err == io.EOF {
				// A transform whose output is shorter than when counted.
				err = &insitu.Error{Code: insitu.Unavailable, Name: name, Msg: "the transformed object is shorter than when its size was counted"}
			}
			g.respond(w, r, err, bucket, key)
			return
		}
		body = &exactReader{r: rc, n: rng.length, toEnd: rng.start+rng.length == size}
		h.Set("Content-Range", rng.contentRange(size))
		size = rng.length
		status = http.StatusPartialContent
	}
	if size >= 0 {
		h.Set("Content-Length", strconv.FormatInt(size, 10))
	}
	g.stream(w, r, body, status, size, bucket, key)
}

// open reads name through b: through its chain on the owner when it has
// one, else as stored. A NotFound of a chain on an object that exists is
// InternalError: the owner does not know a transform of the chain.
func (g *Gateway) open(ctx context.Context, name insitu.Name, b Bucket) (io.ReadCloser, insitu.Object, error) {
	if len(b.Transform) == 0 {
		return g.c.Get(ctx, name)
	}
	rc, obj, err := g.c.GetTransformed(ctx, name, b.Transform, b.Args)
	if err != nil && errors.Is(err, insitu.NotFound) {
		// The object was there a moment ago: either it went, or the
		// owner does not know a transform of the chain.
		if _, serr := g.stat(ctx, name); serr == nil {
			err = errorf(errInternal, "the owner of the object cannot run the transform chain %q: %v", strings.Join(b.Transform, ","), err)
		}
	}
	return rc, obj, err
}

// count runs name's object through b's chain on its owner and returns the
// size of the output, which it reads to the end (and so verifies) and
// drops.
func (g *Gateway) count(ctx context.Context, name insitu.Name, b Bucket) (int64, error) {
	rc, _, err := g.open(ctx, name, b)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	return io.Copy(io.Discard, rc)
}

// exactReader reads exactly n bytes of r: an r that ends sooner is an
// Unavailable error (a transform whose output changed since it was
// counted), never a clean end. With toEnd, the n bytes are the last of r,
// and r's end is read too, so that a transformed output's checksum is
// verified.
type exactReader struct {
	r     io.Reader
	n     int64
	toEnd bool
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > e.n {
		p = p[:e.n]
	}
	n, err := e.r.Read(p)
	e.n -= int64(n)
	switch {
	case e.n == 0 && err == nil && e.toEnd:
		var one [1]byte
		if m, err := io.ReadFull(e.r, one[:]); m > 0 {
			return n, insitu.Errorf(insitu.Unavailable, "the object is longer than when its size was counted")
		} else if err != io.EOF {
			return n, err
		}
		return n, io.EOF
	case e.n == 0 && (err == nil || err == io.EOF):
		return n, io.EOF
	case err == io.EOF:
		return n, insitu.Errorf(insitu.Unavailable, "the object ended %d bytes short of the range", e.n)
	}
	return n, err
}

// stream copies rc to w with the status. It reads the first bytes before
// it answers, so that a read that fails at once is an S3 error with its
// status. It holds back the last byte it read until the next read
// returns, so that a failure after the first bytes never leaves the
// client a body that looks whole: then it cuts the response (see
// [abort]).
func (g *Gateway) stream(w http.ResponseWriter, r *http.Request, rc io.Reader, status int, size int64, bucket, key string) {
	buf := make([]byte, 32<<10)
	n, err := io.ReadAtLeast(rc, buf, 1)
	if err != nil && err != io.EOF {
		g.respond(w, r, err, bucket, key)
		return
	}
	w.WriteHeader(status)
	if err == io.EOF {
		return
	}
	var held byte
	have := false
	var written int64
	for {
		if n > 0 {
			var out []byte
			if have {
				if _, werr := w.Write([]byte{held}); werr != nil {
					return // the client went away
				}
				written++
			}
			out, held, have = buf[:n-1], buf[n-1], true
			if _, werr := w.Write(out); werr != nil {
				return
			}
			written += int64(len(out))
		}
		if err == io.EOF {
			if have {
				if _, werr := w.Write([]byte{held}); werr != nil {
					return
				}
			}
			return
		}
		if err != nil {
			g.log.Warn("gateway: response cut", "bucket", bucket, "key", key, "sent", written, "err", err)
			abort(w, r, size < 0)
			return
		}
		n, err = rc.Read(buf)
	}
}

// abort cuts a response whose body has begun, so that the client sees an
// error and not a short body that looks whole. A body with a
// Content-Length is cut by closing the connection (it is short of at
// least one byte). A chunked body over HTTP/1.x is ended with a line that
// no chunked decoder accepts as a chunk's size, then the connection is
// closed: closing alone would leave some clients (minio-go among them)
// treating the end as io.EOF. Over HTTP/2 the stream is reset.
func abort(w http.ResponseWriter, r *http.Request, chunked bool) {
	if chunked && r.ProtoMajor == 1 {
		rc := http.NewResponseController(w)
		_ = rc.Flush()
		if conn, _, err := rc.Hijack(); err == nil {
			_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = conn.Write([]byte("!insitu: the transformed object failed\r\n"))
			conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// preconditions checks If-Match and If-None-Match against the ETag: a
// failed If-Match is PreconditionFailed, a matched If-None-Match is Not
// Modified (an *apiError with status 304).
func preconditions(r *http.Request, tag string) *apiError {
	match := func(list string) bool {
		for t := range strings.SplitSeq(list, ",") {
			t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
			if t == "*" || t == tag || `"`+t+`"` == tag {
				return true
			}
		}
		return false
	}
	if im := r.Header.Get("If-Match"); im != "" && !match(im) {
		return errorf(errPrecondition, "If-Match %s does not match the ETag %s", im, tag)
	}
	if inm := r.Header.Get("If-None-Match"); inm != "" && match(inm) {
		return &apiError{s3Code: s3Code{"NotModified", http.StatusNotModified}}
	}
	return nil
}

// byteRange is one satisfiable range of an object: length bytes from
// start.
type byteRange struct{ start, length int64 }

func (b *byteRange) contentRange(size int64) string {
	return "bytes " + strconv.FormatInt(b.start, 10) + "-" + strconv.FormatInt(b.start+b.length-1, 10) + "/" + strconv.FormatInt(size, 10)
}

// parseRange parses a Range header of one range ("bytes=a-b", "bytes=a-"
// or "bytes=-n") of an object of size bytes; nil for none. Several ranges
// are NotImplemented; a range that starts past the end is InvalidRange.
func parseRange(h string, size int64) (*byteRange, *apiError) {
	if h == "" {
		return nil, nil
	}
	spec, ok := strings.CutPrefix(h, "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return nil, errorf(errNotImplemented, "the Range %q is not served: one range of bytes only", h)
	}
	first, last, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return nil, errorf(errInvalidArgument, "the Range %q is malformed", h)
	}
	if first == "" { // the last n bytes
		n, err := strconv.ParseInt(last, 10, 64)
		if err != nil || n < 0 {
			return nil, errorf(errInvalidArgument, "the Range %q is malformed", h)
		}
		if n == 0 {
			return nil, errorf(errInvalidRange, "the Range %q is empty", h)
		}
		n = min(n, size)
		return &byteRange{start: size - n, length: n}, nil
	}
	a, err := strconv.ParseInt(first, 10, 64)
	if err != nil || a < 0 {
		return nil, errorf(errInvalidArgument, "the Range %q is malformed", h)
	}
	if a >= size {
		return nil, errorf(errInvalidRange, "the Range %q starts at or past the end of the object's %d bytes", h, size)
	}
	end := size - 1
	if last != "" {
		e, err := strconv.ParseInt(last, 10, 64)
		if err != nil || e < a {
			return nil, errorf(errInvalidArgument, "the Range %q is malformed", h)
		}
		end = min(e, size-1)
	}
	return &byteRange{start: a, length: end - a + 1}, nil
}
