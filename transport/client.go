package transport

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/locality"
)

// DialOptions configures a [Client]. The zero value (or nil) gives the
// defaults each field documents.
type DialOptions struct {
	// Mode is the transport. Default: [WS].
	Mode Mode
	// Pool is the number of connections to the server: for WS, the
	// WebSocket connections objects are spread across (default: GOMAXPROCS,
	// at least 4); for HPush and HPull, the most keep-alive HTTP
	// connections (default 64; have it at least the number of objects
	// in flight at once, or they queue for a connection).
	Pool int
	// Secret authenticates the client: every request carries a
	// short-lived token of this secret (see [locality.Secret.Authorize]).
	// In a cluster it is the transform secret of the server's node,
	// derived from the cluster's ([locality.Secret.TransformSecret]).
	// Default: none.
	Secret locality.Secret
	// Timeout bounds the time of one object, end to end; the server is
	// told so too, and stops the transform when it passes. Past it the
	// object fails with [insitu.DeadlineExceeded]. Default
	// [DefaultTimeout], the server's default too.
	Timeout time.Duration
	// IOTimeout bounds each wait of the client on the server that does
	// not depend on the transform's pace: each dial (the connection and
	// the WebSocket or TLS handshake); for WS, each frame's write (a
	// write that does not complete drops the connection, and the objects
	// on it fail with [insitu.Unavailable]) and the server's liveness:
	// while objects are in flight on a connection that has heard nothing
	// from the server for IOTimeout, the client pings it, and a server
	// that does not answer within IOTimeout (frozen, or cut off) has its
	// connection dropped the same way. The waits that follow the
	// transform (its output, the credit it grants as it reads, and in
	// HPush and HPull the whole exchange) are bounded by Timeout. Default
	// [DefaultIOTimeout].
	IOTimeout time.Duration
	// IdleTimeout closes a WebSocket connection of the pool that has
	// carried no object for this long; the next object dials a new one.
	// Keep it below the server's [ServerOptions.IdleTimeout], so that the
	// server never closes a connection the client is about to use.
	// Default [DefaultClientIdleTimeout].
	IdleTimeout time.Duration
	// LocalFile sends an input's local path (Input.Path) instead of its
	// bytes, when it has one: for a server that shares the disk and lists
	// the file's directory in its ServerOptions.Roots; Input.Body is then
	// not read, and may be nil. Default: false.
	LocalFile bool
	// SourceURL tells, for an object, the URL the server GETs its bytes
	// from and the bearer token to send there ("" for none): in a
	// cluster, a read token of that one object (see
	// [locality.Client.ObjectToken]). HPull requires it (or LocalFile and a path); WS uses it
	// when set, and then sends no bytes (Input.Body is not read, and may
	// be nil); HPush ignores it.
	SourceURL func(obj insitu.Object) (url, token string, err error)
	// HTTPClient makes the requests and the WebSocket handshakes. Default:
	// a client with a keep-alive pool of Pool connections whose dials are
	// bounded by IOTimeout.
	HTTPClient *http.Client
	// Window is the WebSocket receive window of one request: the bytes
	// of output the server may send ahead of the writing to out. Default
	// 256 KiB; at least 64 KiB.
	Window int
	// Logger receives the client's log records (a protocol error from the
	// server, at Warn level). Default: none (a discarding logger).
	Logger *slog.Logger
}

// Client reaches one transform server. It implements [insitu.Transform]
// (the output comes back to the caller) and [insitu.DirectTransform]
// ([Client.TransformTo]: the server puts the output to its destination
// itself, so pipeline.Run with Options.DirectPut and a direct sink such
// as sink.Cluster never carries the output). A Client is safe for
// concurrent use; its connections are pooled, and a connection that dies is
// replaced on the next use.
type Client struct {
	base   *url.URL
	opts   DialOptions
	http   *http.Client
	log    *slog.Logger
	ws     *wsPool
	closed atomic.Bool
}

var _ insitu.DirectTransform = (*Client)(nil)

