package seaweedfs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/insitu-data/insitu"
)

// Defaults of [Options].
const (
	// DefaultRoot is the filer directory of SeaweedFS's S3 gateway, whose
	// subdirectories are its buckets.
	DefaultRoot = "/buckets"
	// DefaultTimeout bounds each metadata request.
	DefaultTimeout = 30 * time.Second
	// DefaultIOTimeout bounds each wait for a body to move.
	DefaultIOTimeout = time.Minute
	// DefaultLocationTTL is how long a volume's servers are remembered.
	DefaultLocationTTL = 5 * time.Second
)

// Options configure [NewClient]. A nil *Options means the defaults.
type Options struct {
	// Root is the filer directory whose subdirectories are the buckets:
	// the object {Bucket, Key} is the file Root/Bucket/Key. Default
	// [DefaultRoot], "/buckets", where SeaweedFS's S3 gateway keeps its
	// buckets, so that names are the bucket and key the gateway shows.
	// Under "/buckets" the filer takes only S3 bucket names (3 to 63
	// lowercase letters, digits, '.' and '-'), and a Sink checks them.
	// A root under "/etc" is refused: the filer keeps those files in its
	// own store, not on volume servers.
	Root string
	// HTTPClient makes every request. Its Timeout, if any, bounds whole
	// reads and writes, however large: leave it 0 and rely on Timeout and
	// IOTimeout. Default: a client of the package's own, whose transport
	// keeps up to 64 idle connections per server.
	HTTPClient *http.Client
	// Timeout bounds each metadata request, from sending it to reading its
	// whole answer: a listing page, an entry's metadata, a topology or
	// volume lookup; and the wait for the answer of a Put once its body is
	// sent. A request that takes longer fails with Unavailable. Default
	// [DefaultTimeout], 30s.
	Timeout time.Duration
	// IOTimeout bounds each wait for the body of a Put or of an Open to
	// move, whatever holds it up: the network, the server, or the reader
	// of an Open that does not read. A request whose body stalls that
	// long fails with Unavailable. (The servers have bounds of their own:
	// the filer drops a connection idle for 10 s, a volume server one idle
	// for 30 s, by default.) Default [DefaultIOTimeout], 1 min.
	IOTimeout time.Duration
	// LocationTTL is how long the client remembers which volume servers
	// hold a volume (the master's answer) before it asks again. A read
	// that fails on a remembered server forgets it at once. Default
	// [DefaultLocationTTL], 5s.
	LocationTTL time.Duration
	// Logger receives, at Debug, the reads that go through the filer
	// rather than straight to volume servers, and why. Default: discard.
	Logger *slog.Logger
}

// Client is a connection to one SeaweedFS cluster: its filer, for names,
// metadata, reads and writes, and its master, for where volumes live. A
// [Source], a [Sink] and a [Topology] are made from a Client. A Client is
// safe for concurrent use.
type Client struct {
	filer  string // base URL, without a trailing "/"
	master string
	root   string // cleaned; "" for "/"
	hc     *http.Client
	opts   Options
	locs   *locations
}

// NewClient returns a client of the cluster whose filer and master answer
// HTTP at filerURL and masterURL, such as "http://127.0.0.1:8888" and
// "http://127.0.0.1:9333". It sends nothing: a URL that is not a filer or
// not a master shows in the first request, as an InvalidArgument error
// that says so.
//
// A URL that is not an absolute http or https URL with a host and no
// query, a Root that is not an absolute path, or negative durations are
// InvalidArgument errors.
func NewClient(filerURL, masterURL string, opts *Options) (*Client, error) {
	c := &Client{}
	if opts != nil {
		c.opts = *opts
	}
	var err error
	if c.filer, err = baseURL("filer", filerURL); err != nil {
		return nil, err
	}
	if c.master, err = baseURL("master", masterURL); err != nil {
		return nil, err
	}
	o := &c.opts
	if o.Root == "" {
		o.Root = DefaultRoot
	}
	clean := path.Clean(o.Root)
	if !strings.HasPrefix(o.Root, "/") || o.Root != clean && o.Root != clean+"/" {
		return nil, insitu.Errorf(insitu.InvalidArgument, "seaweedfs: Root %q is not a clean absolute path", o.Root)
	}
	c.root = strings.TrimSuffix(clean, "/")
	if c.root == "/etc" || strings.HasPrefix(c.root, "/etc") {
		// The filer stores every file whose path starts with "/etc" in its
		// own store (its configuration lives there), not on volume servers.
		return nil, insitu.Errorf(insitu.InvalidArgument, "seaweedfs: Root %q: the filer keeps files under /etc in its own store, not on volume servers", o.Root)
	}
	switch {
	case o.Timeout < 0, o.IOTimeout < 0, o.LocationTTL < 0:
		return nil, insitu.Errorf(insitu.InvalidArgument, "seaweedfs: negative Timeout, IOTimeout or LocationTTL")
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.IOTimeout == 0 {
		o.IOTimeout = DefaultIOTimeout
	}
	if o.LocationTTL == 0 {
		o.LocationTTL = DefaultLocationTTL
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	c.hc = o.HTTPClient
	if c.hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 64
		c.hc = &http.Client{Transport: tr}
	}
	c.locs = newLocations(c)
	return c, nil
}

// baseURL checks u and returns it without a trailing "/".
func baseURL(what, u string) (string, error) {
	p, err := url.Parse(u)
	if err != nil {
		return "", insitu.Errorf(insitu.InvalidArgument, "seaweedfs: %s URL %q: %w", what, u, err)
	}
	if p.Scheme != "http" && p.Scheme != "https" || p.Host == "" || p.RawQuery != "" || p.Fragment != "" || p.User != nil {
		return "", insitu.Errorf(insitu.InvalidArgument, "seaweedfs: %s URL %q: want an http or https URL with a host and no query, such as http://127.0.0.1:8888", what, u)
	}
	return strings.TrimSuffix(p.String(), "/"), nil
}

// CloseIdleConnections closes the idle connections of the client's HTTP
// client. The client stays usable.
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }

