package sink

import (
	"context"
	"fmt"
	"io"

	"github.com/insitu-data/insitu"
)

// Discard returns a sink that reads every object to the end and drops it,
// for dry runs and benchmarks. Put validates the name, checks the size
// like any sink (a mismatch is InvalidArgument), stops when ctx ends, and
// returns the byte count with no checksum. Nothing is stored: Stat always
// returns NotFound.
func Discard() insitu.Sink { return discard{} }

type discard struct{}

// Put reads r to the end and drops the bytes.
func (discard) Put(ctx context.Context, name insitu.Name, r io.Reader, size int64) (insitu.PutResult, error) {
	if err := name.Validate(); err != nil {
		return insitu.PutResult{}, err
	}
	if err := insitu.ValidatePut(name, r, size); err != nil {
		return insitu.PutResult{}, err
	}
	if size >= 0 {
		r = io.LimitReader(r, size+1) // one byte over is enough to tell
	}
	n, err := io.Copy(io.Discard, ctxReader{ctx, r})
	if err != nil {
		if err == ctx.Err() {
			return insitu.PutResult{}, err
		}
		return insitu.PutResult{}, readError(name, err)
	}
	if size >= 0 && n != size {
		got := fmt.Sprint(n)
		if n > size {
			got = fmt.Sprintf("more than %d", size)
		}
		return insitu.PutResult{}, sizeError(name, size, got)
	}
	return insitu.PutResult{Name: name, Size: n}, nil
}

// Stat reports that nothing is stored.
func (discard) Stat(_ context.Context, name insitu.Name) (insitu.Object, error) {
	return insitu.Object{}, &insitu.Error{Code: insitu.NotFound, Name: name, Msg: "the discard sink stores nothing"}
}

// ctxReader fails with ctx.Err() once ctx ends, checked before each Read.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
