package seaweedfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/insitu-data/insitu"
)

// open returns a reader of the bytes of e, the entry of name at the filer
// path p: straight from the volume servers when its chunks allow it, else
// through the filer.
func (c *Client) open(ctx context.Context, name insitu.Name, p string, e *entry) (io.ReadCloser, error) {
	if len(e.Chunks) == 0 && len(e.Content) > 0 && uint64(len(e.Content)) == e.FileSize {
		// The filer keeps the bytes in its own store, and gave them.
		return io.NopCloser(bytes.NewReader(e.Content)), nil
	}
	if chunks, ok := e.direct(); ok {
		if len(chunks) == 0 {
			return io.NopCloser(bytes.NewReader(nil)), nil // empty
		}
		r := &chunkReader{c: c, ctx: ctx, name: name, chunks: chunks}
		err := r.next()
		if err == nil {
			return r, nil
		}
		if !r.fallback || e.isDir() {
			r.Close()
			return nil, err
		}
		c.opts.Logger.Debug("seaweedfs: reading through the filer", "name", name.String(), "err", err)
	}
	if _, ok := e.direct(); !ok {
		c.opts.Logger.Debug("seaweedfs: reading through the filer", "name", name.String(), "reason", "the chunks are not plain ones that tile the file")
	}
	if e.isDir() {
		// The filer answers a directory's listing, not its bytes.
		return nil, &insitu.Error{Code: insitu.Internal, Name: name,
			Msg: "the object is also a directory and its chunks cannot be read straight from volume servers (a chunk manifest or encryption): the filer would answer its listing"}
	}
	return c.filerGet(ctx, name, p, int64(e.FileSize))
}

// watchdog cancels a request's context when it makes no progress for a
// while: Timeout for the answer's headers, then IOTimeout between reads
// of its body.
type watchdog struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	timer  *time.Timer
	d      time.Duration
}

func newWatchdog(ctx context.Context, d time.Duration) *watchdog {
	w := &watchdog{d: d}
	w.ctx, w.cancel = context.WithCancelCause(ctx)
	w.timer = time.AfterFunc(d, func() { w.cancel(errTimeout) })
	return w
}

// progress restarts the wait, now of d.
func (w *watchdog) progress(d time.Duration) {
	w.d = d
	w.timer.Reset(d)
}

func (w *watchdog) stop() {
	w.timer.Stop()
	w.cancel(context.Canceled)
}

// get sends a GET of u bounded by a watchdog and returns the 200 answer.
func (c *Client) get(ctx context.Context, u string, name insitu.Name, what string) (*http.Response, *watchdog, error) {
	w := newWatchdog(ctx, c.opts.Timeout)
	req, err := http.NewRequestWithContext(w.ctx, http.MethodGet, u, nil)
	if err != nil {
		w.stop()
		return nil, nil, &insitu.Error{Code: insitu.Internal, Name: name, Msg: what, Err: err}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		err = c.transportError(w.ctx, err, name, what)
		w.stop()
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		err := newStatusError(resp, name, what)
		resp.Body.Close()
		w.stop()
		return nil, nil, err
	}
	w.progress(c.opts.IOTimeout)
	return resp, w, nil
}

// chunkReader reads an object's chunks one after the other, each straight
// from a volume server that holds it.
type chunkReader struct {
	c      *Client
	ctx    context.Context
	name   insitu.Name
	chunks []*chunk
	i      int // the chunk being read is chunks[i-1]

	body     io.ReadCloser
	wd       *watchdog
	left     int64 // bytes of the current chunk not yet read
	from     string
	err      error // sticky
	fallback bool  // next failed in a way the filer may get around

	closeOnce sync.Once
}

// next opens the next chunk, trying each server of its volume in turn,
// the one of highest rendezvous weight for the object first (the owner of
// a one-chunk object). It sets fallback when every server failed in a way
// the filer might get around (not a volume with no live server, not the
// caller's context).
func (r *chunkReader) next() error {
	ch := r.chunks[r.i]
	r.i++
	vid := ch.volumeID()
	fid := ch.fileID()
	servers, err := r.c.locs.lookup(r.ctx, vid, r.name, false)
	if err != nil {
		return err
	}
	if len(servers) == 0 {
		return &insitu.Error{Code: insitu.Unavailable, Name: r.name,
			Msg: fmt.Sprintf("chunk %s: the master knows no live volume server that holds volume %d", fid, vid)}
	}
	var errs []error
	tried := map[string]bool{}
	for round := 0; round < 2; round++ {
		for _, s := range byWeight(r.name, servers) {
			if tried[s] {
				continue
			}
			tried[s] = true
			what := fmt.Sprintf("reading chunk %s from volume server %s", fid, s)
			// The errors are named once, by the error of next.
			resp, wd, err := r.c.get(r.ctx, "http://"+s+"/"+fid, insitu.Name{}, what)
			if err == nil {
				r.body, r.wd, r.left, r.from = resp.Body, wd, int64(ch.Size), s
				return nil
			}
			if cerr := r.ctx.Err(); cerr != nil {
				return cerr
			}
			errs = append(errs, err)
		}
		// The servers remembered are gone, moved the volume, or lost the
		// needle: ask the master afresh, and try the servers it names now.
		r.c.locs.forget(vid)
		if round > 0 {
			break
		}
		if servers, err = r.c.locs.lookup(r.ctx, vid, r.name, true); err != nil {
			return err
		}
		if len(servers) == 0 {
			return &insitu.Error{Code: insitu.Unavailable, Name: r.name,
				Msg: fmt.Sprintf("chunk %s: the master knows no live volume server that holds volume %d any more", fid, vid), Err: joined(errs)}
		}
	}
	r.fallback = true
	if len(errs) == 1 {
		return insitu.WithName(errs[0], r.name)
	}
	return &insitu.Error{Code: insitu.CodeOf(errs[0]), Name: r.name, Msg: fmt.Sprintf("chunk %s: every volume server failed", fid), Err: joined(errs)}
}

