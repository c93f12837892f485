package transporttest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
)

// WireOptions tells [RunServer] what to expect of the server under test.
// The zero value (or nil) is a server without a secret, without
// local-file roots the suite knows, and without a size limit.
type WireOptions struct {
	// Token is the bearer token the server requires on every endpoint but
	// GET /health ("" when it requires none). With a token, the suite
	// checks that a request without it, or with another, is refused.
	Token string
	// Root is a directory of this machine that the server lists in its
	// local-file roots; the suite writes its test files in a fresh
	// directory under it. "" skips the local-file tests.
	Root string
	// MaxObjectSize is the server's limit on an input's length, 0 for
	// none. With a limit, the suite checks that a longer input is
	// refused with too_large; it never sends more than 2 MiB otherwise,
	// so the limit must be larger.
	MaxObjectSize int64
}

// RunServer checks the transform server at serverURL (such as
// http://127.0.0.1:7101) on the wire, as docs/PROTOCOL.md specifies it:
// it makes raw HTTP calls and sends raw WebSocket frames, and checks every
// status, header, trailer, error body and frame that comes back. The
// server must serve [Conformance], run on this machine, and keep the
// protocol's defaults for direct-put destinations and hpull sources
// (loopback hosts allowed, others refused): the suite starts a source and
// a destination on 127.0.0.1.
//
// Over HTTP: GET /health; hpush and hpull of inputs from 0 B to over 1 MiB,
// with and without Content-Length; the object's name (the empty bucket as
// "~", escaped key segments), size, owner and args; the status and JSON
// body of every error code; error and skip trailers after output began; a
// skipped object's 204; each malformed request's 400; a size that is not
// the body's length; hpull fetches (tokens, a missing source, a source's
// own code); direct puts (the put result, nothing stored on failure, a
// destination's error and wrong checksum); local files (when
// opts.Root is set); authentication (when opts.Token is set); the size
// limit (when opts.MaxObjectSize is set).
//
// Over WebSocket (GET /v1/stream): the handshake and its headers; OPEN,
// DATA, END, CREDIT, CANCEL, ERROR and RESULT frames; many requests in
// flight on one connection; flow control both ways (the server never
// sends more output than the window the suite announced and granted, and
// closes the connection when the suite sends more input than its window);
// the stream limit; ERROR frames for requests that cannot run, after
// which the connection still works; frames for requests not in flight
// dropped quietly; every malformed frame closes the connection with 1002,
// and a message over the read limit with 1009.
// Every frame the server sends is checked against the frame format.
func RunServer(t *testing.T, serverURL string, opts *WireOptions) {
	w := &wire{base: strings.TrimSuffix(serverURL, "/")}
	if opts != nil {
		w.opts = *opts
	}
	w.http = &http.Client{Transport: &http.Transport{DisableCompression: true}}
	t.Cleanup(w.http.CloseIdleConnections)
	if w.opts.MaxObjectSize > 0 && w.opts.MaxObjectSize <= 2<<20 {
		t.Fatalf("transporttest: WireOptions.MaxObjectSize %d is not over the 2 MiB the suite sends", w.opts.MaxObjectSize)
	}
	tests := []struct {
		name string
		fn   func(*testing.T)
		when bool
	}{
		{"HTTP/Health", w.testHealth, true},
		{"HTTP/Auth", w.testHTTPAuth, w.opts.Token != ""},
		{"HTTP/Echo", w.testHTTPEcho, true},
		{"HTTP/Names", w.testHTTPNames, true},
		{"HTTP/ErrorCodes", w.testHTTPErrorCodes, true},
		{"HTTP/Trailers", w.testHTTPTrailers, true},
		{"HTTP/Skip", w.testHTTPSkip, true},
		{"HTTP/BadRequests", w.testHTTPBadRequests, true},
		{"HTTP/SizeMismatch", w.testHTTPSizeMismatch, true},
		{"HTTP/Pull", w.testHTTPPull, true},
		{"HTTP/DirectPut", w.testHTTPDirectPut, true},
		{"HTTP/LocalFile", w.testHTTPLocalFile, w.opts.Root != ""},
		{"HTTP/TooLarge", w.testHTTPTooLarge, w.opts.MaxObjectSize > 0},
		{"WS/Handshake", w.testWSHandshake, true},
		{"WS/Auth", w.testWSAuth, w.opts.Token != ""},
		{"WS/Echo", w.testWSEcho, true},
		{"WS/Concurrent", w.testWSConcurrent, true},
		{"WS/Info", w.testWSInfo, true},
		{"WS/ErrorCodes", w.testWSErrorCodes, true},
		{"WS/LateError", w.testWSLateError, true},
		{"WS/Skip", w.testWSSkip, true},
		{"WS/DirectPut", w.testWSDirectPut, true},
		{"WS/Pull", w.testWSPull, true},
		{"WS/LocalFile", w.testWSLocalFile, w.opts.Root != ""},
		{"WS/Cancel", w.testWSCancel, true},
		{"WS/Timeout", w.testWSTimeout, true},
		{"WS/InputWindow", w.testWSInputWindow, true},
		{"WS/OutputWindow", w.testWSOutputWindow, true},
		{"WS/MaxStreams", w.testWSMaxStreams, true},
		{"WS/BadRequests", w.testWSBadRequests, true},
		{"WS/SizeMismatch", w.testWSSizeMismatch, true},
		{"WS/BrokenFrames", w.testWSBrokenFrames, true},
	}
	for _, tc := range tests {
		if tc.when {
			t.Run(tc.name, tc.fn)
		}
	}
}

