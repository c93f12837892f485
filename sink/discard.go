package sink

import (
	"context"
	"io"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/putcheck"
)

// Discard returns a sink that reads every object to the end and drops it,
// for dry runs and benchmarks. Put validates the name, checks the size
// like any sink (a mismatch is InvalidArgument), stops when ctx ends, and
// returns the byte count and the XXH64 checksum of the bytes, as a sink
// that stores them would. Nothing is stored: Stat always returns NotFound.
func Discard() insitu.Sink { return discard{} }

type discard struct{}

// Put reads r to the end and drops the bytes.
func (discard) Put(ctx context.Context, name insitu.Name, r io.Reader, size int64) (insitu.PutResult, error) {
	if err := name.Validate(); err != nil {
		return insitu.PutResult{}, err
	}
	in, err := putcheck.New(ctx, name, r, size, 0)
	if err != nil {
		return insitu.PutResult{}, err
	}
	if _, err := io.Copy(io.Discard, in); err != nil {
		return insitu.PutResult{}, err
	}
	return in.Result(), nil
}

// Stat reports that nothing is stored.
func (discard) Stat(_ context.Context, name insitu.Name) (insitu.Object, error) {
	return insitu.Object{}, &insitu.Error{Code: insitu.NotFound, Name: name, Msg: "the discard sink stores nothing"}
}
