package transport

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"

	"github.com/cespare/xxhash/v2"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/wire"
)

// putWriter streams a transform's output to its direct-put destination
// with one HTTP PUT. The request starts on the first Write (or at finish,
// for an empty output), so a transform that fails or skips before writing
// sends nothing.
type putWriter struct {
	s      *Server
	ctx    context.Context
	dst    *url.URL
	token  string
	origin string // sent as the Insitu-Origin header; "" for none
	pw     *io.PipeWriter
	done   chan struct{}
	res    insitu.PutResult
	err    error
	hash   *xxhash.Digest
	n      int64
	closed bool
}

func (s *Server) newPutWriter(ctx context.Context, dst *url.URL, token, origin string) *putWriter {
	return &putWriter{s: s, ctx: ctx, dst: dst, token: token, origin: origin, hash: xxhash.New()}
}

func (p *putWriter) start(body io.Reader, size int64) {
	p.done = make(chan struct{})
	go func() {
		defer close(p.done)
		p.res, p.err = p.put(body, size)
	}()
}

func (p *putWriter) put(body io.Reader, size int64) (insitu.PutResult, error) {
	dst := p.dst.Redacted()
	req, err := http.NewRequestWithContext(p.ctx, http.MethodPut, p.dst.String(), body)
	if err != nil {
		return insitu.PutResult{}, insitu.Errorf(insitu.InvalidArgument, "direct put to %s: %v", dst, err)
	}
	req.ContentLength = size
	if size == 0 {
		req.Body = http.NoBody
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	if p.token != "" {
		req.Header.Set("Authorization", "Bearer "+p.token)
	}
	if p.origin != "" {
		req.Header.Set(wire.Origin, p.origin)
	}
	resp, err := p.s.client.Do(req)
	if err != nil {
		if p.ctx.Err() != nil {
			return insitu.PutResult{}, p.ctx.Err()
		}
		if pr, ok := body.(*io.PipeReader); ok {
			pr.CloseWithError(err)
		}
		return insitu.PutResult{}, insitu.Errorf(insitu.Unavailable, "direct put to %s: %w", dst, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		coded := resp.Header.Get(wire.ErrorCode) != ""
		b, err := wire.DecodeError(resp, insitu.Name{}, "direct put to "+dst)
		if !coded && resp.StatusCode >= 500 && b.Code != insitu.Unavailable {
			// A destination that is not an insitu node (a SeaweedFS
			// filer whose volume server is down, say) gives no code: its
			// 5xx is taken as transient, so the runner retries it.
			err = &insitu.Error{Code: insitu.Unavailable, Msg: "direct put to " + dst + ": " + b.Message}
		}
		return insitu.PutResult{}, err
	}
	// The answer of a storage node is a put result; others (a SeaweedFS
	// filer: {"name":"o.wav","size":N}) have other fields, which are
	// ignored, and may leave out what is optional.
	var ans struct {
		Name     json.RawMessage `json:"name"` // a put result's {"bucket","key"}; else ignored
		Size     int64           `json:"size"` // absent: 0 (a filer leaves out a size of 0)
		Checksum string          `json:"checksum"`
		Owner    string          `json:"owner"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, wire.MaxErrorBody)).Decode(&ans); err != nil {
		return insitu.PutResult{}, insitu.Errorf(insitu.Unavailable, "direct put to %s: the answer is not a JSON object with the size stored: %v", dst, err)
	}
	res := insitu.PutResult{Size: ans.Size, Checksum: ans.Checksum, Owner: ans.Owner}
	var name insitu.Name
	if len(ans.Name) > 0 && json.Unmarshal(ans.Name, &name) == nil {
		res.Name = name
	}
	return res, nil
}

// Write sends b on to the destination.
func (p *putWriter) Write(b []byte) (int, error) {
	if p.closed {
		return 0, io.ErrClosedPipe
	}
	if p.pw == nil {
		pr, pw := io.Pipe()
		p.pw = pw
		p.start(pr, -1)
	}
	n, err := p.pw.Write(b)
	p.hash.Write(b[:n])
	p.n += int64(n)
	if err != nil {
		<-p.done
		if p.err != nil {
			return n, p.err
		}
		return n, insitu.Errorf(insitu.Unavailable, "direct put to %s: the destination stopped reading", p.dst.Redacted())
	}
	return n, nil
}

// finish ends the put: with the transform's error terr it aborts the
// request (the destination keeps nothing); without, it completes it and
// checks the destination stored what was sent.
func (p *putWriter) finish(terr error) (insitu.PutResult, error) {
	p.closed = true
	if terr != nil {
		if p.pw != nil {
			p.pw.CloseWithError(terr)
			<-p.done
		}
		return insitu.PutResult{}, terr
	}
	if p.pw == nil {
		p.start(http.NoBody, 0)
	} else {
		p.pw.Close()
	}
	<-p.done
	if p.err != nil {
		return insitu.PutResult{}, p.err
	}
	res := p.res
	sum := hex.EncodeToString(p.hash.Sum(nil))
	if res.Size != p.n {
		return insitu.PutResult{}, insitu.Errorf(insitu.Internal, "direct put to %s: the destination stored %d bytes of %d sent", p.dst.Redacted(), res.Size, p.n)
	}
	if res.Checksum != "" && res.Checksum != sum {
		return insitu.PutResult{}, insitu.Errorf(insitu.Internal, "direct put to %s: the destination's checksum %s is not that of the bytes sent (%s)", p.dst.Redacted(), res.Checksum, sum)
	}
	res.Checksum = sum
	return res, nil
}