// FilerURL returns the filer's base URL.
func (c *Client) FilerURL() string { return c.filer }

// MasterURL returns the master's base URL.
func (c *Client) MasterURL() string { return c.master }

// Root returns the filer directory of the buckets ("/" for the whole
// namespace).
func (c *Client) Root() string {
	if c.root == "" {
		return "/"
	}
	return c.root
}

// Path returns the filer path of name: Root/Bucket/Key. A name that
// [insitu.Name.Validate] refuses, or that has no bucket, is an
// InvalidArgument error.
func (c *Client) Path(name insitu.Name) (string, error) {
	if err := name.Validate(); err != nil {
		return "", err
	}
	if name.Bucket == "" {
		return "", &insitu.Error{Code: insitu.InvalidArgument, Name: name,
			Msg: "a SeaweedFS name needs a bucket: the directory under the client's Root"}
	}
	return c.root + "/" + name.Bucket + "/" + name.Key, nil
}

// Name returns the name of the filer path p, the inverse of [Client.Path]:
// p must be under Root, at least two levels down, and make a valid name,
// else the error is InvalidArgument.
func (c *Client) Name(p string) (insitu.Name, error) {
	rest, ok := strings.CutPrefix(p, c.root+"/")
	bucket, key, two := strings.Cut(rest, "/")
	if !ok || !two {
		return insitu.Name{}, insitu.Errorf(insitu.InvalidArgument, "seaweedfs: filer path %q is not a file in a bucket under %s", p, c.Root())
	}
	n := insitu.Name{Bucket: bucket, Key: key}
	if err := n.Validate(); err != nil {
		return insitu.Name{}, &insitu.Error{Code: insitu.InvalidArgument,
			Msg: fmt.Sprintf("seaweedfs: filer path %q is not a valid insitu name: %s", p, message(err))}
	}
	return n, nil
}

