// Package putcheck is the one check of the bytes a Put stores, used by
// every sink and path that stores an object: sink.Dir, sink.Discard, the
// S3 sink, locality.Client.Put and the storage node. A [Reader] wraps the
// reader given to Put; it counts the bytes and computes their XXH64 as
// they pass, enforces a known size (shorter or longer is
// [insitu.InvalidArgument], with one wording everywhere) and an optional
// limit ([insitu.TooLarge]), stops when the Put's context ends, and names
// the object in the errors of the reader.
package putcheck

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/cespare/xxhash/v2"
	"github.com/insitu-data/insitu"
)

// maxEmptyReads is how many reads that return neither bytes nor an error
// the probe for the end of the input accepts before it gives up with
// io.ErrNoProgress.
const maxEmptyReads = 100

// Reader reads the input of one Put and checks it. It is not safe for
// concurrent use.
//
// Read returns bytes only with a nil error or io.EOF: when the input
// fails, is longer or shorter than its size, or is over the limit, Read
// returns 0 and the error, withholding the bytes of that last read, so
// that a consumer that stops at the size (an HTTP transport sending a
// Content-Length) never has a whole body from a failed input. When the
// bytes read reach a known size, Read probes r with a one-byte read before
// returning the last of them: an input that goes on is refused then, even
// by a consumer that reads no further. So r is never read past size+1
// bytes, and once [Reader.Size] equals a known size the next Read returns
// io.EOF without reading r. After an error or io.EOF, every Read returns
// the same again.
type Reader struct {
	ctx   context.Context
	name  insitu.Name
	r     io.Reader
	size  int64 // -1 when unknown
	limit int64 // 0 for none
	n     int64
	h     xxhash.Digest // in the Reader: one allocation a put, not two
	err   error         // io.EOF at the end, or the failure
}

// New returns a Reader of r, the input of a Put of name whose length the
// caller gave as size (-1 when unknown). A limit above 0 is the most bytes
// the object may have; 0 or below means none. New returns the error of
// [insitu.ValidatePut] for a nil r or a size below -1, an
// [insitu.TooLarge] error for a size over the limit, and ctx.Err() when
// ctx has already ended, so that a Put calls it before it does anything
// (but check the name, which is the sink's to judge).
//
// The errors of Read:
//   - ctx.Err(), unwrapped, once ctx ends (checked before each read of r,
//     and when r fails);
//   - [insitu.InvalidArgument] when r ends before size bytes ("the input
//     is N bytes, shorter than its size S") or has more ("the input is
//     longer than its size S");
//   - [insitu.TooLarge] when r has more than limit bytes;
//   - r's own error, named: a context error as it is, an *insitu.Error
//     with its code and the name added (see [insitu.WithName]), any other
//     error as the cause of an [insitu.Unknown] error "reading the input".
func New(ctx context.Context, name insitu.Name, r io.Reader, size, limit int64) (*Reader, error) {
	if err := insitu.ValidatePut(name, r, size); err != nil {
		return nil, err
	}
	if limit < 0 {
		limit = 0
	}
	if limit > 0 && size > limit {
		return nil, &insitu.Error{Code: insitu.TooLarge, Name: name,
			Msg: fmt.Sprintf("size %d is over the limit of %d bytes", size, limit)}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c := &Reader{ctx: ctx, name: name, r: r, size: size, limit: limit}
	c.h.Reset()
	return c, nil
}

// Read reads from the input; see [Reader] and [New] for the checks.
func (c *Reader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if err := c.ctx.Err(); err != nil {
		c.err = err
		return 0, err
	}
	if c.size >= 0 {
		left := c.size - c.n
		if left == 0 { // a size of 0: only the probe is left
			if err := c.probe(); err != io.EOF {
				return 0, err
			}
			c.err = io.EOF
			return 0, io.EOF
		}
		if int64(len(p)) > left {
			p = p[:left]
		}
	}
	k, err := c.r.Read(p)
	n := c.n + int64(k)
	switch {
	case c.limit > 0 && n > c.limit:
		return 0, c.fail(&insitu.Error{Code: insitu.TooLarge, Name: c.name,
			Msg: fmt.Sprintf("the input is over the limit of %d bytes", c.limit)})
	case err == io.EOF && c.size >= 0 && n < c.size:
		return 0, c.fail(&insitu.Error{Code: insitu.InvalidArgument, Name: c.name,
			Msg: fmt.Sprintf("the input is %d bytes, shorter than its size %d", n, c.size)})
	case err != nil && err != io.EOF:
		return 0, c.fail(c.readError(err))
	case err == nil && c.size >= 0 && n == c.size:
		// A consumer may stop reading here: check now that r ends.
		if perr := c.probe(); perr != io.EOF {
			return 0, perr
		}
		err = io.EOF
	}
	c.n = n
	_, _ = c.h.Write(p[:k])
	if err == io.EOF {
		c.err = io.EOF
		if k > 0 {
			return k, nil // io.EOF on the next Read
		}
		return 0, io.EOF
	}
	return k, nil
}

// probe reads one byte past a known size: io.EOF when r ends there, the
// (recorded) error otherwise.
func (c *Reader) probe() error {
	var one [1]byte
	for range maxEmptyReads {
		k, err := c.r.Read(one[:])
		switch {
		case k > 0:
			return c.fail(&insitu.Error{Code: insitu.InvalidArgument, Name: c.name,
				Msg: fmt.Sprintf("the input is longer than its size %d", c.size)})
		case err == io.EOF:
			return io.EOF
		case err != nil:
			return c.fail(c.readError(err))
		}
	}
	return c.fail(c.readError(io.ErrNoProgress))
}

// fail records err as the reader's failure and returns it.
func (c *Reader) fail(err error) error {
	c.err = err
	return err
}

// readError is the error for r's error err.
func (c *Reader) readError(err error) error {
	if cerr := c.ctx.Err(); cerr != nil {
		return cerr
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if _, ok := errors.AsType[*insitu.Error](err); ok {
		return insitu.WithName(err, c.name)
	}
	return &insitu.Error{Code: insitu.Unknown, Name: c.name, Msg: "reading the input", Err: err}
}

// Err returns the error that ended the reading, or nil when the input has
// not failed (so far, or at all when it reached its end).
func (c *Reader) Err() error {
	if c.err == io.EOF {
		return nil
	}
	return c.err
}

// Size returns the number of bytes Read has returned: at the end, the
// object's size.
func (c *Reader) Size() int64 { return c.n }

// Sum returns the XXH64 (seed 0) of the bytes Read has returned.
func (c *Reader) Sum() uint64 { return c.h.Sum64() }

// Checksum returns [Reader.Sum] as 16 lowercase hexadecimal digits, the
// form of [insitu.PutResult].Checksum.
func (c *Reader) Checksum() string { return Hex(c.h.Sum64()) }

// Hex returns sum as 16 lowercase hexadecimal digits, as
// fmt.Sprintf("%016x", sum) does, without fmt: the form of a checksum in
// [insitu.PutResult] and in the wire's Insitu-Checksum header.
func Hex(sum uint64) string {
	const digits = "0123456789abcdef"
	var b [16]byte
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = digits[sum&0xf]
		sum >>= 4
	}
	return string(b[:])
}

// Result returns the PutResult of the bytes read, with the name, the size
// and the checksum; its Owner is "". Call it once Read has returned
// io.EOF.
func (c *Reader) Result() insitu.PutResult {
	return insitu.PutResult{Name: c.name, Size: c.n, Checksum: c.Checksum()}
}