// joined returns the one error of errs as it is, or errs joined.
func joined(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}

// byWeight orders servers by rendezvous weight for name, highest first.
func byWeight(name insitu.Name, servers []string) []string {
	h := xxhash.Sum64String(name.Bucket + "/" + name.Key)
	out := slices.Clone(servers)
	slices.SortFunc(out, func(a, b string) int {
		wa, wb := mix(xxhash.Sum64String(a)^h), mix(xxhash.Sum64String(b)^h)
		switch {
		case wa > wb:
			return -1
		case wa < wb:
			return 1
		}
		return 0
	})
	return out
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	for {
		if r.body == nil {
			if r.i == len(r.chunks) {
				r.err = io.EOF
				return 0, io.EOF
			}
			if err := r.next(); err != nil {
				r.err = err
				return 0, err
			}
		}
		if r.left == 0 {
			r.closeBody()
			continue
		}
		if len(p) == 0 {
			return 0, nil
		}
		n, err := r.body.Read(p[:min(int64(len(p)), r.left)])
		r.left -= int64(n)
		if n > 0 {
			r.wd.progress(r.c.opts.IOTimeout)
		}
		switch {
		case err == io.EOF && r.left > 0:
			ch := r.chunks[r.i-1]
			r.err = &insitu.Error{Code: insitu.Unavailable, Name: r.name,
				Msg: fmt.Sprintf("chunk %s from volume server %s ended after %d of its %d bytes", ch.fileID(), r.from, int64(ch.Size)-r.left, ch.Size)}
		case err != nil && err != io.EOF:
			r.err = r.c.transportError(r.wd.ctx, err, r.name, fmt.Sprintf("reading chunk %s from volume server %s", r.chunks[r.i-1].fileID(), r.from))
			if cerr := r.ctx.Err(); cerr != nil {
				r.err = cerr
			}
		}
		if r.err != nil {
			r.closeBody()
			return n, nil
		}
		if n > 0 {
			return n, nil
		}
	}
}

func (r *chunkReader) closeBody() {
	if r.body != nil {
		r.body.Close()
		r.wd.stop()
		r.body, r.wd = nil, nil
	}
}

// Close closes the reader.
func (r *chunkReader) Close() error {
	r.closeOnce.Do(func() {
		r.closeBody()
		if r.err == nil {
			r.err = errors.New("seaweedfs: read after Close")
		}
	})
	return nil
}

// filerGet returns a reader of the filer path p through the filer, which
// assembles the chunks itself.
func (c *Client) filerGet(ctx context.Context, name insitu.Name, p string, size int64) (io.ReadCloser, error) {
	what := "reading " + p + " through the filer"
	resp, wd, err := c.get(ctx, c.filerURL(p, nil), name, what)
	if err != nil {
		return nil, c.checkFiler(err, name, what)
	}
	return &filerReader{c: c, ctx: ctx, name: name, what: what, body: resp.Body, wd: wd, left: size}, nil
}

// filerReader reads a GET of the filer and checks its length.
type filerReader struct {
	c    *Client
	ctx  context.Context
	name insitu.Name
	what string
	body io.ReadCloser
	wd   *watchdog
	left int64
	err  error
}

func (r *filerReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	n, err := r.body.Read(p)
	r.left -= int64(n)
	if n > 0 {
		r.wd.progress(r.c.opts.IOTimeout)
	}
	switch {
	case r.left < 0:
		r.err = &insitu.Error{Code: insitu.Internal, Name: r.name, Msg: r.what + ": the filer sent more bytes than the file's size"}
	case err == io.EOF && r.left > 0:
		r.err = &insitu.Error{Code: insitu.Unavailable, Name: r.name, Msg: fmt.Sprintf("%s: the answer ended %d bytes short", r.what, r.left)}
	case err == io.EOF:
		r.err = io.EOF
	case err != nil:
		r.err = r.c.transportError(r.wd.ctx, err, r.name, r.what)
		if cerr := r.ctx.Err(); cerr != nil {
			r.err = cerr
		}
	}
	if r.err != nil && r.err != io.EOF {
		return 0, r.err
	}
	return n, r.err
}

// Close closes the reader.
func (r *filerReader) Close() error {
	err := r.body.Close()
	r.wd.stop()
	return err
}