// wire is the state of one RunServer.
type wire struct {
	base string
	opts WireOptions
	http *http.Client
}

// allCodes are the codes and the HTTP statuses that carry them.
var allCodes = []struct {
	code   insitu.Code
	status int
}{
	{insitu.InvalidArgument, 400}, {insitu.PermissionDenied, 403}, {insitu.NotFound, 404},
	{insitu.NotOwner, 409}, {insitu.TooLarge, 413}, {insitu.Canceled, 499},
	{insitu.Internal, 500}, {insitu.Unknown, 500}, {insitu.Unavailable, 503},
	{insitu.DeadlineExceeded, 504},
}

// request is one raw HTTP call.
type request struct {
	method string
	path   string // escaped, from the server's root
	header map[string]string
	body   []byte
	// chunked sends the body without a Content-Length.
	chunked bool
	// noAuth leaves out the bearer token.
	noAuth bool
}

// response is what came back, the body read whole.
type response struct {
	*http.Response
	body []byte
}

func (w *wire) do(t *testing.T, r request) response {
	t.Helper()
	var body io.Reader
	if r.body != nil || r.chunked {
		body = bytes.NewReader(r.body)
		if r.chunked {
			body = io.MultiReader(body) // hides the length
		}
	}
	req, err := http.NewRequestWithContext(t.Context(), r.method, w.base+r.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if r.chunked {
		req.ContentLength = -1
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	if w.opts.Token != "" && !r.noAuth {
		req.Header.Set("Authorization", "Bearer "+w.opts.Token)
	}
	resp, err := w.http.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", r.method, r.path, err)
	}
	return response{Response: resp, body: b}
}

// errorBody is the JSON error of the protocol.
type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// wantError checks an error response: its status, a JSON body of the code
// and, when msg is not "", a message holding msg.
func wantError(t *testing.T, what string, r response, status int, code insitu.Code, msg string) errorBody {
	t.Helper()
	var b errorBody
	if err := json.Unmarshal(r.body, &b); err != nil {
		t.Fatalf("%s: status %d with the body %q, want a JSON error", what, r.StatusCode, trunc(string(r.body)))
	}
	if r.StatusCode != status || b.Code != code.String() {
		t.Fatalf("%s: %d %s %q, want %d %s", what, r.StatusCode, b.Code, b.Message, status, code)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: an error with Content-Type %q, want application/json", what, ct)
	}
	if b.Message == "" {
		t.Errorf("%s: an error without a message", what)
	}
	if msg != "" && !strings.Contains(b.Message, msg) {
		t.Errorf("%s: message %q, want one with %q", what, b.Message, msg)
	}
	return b
}

// wantOutput checks a 200 response that carries the output want.
func wantOutput(t *testing.T, what string, r response, want []byte) {
	t.Helper()
	if r.StatusCode != 200 {
		t.Fatalf("%s: status %d, body %q; want 200", what, r.StatusCode, trunc(string(r.body)))
	}
	if !bytes.Equal(r.body, want) {
		t.Fatalf("%s: %d bytes of output (checksum %s), want %d (checksum %s)", what, len(r.body), checksum(r.body), len(want), checksum(want))
	}
	for _, k := range []string{"Insitu-Error-Code", "Insitu-Skipped"} {
		if v := r.Trailer.Get(k); v != "" {
			t.Fatalf("%s: the trailer %s: %s on a good output", what, k, v)
		}
	}
}

// escapePath returns the URL path of the hpush/hpull request of name.
func escapePath(name insitu.Name) string {
	b := name.Bucket
	if b == "" {
		b = "~"
	}
	return "/v1/transform/" + url.PathEscape(b) + "/" + escapeKey(name.Key)
}

func (w *wire) testHealth(t *testing.T) {
	r := w.do(t, request{method: "GET", path: "/health", noAuth: true})
	var b struct {
		Status string `json:"status"`
	}
	if r.StatusCode != 200 || json.Unmarshal(r.body, &b) != nil || b.Status != "ok" {
		t.Fatalf("GET /health without a token: %d %q, want 200 {\"status\":\"ok\"}", r.StatusCode, r.body)
	}
}

func (w *wire) testHTTPAuth(t *testing.T) {
	for _, c := range []struct {
		what, method, path string
		header             map[string]string
	}{
		{"hpush without a token", "PUT", "/v1/transform/b/echo/x", nil},
		{"hpull without a token", "GET", "/v1/transform/b/echo/x", nil},
		{"the stream without a token", "GET", "/v1/stream", nil},
		{"hpush with a wrong token", "PUT", "/v1/transform/b/echo/x", map[string]string{"Authorization": "Bearer 0123"}},
		{"the stream with a wrong token", "GET", "/v1/stream", map[string]string{"Authorization": "Bearer 0123"}},
	} {
		r := w.do(t, request{method: c.method, path: c.path, header: c.header, noAuth: true, body: []byte{}})
		wantError(t, c.what, r, 401, insitu.PermissionDenied, "")
		if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: WWW-Authenticate %q, want a Bearer challenge", c.what, r.Header.Get("WWW-Authenticate"))
		}
	}
}

