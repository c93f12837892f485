package locality

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/putcheck"
	"github.com/insitu-data/insitu/internal/wire"
)

// DefaultListLimit is the number of objects in a listing page when the
// request names no limit; MaxListLimit is the most a node returns at once.
const (
	DefaultListLimit = 1000
	MaxListLimit     = 10000
)

// ListOptions select a page of a node's listing of a bucket.
type ListOptions struct {
	// Prefix keeps only keys that start with it. Default "": every key.
	Prefix string
	// After keeps only keys that sort bytewise after it; pass the Next of
	// the previous page. Default "": from the first key.
	After string
	// Limit is the most objects in the page. Default (0): DefaultListLimit;
	// the node caps it at MaxListLimit.
	Limit int
}

// ListPage is one page of a node's listing of a bucket: objects in
// bytewise key order, each with its size and its owner under the node's
// map. It is also the JSON body of the listing response.
type ListPage struct {
	// Node is the ID of the node that listed the page.
	Node string `json:"node"`
	// MapVersion is the version of the map the owners were computed with.
	MapVersion int64           `json:"map_version"`
	Objects    []insitu.Object `json:"objects"`
	// Next is the key to pass as ListOptions.After for the next page, or
	// "" when this page is the last.
	Next string `json:"next,omitempty"`
}

// ClientOptions configure a [Client]. A nil *ClientOptions means every default.
type ClientOptions struct {
	// Secret authenticates the client to the nodes: each request carries
	// the narrowest token that allows it (see [Secret.Authorize]). Default:
	// the zero Secret, for nodes that run without authentication.
	Secret Secret
	// TokenTTL is how long the object tokens of [Client.ObjectToken] stay
	// valid: longer than the longest a transform may take over one object,
	// or a transform server's fetch or put fails with PermissionDenied.
	// Default: [DefaultTokenTTL] (15 minutes); at most [MaxTokenTTL].
	TokenTTL time.Duration
	// HTTPClient sends the requests. Default: a client of its own with
	// pooled keep-alive connections (64 idle per node), dials bounded by
	// 10 seconds, each write of a request bounded by WriteTimeout (a node
	// that stops reading fails the request with Unavailable instead of
	// holding it), each read of a response by ReadTimeout (a node that
	// stops answering does the same), and a one-second Expect: 100-continue wait
	// (sent with a body over 64 KiB or of unknown size), so that a node
	// can refuse an upload before its body is sent; it has no overall
	// timeout (use the context). A body of at most 64 KiB is read into
	// memory before it is sent, and the client's own HTTP client sends it
	// on the caller's goroutine (see Client).
	HTTPClient *http.Client
	// WriteTimeout bounds each write of a request on the client's own HTTP
	// client (not on HTTPClient): each 256 KiB must be taken within it.
	// Default: [DefaultWriteTimeout].
	WriteTimeout time.Duration
	// ReadTimeout bounds each read of a response on the client's own HTTP
	// client (not on HTTPClient): the wait for its header, and for each
	// next piece of its body. It must exceed the longest wait of a job
	// status (60 seconds). Default: [DefaultReadTimeout].
	ReadTimeout time.Duration
}

// Bounds on a [Client]'s own HTTP client.
const (
	// DefaultWriteTimeout bounds each write of a request: the node must
	// take each 256 KiB written within it.
	DefaultWriteTimeout = time.Minute
	// DefaultReadTimeout bounds each read of a response, the wait for its
	// header included: more than the longest wait of a job status (60
	// seconds) that a node may take before it answers.
	DefaultReadTimeout = 2 * time.Minute
)

// Client talks to the storage nodes of a cluster: it sends each request
// about an object to the object's owner under its current map, and when a
// node answers NotOwner it brings the maps up to date (it fetches the
// newest map from the nodes, or gives a node that is behind its own newer
// map) and retries once. Errors carry insitu codes; a node that cannot be
// reached is [insitu.Unavailable]. A Client is safe for concurrent use.
//
// A PUT of at most 64 KiB is read into memory first, so that it can be
// sent again after a NotOwner answer whatever the reader. The client's own
// HTTP client (no ClientOptions.HTTPClient) writes such a PUT to a
// plain-http node, and reads its answer, on the caller's goroutine over a
// kept-alive connection, rather than handing it to net/http's connection
// goroutines: a small put then costs one goroutine wake-up instead of
// several.
type Client struct {
	m      atomic.Pointer[Map]
	secret Secret
	ttl    time.Duration
	hc     *http.Client
	own    bool // hc is the client's own: Close closes its idle connections
}