// Dial returns a Client of the transform server at serverURL (such as
// http://127.0.0.1:7101). For WS it opens one connection, so that a wrong
// address or secret fails here (with [insitu.Unavailable] or
// [insitu.PermissionDenied]); the HTTP modes connect on first use.
func Dial(ctx context.Context, serverURL string, opts *DialOptions) (*Client, error) {
	c := &Client{}
	if opts != nil {
		c.opts = *opts
	}
	o := &c.opts
	u, err := parseHTTPURL(strings.TrimSuffix(serverURL, "/"))
	if err != nil {
		return nil, insitu.Errorf(insitu.InvalidArgument, "transform server URL: %v", err)
	}
	c.base = u
	if int(o.Mode) >= len(modeNames) {
		return nil, insitu.Errorf(insitu.InvalidArgument, "unknown transport mode %d", uint8(o.Mode))
	}
	if o.Mode == HPull && o.SourceURL == nil && !o.LocalFile {
		return nil, insitu.Errorf(insitu.InvalidArgument, "hpull needs DialOptions.SourceURL (or LocalFile) to tell the server where each input is")
	}
	if o.Pool <= 0 {
		if o.Mode == WS {
			o.Pool = max(4, runtime.GOMAXPROCS(0))
		} else {
			o.Pool = 64
		}
	}
	if o.Window <= 0 {
		o.Window = defaultWindow
	}
	o.Window = min(max(o.Window, minWindow), maxWindow)
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.IOTimeout <= 0 {
		o.IOTimeout = DefaultIOTimeout
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultClientIdleTimeout
	}
	c.log = o.Logger
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.http = o.HTTPClient
	if c.http == nil {
		if o.Mode == WS {
			// WebSocket connections leave the pool: do not count them.
			tr := newHTTPTransport(0, o.IOTimeout)
			tr.DialContext = batchDialer(o.IOTimeout)
			c.http = &http.Client{Transport: tr}
		} else {
			c.http = &http.Client{Transport: newHTTPTransport(o.Pool, o.IOTimeout)}
		}
	}
	if o.Mode == WS {
		c.ws = newWSPool(c)
		if err := c.ws.warm(ctx); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Mode returns the client's transport.
func (c *Client) Mode() Mode { return c.opts.Mode }

// Close closes the client's connections; objects in flight on them fail.
// Calls after Close fail with [insitu.Canceled].
func (c *Client) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	if c.ws != nil {
		c.ws.close()
	}
	if c.opts.HTTPClient == nil {
		c.http.CloseIdleConnections()
	}
	return nil
}

var errClientClosed = insitu.Errorf(insitu.Canceled, "the transport client is closed")

// Transform sends in to the server and writes the output to out. The
// server's errors come back as *insitu.Error with their code and message;
// [insitu.ErrSkip] comes back as is; a connection lost while the object is
// in flight fails it with [insitu.Unavailable], so a retry may resend it.
//
// What travels for the input depends on the mode: with
// DialOptions.LocalFile and an in.Path, the path; else, in WS and HPull
// with DialOptions.SourceURL, the source URL; else (WS, HPush) the bytes
// of in.Body. HPull never sends bytes, and fails an input with neither
// with [insitu.InvalidArgument]. When the bytes travel, in.Body must be
// set and, when in.Size >= 0, hold exactly in.Size bytes: a nil Body is
// InvalidArgument before anything is sent, and so is a Body that ends
// before in.Size bytes or goes on after them, found as it is read (before
// the server has the input whole, so that nothing is transformed or put
// from it). InvalidArgument is not worth a retry.
func (c *Client) Transform(ctx context.Context, in *insitu.Input, out io.Writer) error {
	_, err := c.do(ctx, in, nil, out)
	return err
}

// TransformTo sends in to the server, which transforms it and puts the
// output to dst itself (direct put: dst.URL and dst.Token travel in the
// request), and returns what dst stored: its name, size, checksum and
// owner. The output never comes back through the client. Like
// [Client.Transform], errors carry their codes, and the input follows the
// same rules; a failed transform stores nothing at dst.
func (c *Client) TransformTo(ctx context.Context, in *insitu.Input, dst insitu.Destination) (insitu.PutResult, error) {
	if dst.URL == "" {
		return insitu.PutResult{}, insitu.WithName(insitu.Errorf(insitu.InvalidArgument, "a direct put needs a destination URL"), in.Name)
	}
	return c.do(ctx, in, &dst, io.Discard)
}

func (c *Client) do(callerCtx context.Context, in *insitu.Input, dst *insitu.Destination, out io.Writer) (insitu.PutResult, error) {
	if c.closed.Load() {
		return insitu.PutResult{}, insitu.WithName(errClientClosed, in.Name)
	}
	req, err := c.newRequest(in, dst)
	if err != nil {
		return insitu.PutResult{}, err
	}
	ctx, cancel := context.WithTimeoutCause(callerCtx, c.opts.Timeout,
		insitu.Errorf(insitu.DeadlineExceeded, "the per-object timeout of %v passed", c.opts.Timeout))
	defer cancel()
	var body io.Reader
	var sized *sizedReader
	if req.hasBody() {
		if in.Body == nil {
			return insitu.PutResult{}, c.errNoBody(in.Name)
		}
		body = in.Body
		if req.Size >= 0 {
			sized = newSizedReader(body, in.Name, req.Size, "Input.Size")
			body = sized
			if err := sized.check(); err != nil {
				return insitu.PutResult{}, err
			}
		}
	}
	var res insitu.PutResult
	if c.opts.Mode == WS {
		res, err = c.ws.do(ctx, req, body, out)
	} else {
		res, err = c.doHTTP(ctx, req, body, out)
	}
	if sized != nil {
		// The transport is done with the input: a mismatch it met is the
		// error, whatever the server made of the bytes it got.
		if merr := sized.mismatch(); merr != nil {
			return insitu.PutResult{}, merr
		}
	}
	if err != nil {
		return insitu.PutResult{}, c.fixErr(callerCtx, ctx, err, in.Name)
	}
	return res, nil
}

// errNoBody is the error of an input whose bytes must travel (no local
// path or source URL names them instead) but that has no Body.
func (c *Client) errNoBody(name insitu.Name) error {
	how := "unless DialOptions.LocalFile and Input.Path name a file the server reads instead"
	if c.opts.Mode == WS {
		how = "unless DialOptions.LocalFile and Input.Path, or DialOptions.SourceURL, name where the server reads them instead"
	}
	return insitu.WithName(insitu.Errorf(insitu.InvalidArgument,
		"Input.Body is nil: %s sends the input's bytes %s", c.opts.Mode, how), name)
}

// fixErr gives an error its final form: the caller's context error as is;
// the client's own timeout as DeadlineExceeded; errors of the caller's
// reader and writer as they are; all else named after the object.
func (c *Client) fixErr(callerCtx, ctx context.Context, err error, name insitu.Name) error {
	if err == insitu.ErrSkip {
		return err
	}
	if callerCtx.Err() != nil {
		return callerCtx.Err()
	}
	if ctx.Err() != nil {
		return insitu.WithName(context.Cause(ctx), name)
	}
	var we *outputError
	if errors.As(err, &we) {
		return we.err
	}
	var re *readError
	if errors.As(err, &re) {
		return re.err
	}
	return insitu.WithName(err, name)
}

// newRequest builds the request of an input.
func (c *Client) newRequest(in *insitu.Input, dst *insitu.Destination) (*request, error) {
	r := &request{
		Bucket: in.Name.Bucket, Key: in.Name.Key, Size: in.Size,
		Owner: in.Owner, Args: in.Args,
	}
	if r.Size < -1 {
		r.Size = -1
	}
	switch {
	case c.opts.LocalFile && in.Path != "":
		p, err := filepath.Abs(in.Path)
		if err != nil {
			return nil, insitu.WithName(insitu.Errorf(insitu.InvalidArgument, "local path %q: %v", in.Path, err), in.Name)
		}
		r.Path, r.Size = p, -1
	case c.opts.SourceURL != nil && c.opts.Mode != HPush:
		u, tok, err := c.opts.SourceURL(in.Object)
		if err != nil {
			return nil, insitu.WithName(err, in.Name)
		}
		r.SourceURL, r.SourceToken, r.Size = u, tok, -1
	case c.opts.Mode == HPull:
		return nil, insitu.WithName(insitu.Errorf(insitu.InvalidArgument, "hpull: the input has no local path and DialOptions.SourceURL is not set"), in.Name)
	}
	if dst != nil {
		r.PutURL, r.PutToken, r.PutOrigin = dst.URL, dst.Token, dst.Origin
	}
	r.TimeoutMS = max(1, c.opts.Timeout.Milliseconds())
	if err := r.validate(); err != nil {
		return nil, err
	}
	return r, nil
}