func (w *wire) testHTTPEcho(t *testing.T) {
	for i, n := range []int{0, 1, 64<<10 + 1, 1<<20 + 3} {
		data := genBytes(uint64(i), int64(n))
		r := w.do(t, request{method: "PUT", path: "/v1/transform/b/echo/" + strconv.Itoa(n), body: data})
		wantOutput(t, fmt.Sprintf("hpush of %d bytes", n), r, data)
		if n == 0 {
			continue
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/octet-stream" {
			t.Errorf("hpush of %d bytes: Content-Type %q, want application/octet-stream", n, ct)
		}
		r = w.do(t, request{method: "PUT", path: "/v1/transform/b/echo/chunked-" + strconv.Itoa(n), body: data, chunked: true})
		wantOutput(t, fmt.Sprintf("hpush of %d bytes without a Content-Length", n), r, data)
	}
}

// infoLines is what info/... writes.
func infoLines(name insitu.Name, size int64, owner, path string, read int64, args string) string {
	return fmt.Sprintf("%s\n%s\n%d\n%s\n%s\n%d\n%s", name.Bucket, name.Key, size, owner, path, read, args)
}

// oddArgs are args that need escaping in a header.
const oddArgs = "-ar 44100 ünïcödé, 100% \"quoted\"\nsecond line\ttab & ?q=#f"