// NewClient returns a client that starts with the map m. m must have at
// least one node.
func NewClient(m *Map, opts *ClientOptions) (*Client, error) {
	if m == nil || m.Len() == 0 {
		return nil, insitu.Errorf(insitu.InvalidArgument, "locality: a client needs a map with at least one node")
	}
	c := &Client{ttl: DefaultTokenTTL}
	if opts != nil {
		c.secret = opts.Secret
		c.hc = opts.HTTPClient
		switch {
		case opts.TokenTTL < 0 || opts.TokenTTL > MaxTokenTTL:
			return nil, insitu.Errorf(insitu.InvalidArgument, "locality: TokenTTL %v; want 0 (the default) up to %v", opts.TokenTTL, MaxTokenTTL)
		case opts.TokenTTL > 0:
			c.ttl = opts.TokenTTL
		}
	}
	if c.hc == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		wt, rt := DefaultWriteTimeout, DefaultReadTimeout
		if opts != nil && opts.WriteTimeout > 0 {
			wt = opts.WriteTimeout
		}
		if opts != nil && opts.ReadTimeout > 0 {
			rt = opts.ReadTimeout
		}
		t.DialContext = wire.DeadlineDialer(10*time.Second, rt, wt)
		t.MaxIdleConnsPerHost = 64
		t.ExpectContinueTimeout = time.Second
		c.own = true
		c.hc = &http.Client{Transport: wire.NewInlineTransport(t, 10*time.Second, rt, wt)}
	}
	c.m.Store(m)
	return c, nil
}

// Map returns the client's current map.
func (c *Client) Map() *Map { return c.m.Load() }

// SetMap replaces the client's map with m when m succeeds it (newer, by at
// most [MaxMapStep] versions: see [Map.Succeeds]), and reports whether it
// did.
func (c *Client) SetMap(m *Map) bool {
	for {
		cur := c.m.Load()
		if m == nil || m.Len() == 0 || m.Succeeds(cur) != nil {
			return false
		}
		if c.m.CompareAndSwap(cur, m) {
			return true
		}
	}
}

// Secret returns the client's secret, for a caller that derives the
// transform secrets of the nodes from it (see [Secret.TransformSecret]).
func (c *Client) Secret() Secret { return c.secret }

// ObjectToken returns a token that allows a, and only a, on the object
// name, for [ClientOptions.TokenTTL] from now: what a transform server
// gets to fetch one input ([Read]) or put one output ([Write]). It is ""
// when the client has no secret.
func (c *Client) ObjectToken(a Access, name insitu.Name) string {
	return c.secret.ObjectToken(a, name, time.Now().Add(c.ttl))
}

// Close releases the idle connections of the client's own HTTP client. The
// client still works after Close.
func (c *Client) Close() {
	if c.own {
		c.hc.CloseIdleConnections()
	}
}

// ObjectURL returns the URL of name's object on node: the address for
// GET, HEAD, PUT and DELETE of the node API.
func ObjectURL(node Node, name insitu.Name) string {
	var b strings.Builder
	b.WriteString(strings.TrimSuffix(node.URL, "/"))
	b.WriteString("/v1/objects/")
	b.WriteString(url.PathEscape(name.Bucket))
	for seg := range strings.SplitSeq(name.Key, "/") {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(seg))
	}
	return b.String()
}

// OwnerURL returns the owner of name under the client's current map and
// the URL to PUT the object to there. A request to it must carry a
// token that allows it (see [Client.ObjectToken]); a NotOwner answer means the map
// went stale: call [Client.RefreshMap] and ask again.
func (c *Client) OwnerURL(name insitu.Name) (Node, string, error) {
	if err := checkName(name); err != nil {
		return Node{}, "", err
	}
	owner := c.Map().Owner(name)
	return owner, ObjectURL(owner, name), nil
}

// checkName refuses names a node cannot store: invalid ones and those
// without a bucket.
func checkName(name insitu.Name) error {
	if name.Bucket == "" {
		return &insitu.Error{Code: insitu.InvalidArgument, Name: name, Msg: "a node stores objects in a bucket; the bucket is empty"}
	}
	return name.Validate()
}