// escapePath percent-encodes each segment of the filer path p.
func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// filerURL returns the URL of the filer path p with query q.
func (c *Client) filerURL(p string, q url.Values) string {
	u := c.filer + escapePath(p)
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// errTimeout is the cause of a request context that ran out of the
// client's own time (Timeout or IOTimeout), not the caller's.
var errTimeout = errors.New("seaweedfs: no progress within the client's time limit")

// getJSON GETs u within Timeout and decodes a 200 answer into v. what
// names the request in errors ("the filer's metadata of a/b"), name the
// object. A non-200 answer is returned as a *statusError for the caller to
// classify, with the code of its status.
func (c *Client) getJSON(ctx context.Context, u string, header http.Header, what string, name insitu.Name, v any) error {
	return c.getJSONFrom(ctx, u, header, what, name, v, nil)
}

// getFilerJSON is getJSON of a filer URL: an answer without the filer's
// Server header is "not a filer".
func (c *Client) getFilerJSON(ctx context.Context, u string, header http.Header, what string, name insitu.Name, v any) error {
	err := c.getJSONFrom(ctx, u, header, what, name, v, func(resp *http.Response) error {
		if !isFilerAnswer(resp.Header.Get("Server")) {
			return c.notAFiler(name, what, nil)
		}
		return nil
	})
	return c.checkFiler(err, name, what)
}

// getJSONFrom is getJSON with check, when not nil, judging a 200 answer
// before its body is decoded.
func (c *Client) getJSONFrom(ctx context.Context, u string, header http.Header, what string, name insitu.Name, v any, check func(*http.Response) error) error {
	ctx, cancel := context.WithTimeoutCause(ctx, c.opts.Timeout, errTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return &insitu.Error{Code: insitu.Internal, Name: name, Msg: what, Err: err}
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.transportError(ctx, err, name, what)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return newStatusError(resp, name, what)
	}
	if check != nil {
		if err := check(resp); err != nil {
			return err
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		if ctx.Err() != nil {
			return c.transportError(ctx, err, name, what)
		}
		return &insitu.Error{Code: insitu.InvalidArgument, Name: name,
			Msg: what + ": the answer is not the JSON expected (is " + hostOf(u) + " a SeaweedFS server of that kind?)", Err: err}
	}
	return nil
}

// transportError classifies err, the failure of a request made with ctx
// (derived from the caller's context): the caller's context error as it
// is; the client's own time limit and any failure of the connection as
// Unavailable.
func (c *Client) transportError(ctx context.Context, err error, name insitu.Name, what string) error {
	if cause := context.Cause(ctx); cause == errTimeout {
		return &insitu.Error{Code: insitu.Unavailable, Name: name, Msg: what + ": no answer in time", Err: err}
	}
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	if insitu.CodeOf(err) != insitu.Unknown {
		return insitu.WithName(err, name)
	}
	return &insitu.Error{Code: insitu.Unavailable, Name: name, Msg: what, Err: err}
}

// statusError is an HTTP answer other than the one expected.
type statusError struct {
	status int
	server string // the Server header
	body   string // the start of the body, or its JSON "error"
	json   bool   // the body was SeaweedFS's JSON {"error": ...}
}

func (e *statusError) Error() string {
	s := fmt.Sprintf("HTTP %d %s", e.status, http.StatusText(e.status))
	if e.body != "" {
		s += ": " + e.body
	}
	return s
}

// newStatusError reads the start of resp's body and returns the
// *insitu.Error of the answer, with the code of its status.
func newStatusError(resp *http.Response, name insitu.Name, what string) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	body := strings.TrimSpace(string(b))
	var je struct {
		Error string `json:"error"`
	}
	isJSON := json.Unmarshal(b, &je) == nil && je.Error != ""
	if isJSON {
		body = je.Error
	}
	se := &statusError{status: resp.StatusCode, server: resp.Header.Get("Server"), body: body, json: isJSON}
	return &insitu.Error{Code: codeOfStatus(resp.StatusCode), Name: name, Msg: what, Err: se}
}

// codeOfStatus is the code of an HTTP error status of SeaweedFS.
func codeOfStatus(status int) insitu.Code {
	switch {
	case status == http.StatusNotFound:
		return insitu.NotFound
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return insitu.PermissionDenied
	case status == http.StatusRequestEntityTooLarge:
		return insitu.TooLarge
	case status == http.StatusTooManyRequests || status == 499 || status >= 500:
		// 499: the filer read a body that ended early. 507: a volume or
		// bucket is full or read-only.
		return insitu.Unavailable
	case status >= 400:
		return insitu.InvalidArgument
	}
	return insitu.Unknown
}

// isFilerAnswer reports whether the Server header is a filer's: "SeaweedFS
// <version>", not "SeaweedFS Volume <version>".
func isFilerAnswer(server string) bool {
	v, ok := strings.CutPrefix(server, "SeaweedFS ")
	return ok && !strings.HasPrefix(v, "Volume")
}

// notAFiler returns the InvalidArgument error of a server at the filer URL
// that is not a filer, judged from the answer of a request.
func (c *Client) notAFiler(name insitu.Name, what string, cause error) error {
	return &insitu.Error{Code: insitu.InvalidArgument, Name: name,
		Msg: fmt.Sprintf("%s: %s is not a SeaweedFS filer (its answers do not say \"Server: SeaweedFS <version>\")", what, c.filer), Err: cause}
}

// checkFiler turns a *statusError from the filer into the error of "not a
// filer" when the answer did not come from one.
func (c *Client) checkFiler(err error, name insitu.Name, what string) error {
	var se *statusError
	if errors.As(err, &se) && !isFilerAnswer(se.server) {
		return c.notAFiler(name, what, se)
	}
	return err
}

func hostOf(u string) string {
	if p, err := url.Parse(u); err == nil {
		return p.Host
	}
	return u
}