func (w *wire) testHTTPNames(t *testing.T) {
	for _, c := range []struct {
		name    insitu.Name
		size    int64
		chunked bool
	}{
		{insitu.Name{Bucket: "b", Key: "info/plain.txt"}, 5, false},
		{insitu.Name{Bucket: "", Key: "info/no-bucket.bin"}, 3, false},
		{insitu.Name{Bucket: "My_Bucket-2.0", Key: "info/sub dir/ünï%20?#&+;=.bin"}, 7, false},
		{insitu.Name{Bucket: "b", Key: "info/sized-chunked"}, 4, true},
	} {
		body := bytes.Repeat([]byte("x"), int(c.size))
		h := map[string]string{"Insitu-Args": url.PathEscape(oddArgs), "Insitu-Owner": url.PathEscape("node-ü7")}
		if c.chunked {
			h["Insitu-Size"] = strconv.FormatInt(c.size, 10)
		}
		r := w.do(t, request{method: "PUT", path: escapePath(c.name), header: h, body: body, chunked: c.chunked})
		wantOutput(t, "hpush of "+c.name.String(), r, []byte(infoLines(c.name, c.size, "node-ü7", "", c.size, oddArgs)))
	}
	// Without a size, the input's size is -1.
	r := w.do(t, request{method: "PUT", path: "/v1/transform/b/info/unsized", body: []byte("abc"), chunked: true})
	wantOutput(t, "hpush without a size", r, []byte(infoLines(insitu.Name{Bucket: "b", Key: "info/unsized"}, -1, "", "", 3, "")))
}

func (w *wire) testHTTPErrorCodes(t *testing.T) {
	for _, c := range allCodes {
		msg := "the transform says " + c.code.String() + " ünï\n100%"
		r := w.do(t, request{method: "PUT", path: "/v1/transform/b/fail/" + c.code.String() + "/x",
			header: map[string]string{"Insitu-Args": url.PathEscape(msg)}, body: []byte("input")})
		b := wantError(t, "a transform failing with "+c.code.String(), r, c.status, c.code, "")
		if b.Message != msg {
			t.Errorf("%s: message %q, want the transform's %q (without the name or the code)", c.code, b.Message, msg)
		}
	}
}

func (w *wire) testHTTPTrailers(t *testing.T) {
	data := genBytes(3, 100<<10)
	msg := "lost the encoder\nhalfway: 100%"
	for _, method := range []string{"PUT", "PUT chunked"} {
		r := w.do(t, request{method: "PUT", path: "/v1/transform/b/late/unavailable/x",
			header: map[string]string{"Insitu-Args": url.PathEscape(msg)}, body: data, chunked: method == "PUT chunked"})
		if r.StatusCode != 200 || !bytes.Equal(r.body, data) {
			t.Fatalf("%s of a late failure: status %d and %d bytes, want 200 and the %d bytes written", method, r.StatusCode, len(r.body), len(data))
		}
		if got := r.Trailer.Get("Insitu-Error-Code"); got != "unavailable" {
			t.Fatalf("%s of a late failure: the trailer Insitu-Error-Code is %q, want unavailable (trailers %v)", method, got, r.Trailer)
		}
		if got, err := url.PathUnescape(r.Trailer.Get("Insitu-Error-Message")); err != nil || got != msg {
			t.Fatalf("%s of a late failure: the trailer Insitu-Error-Message is %q (%v), want %q escaped", method, r.Trailer.Get("Insitu-Error-Message"), err, msg)
		}
	}
	r := w.do(t, request{method: "PUT", path: "/v1/transform/b/skiplate/x", body: data})
	if r.StatusCode != 200 || r.Trailer.Get("Insitu-Skipped") != "true" {
		t.Fatalf("a skip after output: status %d, trailers %v; want 200 and Insitu-Skipped: true", r.StatusCode, r.Trailer)
	}
}