// newRequest makes an authorized request.
func (c *Client) newRequest(ctx context.Context, method, u string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, insitu.Errorf(insitu.InvalidArgument, "locality: %s %s: %w", method, u, err)
	}
	c.secret.Authorize(req)
	return req, nil
}

// do sends req to node; a failure to get a response is Unavailable (or the
// context's error).
func (c *Client) do(ctx context.Context, req *http.Request, node string, name insitu.Name) (*http.Response, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		return nil, &insitu.Error{Code: insitu.Unavailable, Name: name, Msg: "node " + node, Err: err}
	}
	return resp, nil
}

// notOwner is what a NotOwner answer tells: the node and its map version.
type notOwner struct {
	node    Node
	version int64
}

// withOwner runs op against name's owner and, when the owner answers
// NotOwner, reconciles the maps and runs op once more if that can help.
func (c *Client) withOwner(ctx context.Context, name insitu.Name, op func(owner Node, retry bool) (*notOwner, error)) error {
	m := c.Map()
	no, err := op(m.Owner(name), false)
	if no == nil {
		return err
	}
	if !c.reconcile(ctx, m, no) {
		return err
	}
	_, err2 := op(c.Map().Owner(name), true)
	return err2
}

// reconcile brings the client's map and the refusing node's map in line,
// and reports whether a retry may now succeed.
func (c *Client) reconcile(ctx context.Context, m *Map, no *notOwner) bool {
	switch {
	case no.version > m.Version():
		// We are behind: fetch the newer map.
		got, err := c.refresh(ctx, no.node)
		return err == nil && got.Newer(m)
	case no.version < m.Version():
		// The node is behind: give it our map.
		got, err := c.PushMap(ctx, no.node, m)
		return err == nil && got.Version() >= m.Version()
	}
	return false // same version and still not the owner: nothing to fix
}

// RefreshMap asks every node of the current map for its map, keeps the
// newest (see [Client.SetMap]) and returns the client's map after that. It
// fails only when no node answers.
func (c *Client) RefreshMap(ctx context.Context) (*Map, error) {
	return c.refresh(ctx, Node{})
}

func (c *Client) refresh(ctx context.Context, extra Node) (*Map, error) {
	nodes := c.Map().Nodes()
	if extra.ID != "" {
		if _, ok := c.Map().Node(extra.ID); !ok {
			nodes = append(nodes, extra)
		}
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		lastErr error
		ok      bool
	)
	for _, n := range nodes {
		wg.Go(func() {
			got, err := c.GetMap(ctx, n)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				lastErr = err
				return
			}
			ok = true
			c.SetMap(got)
		})
	}
	wg.Wait()
	if !ok {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return nil, lastErr
	}
	return c.Map(), nil
}

// GetMap returns node's current map (GET /v1/map).
func (c *Client) GetMap(ctx context.Context, node Node) (*Map, error) {
	req, err := c.newRequest(ctx, http.MethodGet, strings.TrimSuffix(node.URL, "/")+"/v1/map", nil)
	if err != nil {
		return nil, err
	}
	return c.mapResponse(ctx, req, node)
}

// PushMap gives node the map m (PUT /v1/map); the node installs it if it
// is newer than its own. It returns the node's map after that.
func (c *Client) PushMap(ctx context.Context, node Node, m *Map) (*Map, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	req, err := c.newRequest(ctx, http.MethodPut, strings.TrimSuffix(node.URL, "/")+"/v1/map", strings.NewReader(string(b)))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	return c.mapResponse(ctx, req, node)
}

func (c *Client) mapResponse(ctx context.Context, req *http.Request, node Node) (*Map, error) {
	resp, err := c.do(ctx, req, node.ID, insitu.Name{})
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		_, err := responseError(resp, node.ID, insitu.Name{})
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, &insitu.Error{Code: insitu.Unavailable, Msg: "node " + node.ID + ": reading its map", Err: err}
	}
	m, err := ParseMap(raw)
	if err != nil {
		return nil, insitu.Errorf(insitu.Internal, "node %s sent a bad map: %w", node.ID, err)
	}
	return m, nil
}

