package transport

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"sync"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/wire"
)

var copyBufPool = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// doHTTP sends one request with hpush or hpull.
func (c *Client) doHTTP(ctx context.Context, req *request, body io.Reader, out io.Writer) (insitu.PutResult, error) {
	method := http.MethodPut
	if c.opts.Mode == HPull {
		method = http.MethodGet
	}
	target := c.base.String() + req.urlPath()
	var guard *guardedReader
	var rb io.Reader
	if body != nil {
		guard = &guardedReader{r: body}
		defer guard.detach()
		rb = guard
	}
	hr, err := http.NewRequestWithContext(ctx, method, target, rb)
	if err != nil {
		return insitu.PutResult{}, insitu.Errorf(insitu.InvalidArgument, "building the request: %v", err)
	}
	if body != nil {
		hr.ContentLength = req.Size
		if req.Size == 0 {
			hr.Body = http.NoBody
		}
	}
	req.setHeaders(hr.Header)
	c.opts.Secret.Authorize(hr)
	resp, err := c.http.Do(hr)
	if err != nil {
		if rerr := guard.inputErr(); rerr != nil {
			return insitu.PutResult{}, &readError{rerr}
		}
		return insitu.PutResult{}, insitu.Errorf(insitu.Unavailable, "%s %s: %w", method, c.base.Redacted(), unwrapURLError(err))
	}
	defer resp.Body.Close()
	name := req.name()
	switch {
	case resp.StatusCode == http.StatusNoContent && resp.Header.Get(wire.Skipped) == "true":
		return insitu.PutResult{}, insitu.ErrSkip
	case resp.StatusCode != http.StatusOK:
		_, err := wire.DecodeError(resp, name, "")
		return insitu.PutResult{}, err
	case req.PutURL != "":
		var res insitu.PutResult
		if err := json.NewDecoder(io.LimitReader(resp.Body, wire.MaxErrorBody)).Decode(&res); err != nil {
			return insitu.PutResult{}, insitu.Errorf(insitu.Unavailable, "the server's answer is not a JSON put result: %v", err)
		}
		return res, nil
	}
	bp := copyBufPool.Get().(*[]byte)
	_, err = io.CopyBuffer(&errWriter{w: out}, onlyReader{resp.Body}, *bp)
	copyBufPool.Put(bp)
	if err != nil {
		if _, ok := err.(*outputError); ok {
			return insitu.PutResult{}, err
		}
		return insitu.PutResult{}, insitu.Errorf(insitu.Unavailable, "reading the output: %w", err)
	}
	if code := resp.Trailer.Get(wire.ErrorCode); code != "" {
		msg, _ := url.PathUnescape(resp.Trailer.Get(wire.ErrorMessage))
		return insitu.PutResult{}, &insitu.Error{Code: insitu.ParseCode(code), Name: name, Msg: msg}
	}
	if resp.Trailer.Get(wire.Skipped) == "true" {
		return insitu.PutResult{}, insitu.ErrSkip
	}
	return insitu.PutResult{}, nil
}

// unwrapURLError drops the *url.Error layer, whose text repeats the URL.
func unwrapURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// onlyReader hides a reader's other methods, so io.CopyBuffer uses the buffer.
type onlyReader struct{ io.Reader }

// errWriter marks the errors of the caller's writer.
type errWriter struct{ w io.Writer }

func (e *errWriter) Write(p []byte) (int, error) {
	n, err := e.w.Write(p)
	if err != nil {
		return n, &outputError{err}
	}
	return n, nil
}

// guardedReader lets the HTTP transport read the caller's input only until
// the call returns: the transport may go on reading a request body after
// the response came, but the caller closes the input once Transform
// returns.
type guardedReader struct {
	mu       sync.Mutex
	r        io.Reader
	detached bool
	err      error // the input's own error, not io.EOF
}

func (g *guardedReader) Read(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.detached {
		return 0, io.ErrClosedPipe
	}
	n, err := g.r.Read(p)
	if err != nil && err != io.EOF {
		g.err = err
	}
	return n, err
}

// inputErr returns the input's own error, if reading it failed.
func (g *guardedReader) inputErr() error {
	if g == nil {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}

func (g *guardedReader) detach() {
	g.mu.Lock()
	g.detached = true
	g.mu.Unlock()
}