func (w *wire) testHTTPSkip(t *testing.T) {
	r := w.do(t, request{method: "PUT", path: "/v1/transform/b/skip/x", body: []byte("abc")})
	if r.StatusCode != 204 || r.Header.Get("Insitu-Skipped") != "true" || len(r.body) != 0 {
		t.Fatalf("a skipped object: %d, Insitu-Skipped %q, %d bytes; want 204, true and no body", r.StatusCode, r.Header.Get("Insitu-Skipped"), len(r.body))
	}
	r = w.do(t, request{method: "PUT", path: "/v1/transform/b/echo/empty", body: []byte{}})
	if r.StatusCode != 200 || len(r.body) != 0 {
		t.Fatalf("an empty output: %d with %d bytes, want 200 and none", r.StatusCode, len(r.body))
	}
}

func (w *wire) testHTTPBadRequests(t *testing.T) {
	obj := "/v1/transform/b/echo/x"
	src := "http://127.0.0.1:9/v1/objects/b/k"
	for _, c := range []struct {
		what   string
		method string
		path   string
		h      map[string]string
		body   string
	}{
		{"a size that does not parse", "PUT", obj, map[string]string{"Insitu-Size": "ten"}, "0123456789"},
		{"a size that is not the Content-Length", "PUT", obj, map[string]string{"Insitu-Size": "5"}, "abc"},
		{"a size below -1", "PUT", obj, map[string]string{"Insitu-Size": "-2"}, ""},
		{"args that do not unescape", "PUT", obj, map[string]string{"Insitu-Args": "%zz"}, ""},
		{"a timeout that does not parse", "PUT", obj, map[string]string{"Insitu-Timeout": "soon"}, ""},
		{"a negative timeout", "PUT", obj, map[string]string{"Insitu-Timeout": "-5"}, ""},
		{"an empty key segment", "PUT", "/v1/transform/b/echo%2F%2Fx", nil, ""},
		{"a bad bucket", "PUT", "/v1/transform/b%20c/echo/x", nil, ""},
		{"an hpull without a source", "GET", obj, nil, ""},
		{"a path and a body", "PUT", obj, map[string]string{"Insitu-Path": "/tmp/x"}, "abc"},
		{"a source and a body", "PUT", obj, map[string]string{"Insitu-Source-Url": src}, "abc"},
		{"a relative path", "PUT", obj, map[string]string{"Insitu-Path": "tmp/x"}, ""},
		{"a path and a source", "GET", obj, map[string]string{"Insitu-Path": "/tmp/x", "Insitu-Source-Url": src}, ""},
		{"a source that is not http", "GET", obj, map[string]string{"Insitu-Source-Url": "file:///etc/passwd"}, ""},
		{"a source without a host", "GET", obj, map[string]string{"Insitu-Source-Url": "http:///x"}, ""},
		{"a source with credentials", "GET", obj, map[string]string{"Insitu-Source-Url": "http://u:p@127.0.0.1:9/x"}, ""},
		{"a source that is not loopback", "GET", obj, map[string]string{"Insitu-Source-Url": "http://192.0.2.1:7001/v1/objects/b/k"}, ""},
		{"a put URL with credentials", "PUT", obj, map[string]string{"Insitu-Put-Url": "http://u:p@127.0.0.1:9/x"}, ""},
		{"a put URL that is not http", "PUT", obj, map[string]string{"Insitu-Put-Url": "ftp://127.0.0.1/x"}, ""},
		{"a put URL that is not loopback", "PUT", obj, map[string]string{"Insitu-Put-Url": "http://192.0.2.1:7001/v1/objects/b/k"}, ""},
	} {
		r := w.do(t, request{method: c.method, path: c.path, header: c.h, body: []byte(c.body)})
		wantError(t, c.what, r, 400, insitu.InvalidArgument, "")
	}
}