// Health checks that node answers (GET /v1/health).
func (c *Client) Health(ctx context.Context, node Node) error {
	req, err := c.newRequest(ctx, http.MethodGet, strings.TrimSuffix(node.URL, "/")+"/v1/health", nil)
	if err != nil {
		return err
	}
	resp, err := c.do(ctx, req, node.ID, insitu.Name{})
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		_, err := responseError(resp, node.ID, insitu.Name{})
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

// Put stores r under name on its owner, in one request, and returns what
// the node stored (size, XXH64 checksum, owner). size is the length of r,
// or -1 when unknown; a known size that r does not match is an
// InvalidArgument error and nothing is stored. On NotOwner the client
// reconciles the maps and sends again when r was not read yet (the node
// refuses before asking for the body) or r is an io.Seeker. A nil r is an
// InvalidArgument error.
func (c *Client) Put(ctx context.Context, name insitu.Name, r io.Reader, size int64) (insitu.PutResult, error) {
	return c.putOrigin(ctx, name, r, size, putHeaders{})
}

// PutOrigin is [Client.Put], with origin sent in the request header
// Insitu-Origin: the node records it with the object, atomically (see
// [insitu.OriginSink]), and answers it to a GET or HEAD ([Client.Head]'s
// Object.Origin). An origin over insitu.MaxOriginLen is not sent: the
// object is stored without one.
func (c *Client) PutOrigin(ctx context.Context, name insitu.Name, r io.Reader, size int64, origin insitu.Origin) (insitu.PutResult, error) {
	text := origin.String()
	if len(text) > insitu.MaxOriginLen {
		text = ""
	}
	return c.putOrigin(ctx, name, r, size, putHeaders{origin: text})
}

// PutIfAbsent is [Client.Put] that only creates: the owner stores the
// object only if nothing is under its name when it commits (a PUT with
// If-None-Match: *); else the error is [insitu.Exists] and the stored
// object is left as it is. A non-nil origin is recorded with the object,
// as [Client.PutOrigin] does.
func (c *Client) PutIfAbsent(ctx context.Context, name insitu.Name, r io.Reader, size int64, origin *insitu.Origin) (insitu.PutResult, error) {
	h := putHeaders{createOnly: true}
	if origin != nil {
		if text := origin.String(); len(text) <= insitu.MaxOriginLen {
			h.origin = text
		}
	}
	return c.putOrigin(ctx, name, r, size, h)
}

// putHeaders are the optional parts of a PUT.
type putHeaders struct {
	origin     string // Insitu-Origin; "" for none
	createOnly bool   // If-None-Match: *
}

// set sets a PUT's headers: its content type and the optional ones.
func (h putHeaders) set(req *http.Request) {
	req.Header.Set("Content-Type", "application/octet-stream")
	if h.origin != "" {
		req.Header.Set(wire.Origin, h.origin)
	}
	if h.createOnly {
		req.Header.Set("If-None-Match", "*")
	}
}

// expectContinueOver is the size over which a PUT's body waits for the
// node's 100 Continue (Expect: 100-continue), so that a refusal (a node
// that no longer owns the name, a bad token, a full disk) costs no upload.
// A smaller body is read into memory (so it can always be sent again) and
// goes with the headers at once:
// the wait costs a round trip and a wake-up on each side for every small
// object (in a cluster job of 4 KiB objects, a node's PUT handler took
// 0.6–1.0 ms without it against 1.4–1.8 ms with it), more than sending
// 64 KiB to a node that refuses it.
const expectContinueOver = 64 << 10

// putOrigin is Put with the optional headers.
func (c *Client) putOrigin(ctx context.Context, name insitu.Name, r io.Reader, size int64, origin putHeaders) (insitu.PutResult, error) {
	if err := checkName(name); err != nil {
		return insitu.PutResult{}, err
	}
	if err := insitu.ValidatePut(name, r, size); err != nil {
		return insitu.PutResult{}, err
	}
	if size > 0 && size <= expectContinueOver {
		return c.putSmall(ctx, name, r, size, origin)
	}
	start := int64(-1)
	if s, ok := r.(io.Seeker); ok {
		if pos, err := s.Seek(0, io.SeekCurrent); err == nil {
			start = pos
		}
	}
	var (
		res  insitu.PutResult
		read int64
	)
	err := c.withOwner(ctx, name, func(owner Node, retry bool) (*notOwner, error) {
		if retry && read > 0 {
			if start < 0 {
				return nil, insitu.Errorf(insitu.NotOwner, "locality: %s moved to node %s but the body was already read and cannot be sent again", name, owner.ID)
			}
			if _, err := r.(io.Seeker).Seek(start, io.SeekStart); err != nil {
				return nil, insitu.WithName(err, name)
			}
		}
		in, err := putcheck.New(ctx, name, r, size, 0)
		if err != nil {
			return nil, err
		}
		body := &putBody{in: in}
		var no *notOwner
		res, no, err = c.put(ctx, owner, name, body, size, origin)
		read = body.detach()
		return no, err
	})
	if err != nil {
		return insitu.PutResult{}, err
	}
	return res, nil
}

func (c *Client) put(ctx context.Context, owner Node, name insitu.Name, body *putBody, size int64, h putHeaders) (insitu.PutResult, *notOwner, error) {
	var rd io.Reader = body
	if size == 0 {
		// Still check that r is empty, as for any other size.
		if err := body.checkEmpty(); err != nil {
			return insitu.PutResult{}, nil, err
		}
		rd = http.NoBody
	}
	req, err := c.newRequest(ctx, http.MethodPut, ObjectURL(owner, name), rd)
	if err != nil {
		return insitu.PutResult{}, nil, err
	}
	req.ContentLength = size
	if size != 0 { // over expectContinueOver, or unknown: see putOrigin
		req.Header.Set("Expect", "100-continue")
	}
	h.set(req)
	resp, err := c.do(ctx, req, owner.ID, name)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return insitu.PutResult{}, nil, cerr
		}
		if berr := body.failure(); berr != nil {
			return insitu.PutResult{}, nil, berr
		}
		return insitu.PutResult{}, nil, err
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		if berr := body.failure(); berr != nil {
			resp.Body.Close()
			return insitu.PutResult{}, nil, berr
		}
	}
	return c.putAnswer(resp, owner, name)
}

