package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/wire"
	"github.com/insitu-data/insitu/locality"
	"github.com/insitu-data/insitu/node"
)

// fuzzStatuses are the statuses the node API documents (docs/PROTOCOL.md),
// and the redirects of net/http's ServeMux to the clean form of a path
// such as "/v1/objects/b/./k"; 500 is not one: a request that is merely
// malformed must not reach it.
var fuzzStatuses = map[int]bool{
	http.StatusMovedPermanently: true, http.StatusTemporaryRedirect: true, http.StatusPermanentRedirect: true,
	http.StatusOK: true, http.StatusCreated: true, http.StatusNoContent: true,
	http.StatusPartialContent: true, http.StatusNotModified: true,
	http.StatusBadRequest: true, http.StatusUnauthorized: true, http.StatusForbidden: true,
	http.StatusNotFound: true, http.StatusMethodNotAllowed: true, http.StatusConflict: true,
	http.StatusPreconditionFailed: true, http.StatusRequestEntityTooLarge: true,
	http.StatusRequestedRangeNotSatisfiable: true, http.StatusServiceUnavailable: true,
}

// validToken reports whether s is an HTTP token (a method), as a server
// requires of a request line.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// validFieldValue reports whether s can be an HTTP header value, as a
// server requires: no control bytes but tab.
func validFieldValue(s string) bool {
	for _, c := range []byte(s) {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// fuzzBody is a request body that, like a server's, ends early with
// io.ErrUnexpectedEOF when it is shorter than its declared length.
type fuzzBody struct {
	r     *bytes.Reader
	short bool
}

func (b *fuzzBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF && b.short {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (b *fuzzBody) Close() error { return nil }

// FuzzNodeAPI sends a real node arbitrary requests (method, path and
// query, the Insitu-Job, Insitu-Input and Content-Length headers, a small
// body, with or without the bearer token) through its Handler. It checks
// that the node never panics; answers with a documented status, never 500;
// that an error's body is a JSON ErrorBody whose code is a known one and
// neither "unknown" nor "internal"; and that the store directory holds
// nothing but regular files at <dir>/<bucket>/<key> of valid names, and
// its parent nothing but the store.
func FuzzNodeAPI(f *testing.F) {
	seeds := []struct {
		method, target, job, input, length string
		body                               []byte
		authed                             bool
	}{
		{"GET", "/v1/health", "", "", "", nil, false},
		{"GET", "/v1/map", "", "", "", nil, true},
		{"PUT", "/v1/map", "", "", "", []byte(`{"version":2,"nodes":[{"id":"solo","url":"http://127.0.0.1:1"}]}`), true},
		{"PUT", "/v1/map", "", "", "", []byte(`{"version":9007199254740991,"nodes":[{"id":"solo","url":"http://127.0.0.1:1"}]}`), true},
		{"PUT", "/v1/objects/b/k", "", "", "5", []byte("hello"), true},
		{"PUT", "/v1/objects/b/dir/x.flac", "j1", "in/a.flac", "", []byte("abc"), true},
		{"PUT", "/v1/objects/b/k", "", "", "10", []byte("short"), true},
		{"PUT", "/v1/objects/b/%2e%2e/%2e%2e/etc/passwd", "", "", "", []byte("x"), true},
		{"PUT", "/v1/objects/b/a%2F..%2F..%2Fx", "", "", "", []byte("x"), true},
		{"PUT", "/v1/objects/..%2F/k", "", "", "", []byte("x"), true},
		{"PUT", "/v1/objects/b/k%00", "", "", "", []byte("x"), true},
		{"PUT", "/v1/objects/b/.insitu-tmp-x", "", "", "", []byte("x"), true},
		{"GET", "/v1/objects/b/k", "", "", "", nil, true},
		{"HEAD", "/v1/objects/b/k", "", "", "", nil, true},
		{"DELETE", "/v1/objects/b/k", "", "", "", nil, true},
		{"GET", "/v1/objects/b?prefix=d&after=a&limit=2", "", "", "", nil, true},
		{"GET", "/v1/objects/b?limit=-1", "", "", "", nil, true},
		{"GET", "/v1/objects/b/k", "", "", "", nil, false},
		{"POST", "/v1/jobs", "", "", "", []byte(`{"id":"j","bucket":"in","dst_bucket":"out","transform":"t"}`), true},
		{"POST", "/v1/jobs", "", "", "", []byte(`{"bucket":"in","dst_bucket":"out","server":{"mode":"ws"}}`), true},
		{"POST", "/v1/jobs", "", "", "", []byte(`{"bucket":"in","dst_bucket":"out","transform":"t"} x`), true},
		{"GET", "/v1/jobs", "", "", "", nil, true},
		{"GET", "/v1/jobs/j?wait=10ms", "", "", "", nil, true},
		{"GET", "/v1/jobs/j?wait=-1s", "", "", "", nil, true},
		{"DELETE", "/v1/jobs/j", "", "", "", nil, true},
		{"POST", "/v1/jobs/j/claims", "", "", "", []byte(`{}`), true},
		{"BREW", "/v1/objects/b/k", "", "", "", nil, true},
		{"GET", "/nowhere", "", "", "", nil, true},
	}
	for _, s := range seeds {
		f.Add(s.method, s.target, s.job, s.input, s.length, s.body, s.authed)
	}

	// One node per fuzzing process: the fuzz function runs many times.
	parent := f.TempDir()
	dir := filepath.Join(parent, "store")
	secret := locality.Secret("fuzz secret")
	m, err := locality.NewMap(1, locality.Node{ID: "solo", URL: "http://127.0.0.1:1"})
	if err != nil {
		f.Fatal(err)
	}
	nd, err := node.New(context.Background(), "solo", dir, m, &node.Options{Secret: secret, MaxObjectSize: 1 << 10})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() {
		if err := nd.Shutdown(context.Background()); err != nil {
			f.Errorf("Shutdown: %v", err)
		}
	})
	h := nd.Handler()

	f.Fuzz(func(t *testing.T, method, target, job, input, length string, body []byte, authed bool) {
		// Keep to what a server hands a handler: a valid request line
		// and header fields; a body no longer than its Content-Length.
		if !validToken(method) || !strings.HasPrefix(target, "/") || len(body) > 4<<10 {
			t.Skip()
		}
		u, err := url.ParseRequestURI(target)
		if err != nil || !validFieldValue(job) || !validFieldValue(input) {
			t.Skip()
		}
		r := &http.Request{
			Method: method, URL: u, RequestURI: target, Host: "127.0.0.1",
			Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{}, RemoteAddr: "127.0.0.1:1234",
		}
		fb := &fuzzBody{}
		switch {
		case length != "":
			n, err := strconv.ParseInt(length, 10, 64)
			if err != nil || n < 0 {
				t.Skip() // the server answers 400 itself
			}
			r.Header.Set("Content-Length", length)
			r.ContentLength = n
			if n < int64(len(body)) {
				body = body[:n]
			}
			fb.short = n > int64(len(body))
		case len(body) > 0:
			r.ContentLength = -1 // chunked
		}
		fb.r = bytes.NewReader(body)
		r.Body = fb
		if job != "" {
			r.Header.Set(wire.Job, job)
		}
		if input != "" {
			r.Header.Set(wire.Input, input)
		}
		if authed {
			secret.Authorize(r)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		r = r.WithContext(ctx)

		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		resp := w.Result()
		if !fuzzStatuses[resp.StatusCode] {
			t.Fatalf("%s %q (job %q, input %q, length %q, %d bytes): status %d, body %q", method, target, job, input, length, len(body), resp.StatusCode, w.Body.Bytes())
		}
		if resp.StatusCode >= 400 && method != http.MethodHead {
			var eb wire.ErrorBody
			dec := json.NewDecoder(bytes.NewReader(w.Body.Bytes()))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&eb); err != nil {
				t.Fatalf("%s %q: status %d with a body that is no ErrorBody (%v): %q", method, target, resp.StatusCode, err, w.Body.Bytes())
			}
			if eb.Code == insitu.Unknown || eb.Code == insitu.Internal || eb.Message == "" {
				t.Fatalf("%s %q: status %d with error body %+v", method, target, resp.StatusCode, eb)
			}
		}
		checkStore(t, parent, dir)
	})
}

// checkStore fails t unless parent holds only the store dir, and dir only
// regular files at <bucket>/<key> of valid names, in directories.
func checkStore(t *testing.T, parent, dir string) {
	t.Helper()
	ents, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != "store" {
		names := []string{}
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Fatalf("the store's parent holds %q; want only the store", names)
	}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || !filepath.IsLocal(rel) {
			t.Fatalf("%s is outside the store %s", p, dir)
		}
		switch {
		case d.IsDir():
			return nil
		case !d.Type().IsRegular():
			t.Fatalf("the store holds %s, of type %v", rel, d.Type())
		}
		bucket, key, ok := strings.Cut(filepath.ToSlash(rel), "/")
		if !ok {
			t.Fatalf("the store holds the file %s outside any bucket", rel)
		}
		if err := (insitu.Name{Bucket: bucket, Key: key}).Validate(); err != nil {
			t.Fatalf("the store holds %s, whose name is invalid: %v", rel, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