func (w *wire) testHTTPSizeMismatch(t *testing.T) {
	// Without a Content-Length only Insitu-Size tells the size: the
	// server must hold the body to it.
	for _, c := range []struct {
		size int
		body string
	}{{5, "abc"}, {3, "abcde"}, {0, "a"}} {
		r := w.do(t, request{method: "PUT", path: "/v1/transform/b/info/mismatch",
			header: map[string]string{"Insitu-Size": strconv.Itoa(c.size)}, body: []byte(c.body), chunked: true})
		wantError(t, fmt.Sprintf("Insitu-Size %d with a chunked body of %d bytes", c.size, len(c.body)), r, 400, insitu.InvalidArgument, "")
	}
}

// source serves objects for hpull over the wire: GET
// /v1/objects/{bucket}/{key...}, with Content-Length.
type wireSource struct {
	base  string
	token string

	mu   sync.Mutex
	seen []string // the Authorization headers it got
}

func startWireSource(t *testing.T, token string, objects map[string][]byte) *wireSource {
	s := &wireSource{token: token}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/objects/{bucket}/{key...}", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.seen = append(s.seen, r.Header.Get("Authorization"))
		s.mu.Unlock()
		if s.token != "" && r.Header.Get("Authorization") != "Bearer "+s.token {
			writeJSONError(w, 401, insitu.PermissionDenied, "bad token")
			return
		}
		key := r.PathValue("key")
		if key == "elsewhere" {
			writeJSONError(w, 409, insitu.NotOwner, "another node owns it")
			return
		}
		b, ok := objects[key]
		if !ok {
			writeJSONError(w, 404, insitu.NotFound, "no such object")
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.Write(b)
	})
	s.base = serve(t, mux)
	return s
}

func (s *wireSource) url(key string) string { return s.base + "/v1/objects/b/" + escapeKey(key) }

func (s *wireSource) lastAuth() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.seen) == 0 {
		return "(no request)"
	}
	return s.seen[len(s.seen)-1]
}

func writeJSONError(w http.ResponseWriter, status int, code insitu.Code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(errorBody{Code: code.String(), Message: msg})
}

func (w *wire) testHTTPPull(t *testing.T) {
	data := genBytes(11, 300<<10)
	src := startWireSource(t, "source-token", map[string][]byte{"in.bin": data, "empty": {}})
	pull := func(key string, h map[string]string) response {
		return w.do(t, request{method: "GET", path: "/v1/transform/b/" + key, header: h})
	}
	withToken := func(u string) map[string]string {
		return map[string]string{"Insitu-Source-Url": u, "Insitu-Source-Token": "source-token"}
	}
	wantOutput(t, "hpull", pull("echo/x", withToken(src.url("in.bin"))), data)
	if got := src.lastAuth(); got != "Bearer source-token" {
		t.Errorf("hpull with Insitu-Source-Token: the source got Authorization %q, want Bearer source-token", got)
	}
	wantOutput(t, "hpull of an empty object", pull("echo/y", withToken(src.url("empty"))), []byte{})
	// The source's Content-Length is the input's size.
	wantOutput(t, "hpull's size", pull("info/x", withToken(src.url("in.bin"))),
		[]byte(infoLines(insitu.Name{Bucket: "b", Key: "info/x"}, int64(len(data)), "", "", int64(len(data)), "")))
	// A source's error keeps its code.
	wantError(t, "hpull of a missing source object", pull("echo/x", withToken(src.url("missing"))), 404, insitu.NotFound, "")
	wantError(t, "hpull from a source that is not the owner", pull("echo/x", withToken(src.url("elsewhere"))), 409, insitu.NotOwner, "")
	wantError(t, "hpull with a wrong source token", pull("echo/x", map[string]string{"Insitu-Source-Url": src.url("in.bin"), "Insitu-Source-Token": "wrong"}), 403, insitu.PermissionDenied, "")
	// Without a source token the server sends none: never its own token,
	// which is for its clients, not for the nodes.
	open := startWireSource(t, "", map[string][]byte{"in.bin": data})
	wantOutput(t, "hpull without a source token", pull("echo/x", map[string]string{"Insitu-Source-Url": open.url("in.bin")}), data)
	if got := open.lastAuth(); got != "" {
		t.Errorf("hpull without Insitu-Source-Token: the source got Authorization %q, want none", got)
	}
	// A source that cannot be reached is unavailable.
	wantError(t, "hpull from a source that is down", pull("echo/x", withToken("http://127.0.0.1:1/v1/objects/b/k")), 503, insitu.Unavailable, "")
}