// putAnswer reads a PUT's answer and closes its body.
func (c *Client) putAnswer(resp *http.Response, owner Node, name insitu.Name) (insitu.PutResult, *notOwner, error) {
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		return c.failed(resp, owner, name)
	}
	defer resp.Body.Close()
	var res insitu.PutResult
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxErrorBody)).Decode(&res); err != nil {
		return insitu.PutResult{}, nil, &insitu.Error{Code: insitu.Unavailable, Name: name, Msg: "node " + owner.ID + ": reading the answer", Err: err}
	}
	return res, nil, nil
}

// putSmall is putOrigin for a body of at most expectContinueOver bytes:
// the body is read and checked once, into memory, and sent from there, to
// the owner and, after a NotOwner answer, to the new owner.
func (c *Client) putSmall(ctx context.Context, name insitu.Name, r io.Reader, size int64, h putHeaders) (insitu.PutResult, error) {
	in, err := putcheck.New(ctx, name, r, size, 0)
	if err != nil {
		return insitu.PutResult{}, err
	}
	// Not from a pool: net/http may still read a body after Do returned.
	data := make([]byte, size)
	if _, err := io.ReadFull(in, data); err != nil {
		return insitu.PutResult{}, err
	}
	var res insitu.PutResult
	err = c.withOwner(ctx, name, func(owner Node, _ bool) (no *notOwner, err error) {
		res, no, err = c.putBytes(ctx, owner, name, data, h)
		return no, err
	})
	if err != nil {
		return insitu.PutResult{}, err
	}
	return res, nil
}

// putBytes puts data, a whole body, to owner.
func (c *Client) putBytes(ctx context.Context, owner Node, name insitu.Name, data []byte, h putHeaders) (insitu.PutResult, *notOwner, error) {
	req, err := c.newRequest(ctx, http.MethodPut, ObjectURL(owner, name), bytes.NewReader(data))
	if err != nil {
		return insitu.PutResult{}, nil, err
	}
	h.set(req)
	resp, err := c.do(ctx, req, owner.ID, name)
	if err != nil {
		return insitu.PutResult{}, nil, err
	}
	return c.putAnswer(resp, owner, name)
}

// failed turns an error response into an error, and a NotOwner answer
// into a *notOwner as well.
func (c *Client) failed(resp *http.Response, node Node, name insitu.Name) (insitu.PutResult, *notOwner, error) {
	version, err := responseError(resp, node.ID, name)
	if errors.Is(err, insitu.NotOwner) {
		return insitu.PutResult{}, &notOwner{node: node, version: version}, err
	}
	return insitu.PutResult{}, nil, err
}

// putBody is the body of a PUT for the HTTP transport: the caller's reader
// through a putcheck.Reader, which checks it against the announced size
// (a longer reader is refused before its last bytes are handed over, so
// the node gets a short body and stores nothing), and which can be
// detached: the transport may read a request body after the request is
// over, and must then no longer touch the caller's reader. The reading
// stops once the context is done; a Read of the caller's reader already in
// progress then still has to return (as with any sink: a reader that
// blocks forever blocks Put).
type putBody struct {
	mu       sync.Mutex
	in       *putcheck.Reader
	detached bool
}

var errDetached = errors.New("locality: request body read after the request ended")

func (b *putBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.detached {
		return 0, errDetached
	}
	return b.in.Read(p)
}

// checkEmpty checks that a body of size 0 is empty.
func (b *putBody) checkEmpty() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, err := b.in.Read(nil); err != io.EOF {
		return err
	}
	return nil
}

// failure returns the error that ended the reading of the caller's
// reader, if any: a wrong length, the reader's own error, or the
// context's.
func (b *putBody) failure() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.in.Err()
}

// detach stops further reads of the caller's reader and returns how many
// bytes of it were sent.
func (b *putBody) detach() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.detached = true
	return b.in.Size()
}

func (b *putBody) Close() error { return nil }

// Get opens name's object on its owner. The caller reads and closes the
// body; the returned Object has the name, size, owner, Version (the
// node's "<size>-<mtime in ns>" of the object's file) and Origin (the
// origin recorded with the object, "" for none). A read error
// in the middle of the body is an Unavailable error.
func (c *Client) Get(ctx context.Context, name insitu.Name) (io.ReadCloser, insitu.Object, error) {
	var (
		rc  io.ReadCloser
		obj insitu.Object
	)
	err := c.withOwner(ctx, name, func(owner Node, _ bool) (*notOwner, error) {
		resp, no, err := c.object(ctx, http.MethodGet, owner, name)
		if err != nil {
			return no, err
		}
		obj = objectOf(resp, owner, name)
		rc = &getBody{ctx: ctx, rc: resp.Body, name: name, node: owner.ID}
		return nil, nil
	})
	if err != nil {
		return nil, insitu.Object{}, err
	}
	return rc, obj, nil
}

// Head returns the description of name's object on its owner: name,
// size, owner, Version and Origin (the origin recorded with the object,
// "" for none).
func (c *Client) Head(ctx context.Context, name insitu.Name) (insitu.Object, error) {
	var obj insitu.Object
	err := c.withOwner(ctx, name, func(owner Node, _ bool) (*notOwner, error) {
		resp, no, err := c.object(ctx, http.MethodHead, owner, name)
		if err != nil {
			return no, err
		}
		resp.Body.Close()
		obj = objectOf(resp, owner, name)
		return nil, nil
	})
	return obj, err
}