func (w *wire) testHTTPDirectPut(t *testing.T) {
	n := startNode(t, "node-token")
	data := genBytes(12, 200<<10)
	put := func(key string, body []byte, dst insitu.Destination) response {
		return w.do(t, request{method: "PUT", path: "/v1/transform/b/" + key, body: body,
			header: map[string]string{"Insitu-Put-Url": dst.URL, "Insitu-Put-Token": dst.Token}})
	}
	for i, b := range [][]byte{data, {}} {
		name := insitu.Name{Bucket: "out", Key: fmt.Sprintf("put-%d.bin", i)}
		r := put("echo/x", b, n.dest(name))
		wantPutResult(t, fmt.Sprintf("a direct put of %d bytes", len(b)), r.StatusCode, r.Header.Get("Content-Type"), r.body, name, b)
		if got, ok := n.get(name); !ok || !bytes.Equal(got, b) {
			t.Fatalf("a direct put of %d bytes: the destination holds %d bytes (%v)", len(b), len(got), ok)
		}
	}
	// A failure stores nothing, whether the output had begun or not.
	for _, key := range []string{"fail/not_found/x", "late/unavailable/x"} {
		name := insitu.Name{Bucket: "out", Key: "failed-" + strings.ReplaceAll(key, "/", "-")}
		r := put(key, data, n.dest(name))
		if r.StatusCode == 200 {
			t.Fatalf("a direct put of %s: 200 %q, want an error", key, trunc(string(r.body)))
		}
		if _, ok := n.get(name); ok {
			t.Fatalf("a direct put of %s left an object at the destination", key)
		}
	}
	// The destination's error keeps its code.
	dst := n.dest(insitu.Name{Bucket: "out", Key: "bad-token"})
	dst.Token = "wrong"
	wantError(t, "a direct put that the destination refuses", put("echo/x", data, dst), 403, insitu.PermissionDenied, "")
	// A destination that stores other bytes than sent is internal.
	liar := startNode(t, "node-token")
	liar.lie = true
	wantError(t, "a destination that answers the wrong checksum", put("echo/x", data, liar.dest(insitu.Name{Bucket: "out", Key: "lie"})), 500, insitu.Internal, "")
}

// wantPutResult checks the answer of a direct put.
func wantPutResult(t *testing.T, what string, status int, contentType string, body []byte, name insitu.Name, data []byte) {
	t.Helper()
	var res insitu.PutResult
	if status != 200 || json.Unmarshal(body, &res) != nil {
		t.Fatalf("%s: %d %q, want 200 and a JSON put result", what, status, trunc(string(body)))
	}
	if contentType != "" && !strings.HasPrefix(contentType, "application/json") {
		t.Errorf("%s: Content-Type %q, want application/json", what, contentType)
	}
	if res.Name != name || res.Size != int64(len(data)) || res.Checksum != checksum(data) {
		t.Fatalf("%s: result %+v, want name %v, size %d, checksum %s", what, res, name, len(data), checksum(data))
	}
}

// localFiles makes the files of the local-file tests under root and
// outside it.
type localFiles struct {
	dir, file, resolved, outside, link, missing string
	data                                        []byte
}