// Delete removes name's object from its owner. A missing object is a
// NotFound error.
func (c *Client) Delete(ctx context.Context, name insitu.Name) error {
	return c.withOwner(ctx, name, func(owner Node, _ bool) (*notOwner, error) {
		resp, no, err := c.object(ctx, http.MethodDelete, owner, name)
		if err != nil {
			return no, err
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		resp.Body.Close()
		return nil, nil
	})
}

// object sends a body-less request about name to owner and returns a
// successful response, or the error (and *notOwner for NotOwner).
func (c *Client) object(ctx context.Context, method string, owner Node, name insitu.Name) (*http.Response, *notOwner, error) {
	if err := checkName(name); err != nil {
		return nil, nil, err
	}
	req, err := c.newRequest(ctx, method, ObjectURL(owner, name), nil)
	if err != nil {
		return nil, nil, err
	}
	resp, err := c.do(ctx, req, owner.ID, name)
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode/100 != 2 {
		_, no, err := c.failed(resp, owner, name)
		return nil, no, err
	}
	return resp, nil, nil
}

// maxVersion bounds the version a node's answer may carry.
const maxVersion = 256

func objectOf(resp *http.Response, owner Node, name insitu.Name) insitu.Object {
	obj := insitu.Object{Name: name, Size: resp.ContentLength, Owner: resp.Header.Get(wire.Owner)}
	if obj.Owner == "" {
		obj.Owner = owner.ID
	}
	if obj.Size < 0 {
		obj.Size = -1
	}
	if o := resp.Header.Get(wire.Origin); o != "" {
		if _, err := insitu.ParseOrigin(o); err == nil {
			obj.Origin = o
		}
	}
	if v := resp.Header.Get(wire.Version); len(v) <= maxVersion {
		obj.Version = v
	}
	return obj
}

// getBody turns a failure in the middle of a GET body into an Unavailable
// error about the object.
type getBody struct {
	ctx  context.Context
	rc   io.ReadCloser
	name insitu.Name
	node string
}

func (g *getBody) Read(p []byte) (int, error) {
	n, err := g.rc.Read(p)
	if err != nil && err != io.EOF {
		if cerr := g.ctx.Err(); cerr != nil {
			return n, cerr
		}
		return n, &insitu.Error{Code: insitu.Unavailable, Name: g.name, Msg: "node " + g.node + ": reading the object", Err: err}
	}
	return n, err
}

func (g *getBody) Close() error { return g.rc.Close() }

// List returns one page of node's listing of bucket (GET
// /v1/objects/{bucket}). A node that has never stored anything in the
// bucket answers NotFound.
func (c *Client) List(ctx context.Context, node Node, bucket string, opts *ListOptions) (*ListPage, error) {
	if err := insitu.ValidateBucket(bucket); err != nil {
		return nil, err
	}
	var o ListOptions
	if opts != nil {
		o = *opts
	}
	q := url.Values{}
	if o.Prefix != "" {
		q.Set("prefix", o.Prefix)
	}
	if o.After != "" {
		q.Set("after", o.After)
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	u := strings.TrimSuffix(node.URL, "/") + "/v1/objects/" + url.PathEscape(bucket)
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := c.newRequest(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	bname := insitu.Name{Bucket: bucket}
	resp, err := c.do(ctx, req, node.ID, bname)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		_, err := responseError(resp, node.ID, bname)
		return nil, err
	}
	defer resp.Body.Close()
	page := new(ListPage)
	if err := json.NewDecoder(resp.Body).Decode(page); err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		return nil, &insitu.Error{Code: insitu.Unavailable, Name: bname, Msg: "node " + node.ID + ": reading the listing", Err: err}
	}
	return page, nil
}

// ListAll lists bucket on node page by page, as an iterator: only one page
// is in memory at a time. An error ends the iteration and is the last
// thing yielded.
func (c *Client) ListAll(ctx context.Context, node Node, bucket string, opts *ListOptions) iter.Seq2[insitu.Object, error] {
	return func(yield func(insitu.Object, error) bool) {
		var o ListOptions
		if opts != nil {
			o = *opts
		}
		for {
			page, err := c.List(ctx, node, bucket, &o)
			if err != nil {
				yield(insitu.Object{}, err)
				return
			}
			for _, obj := range page.Objects {
				if !yield(obj, nil) {
					return
				}
			}
			if page.Next == "" {
				return
			}
			if page.Next <= o.After {
				yield(insitu.Object{}, insitu.Errorf(insitu.Internal, "locality: node %s: listing does not advance past %q", node.ID, o.After))
				return
			}
			o.After = page.Next
		}
	}
}

// String describes the client.
func (c *Client) String() string { return fmt.Sprintf("locality.Client(%v)", c.Map()) }

// maxReply bounds the JSON reply of a control call.
const maxReply = 64 << 20

// Call makes one control call to node's API, such as the job calls of
// package cluster (POST /v1/jobs, GET|DELETE /v1/jobs/{id}): path is
// relative to the node's URL and may carry a query, in (when not nil) is
// sent as the JSON body, and a 2xx reply is decoded into out (when not
// nil). An error reply is an *insitu.Error with the node's code and
// message; a node that cannot be reached, or whose reply cannot be read,
// is [insitu.Unavailable]; when ctx ends, its error is returned.
func (c *Client) Call(ctx context.Context, node Node, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return insitu.Errorf(insitu.InvalidArgument, "locality: encoding the body of %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := c.newRequest(ctx, method, strings.TrimSuffix(node.URL, "/")+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.do(ctx, req, node.ID, insitu.Name{})
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		_, err := responseError(resp, node.ID, insitu.Name{})
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxReply))
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxReply)).Decode(out); err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		return &insitu.Error{Code: insitu.Unavailable, Msg: "node " + node.ID + ": reading the reply to " + method + " " + path, Err: err}
	}
	return nil
}