func makeLocalFiles(t *testing.T, root string) localFiles {
	dir, err := os.MkdirTemp(root, "transporttest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	outside := t.TempDir()
	f := localFiles{dir: dir, file: filepath.Join(dir, "in.bin"), data: genBytes(13, 150<<10)}
	must(t, os.WriteFile(f.file, f.data, 0o644))
	f.resolved, err = filepath.EvalSymlinks(f.file)
	must(t, err)
	f.outside = filepath.Join(outside, "secret.bin")
	must(t, os.WriteFile(f.outside, []byte("not yours"), 0o644))
	f.link = filepath.Join(dir, "escape.bin")
	must(t, os.Symlink(f.outside, f.link))
	f.missing = filepath.Join(dir, "missing.bin")
	return f
}

func (w *wire) testHTTPLocalFile(t *testing.T) {
	f := makeLocalFiles(t, w.opts.Root)
	path := func(p string) map[string]string { return map[string]string{"Insitu-Path": url.PathEscape(p)} }
	for _, method := range []string{"PUT", "GET"} {
		wantOutput(t, method+" of a local file", w.do(t, request{method: method, path: "/v1/transform/b/echo/x", header: path(f.file)}), f.data)
	}
	// Input.Path names the file the server checked and opened, in a form
	// of its choosing (insitu's, on Linux: /proc/<pid>/fd/<n>): what a
	// tool that opens it reads is the file's bytes.
	r := w.do(t, request{method: "PUT", path: "/v1/transform/b/info/x", header: path(f.file)})
	lines := strings.SplitN(string(r.body), "\n", 7)
	if r.StatusCode != 200 || len(lines) != 7 || !filepath.IsAbs(lines[4]) {
		t.Fatalf("a local file's info: %d %q, want 200 and 7 lines, the fifth an absolute path", r.StatusCode, r.body)
	}
	wantOutput(t, "a local file's path and size", r,
		[]byte(infoLines(insitu.Name{Bucket: "b", Key: "info/x"}, int64(len(f.data)), "", lines[4], int64(len(f.data)), "")))
	for _, method := range []string{"PUT", "GET"} {
		wantOutput(t, method+" of a local file to a transform that opens Input.Path", w.do(t, request{method: method, path: "/v1/transform/b/readpath/x", header: path(f.file)}), f.data)
	}
	for _, c := range []struct {
		what, path string
		status     int
		code       insitu.Code
	}{
		{"a file outside the roots", f.outside, 403, insitu.PermissionDenied},
		{"a link out of the root", f.link, 403, insitu.PermissionDenied},
		{"a path that climbs out of the root", f.dir + strings.Repeat("/..", strings.Count(f.dir, "/")) + f.outside, 403, insitu.PermissionDenied},
		{"a missing file in the root", f.missing, 404, insitu.NotFound},
		{"a path through a file in the root", filepath.Join(f.file, "x"), 404, insitu.NotFound},
		{"a directory", f.dir, 400, insitu.InvalidArgument},
	} {
		wantError(t, c.what, w.do(t, request{method: "PUT", path: "/v1/transform/b/echo/x", header: path(c.path)}), c.status, c.code, "")
	}
}

func (w *wire) testHTTPTooLarge(t *testing.T) {
	max := w.opts.MaxObjectSize
	body := io.LimitReader(&pattern{}, max+1)
	req, err := http.NewRequestWithContext(t.Context(), "PUT", w.base+"/v1/transform/b/echo/big", body)
	must(t, err)
	req.ContentLength = max + 1
	if w.opts.Token != "" {
		req.Header.Set("Authorization", "Bearer "+w.opts.Token)
	}
	resp, err := w.http.Do(req)
	if err != nil {
		t.Fatalf("an input over the limit: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	wantError(t, "an input over the server's limit", response{Response: resp, body: b}, 413, insitu.TooLarge, "")
}

// serve serves h on 127.0.0.1 until t ends and returns its base URL.
func serve(t *testing.T, h http.Handler) string {
	ln := listen(t)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: time.Minute}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// waitCtx returns a context that ends with t or after a minute, so that a
// server that never answers fails the test instead of hanging it.
func waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}
