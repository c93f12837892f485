// Package compress provides transforms that compress and decompress
// objects, gzip ([Gzip], [Gunzip]) and Zstandard ([Zstd], [Unzstd]), with
// github.com/klauspost/compress.
//
// Every transform streams: it holds a compressor's or decompressor's
// window and buffers, never a whole object. Input that is not in the
// format, is truncated or is corrupt (a bad checksum, a bad block) fails
// the object with an [insitu.InvalidArgument] error naming the problem; a
// decompressed output over [Options.MaxOutput] (a decompression bomb)
// fails it with [insitu.TooLarge]. Errors of the input's reader, of the
// output's writer and of the context come back as they are. On any
// error the output written so far is incomplete and must be discarded,
// as runners do with a failed transform's output.
//
// The transforms ignore the job's args. Each is safe for concurrent use,
// and has a String method that returns its name ("gzip", "gunzip",
// "zstd", "unzstd"), by which a transform.Chain names a failing stage.
package compress

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/insitu-data/insitu"
)

// DefaultMaxOutput is the bound on a decompressed output when
// [Options.MaxOutput] is 0: 4 GiB.
const DefaultMaxOutput = 4 << 30

// MaxZstdWindow is the largest Zstandard window [Unzstd] accepts, 128 MiB
// (what `zstd --long` writes by default): a frame that asks for more
// memory than this fails with [insitu.TooLarge].
const MaxZstdWindow = 128 << 20

// Options configure a transform of this package. A nil *Options means
// the defaults of its fields.
type Options struct {
	// Level is the compression level of Gzip and Zstd; 0 means the
	// format's default. Gzip takes 1 (fastest) to 9 (best), -1 for its
	// default or -2 for Huffman coding only; Zstd takes the levels of the zstd command,
	// 1 to 22, mapped to the nearest level the encoder has (1: fastest,
	// 3: default, 7: better, 11 and over: best). Another level fails
	// every object with [insitu.InvalidArgument]. Decompressors ignore it.
	Level int
	// MaxOutput bounds the bytes Gunzip and Unzstd write for one object:
	// an output over it fails with [insitu.TooLarge]. 0 means
	// [DefaultMaxOutput]; a negative value means no bound. Compressors
	// ignore it.
	MaxOutput int64
}

func (o *Options) level() int {
	if o == nil {
		return 0
	}
	return o.Level
}

func (o *Options) maxOutput() int64 {
	switch {
	case o == nil || o.MaxOutput == 0:
		return DefaultMaxOutput
	case o.MaxOutput < 0:
		return -1
	}
	return o.MaxOutput
}

// Gzip returns the transform that compresses its input into one gzip
// member (RFC 1952) at o's Level.
func Gzip(o *Options) insitu.Transform {
	level := o.level()
	return named{"gzip", insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		l := level
		switch {
		case l == 0:
			l = gzip.DefaultCompression
		case l < gzip.HuffmanOnly || l > gzip.BestCompression:
			return insitu.Errorf(insitu.InvalidArgument, "gzip: level %d; want 1 to 9, -2 for Huffman only, or 0 for the default", level)
		}
		zw, err := gzip.NewWriterLevel(out, l)
		if err != nil {
			return insitu.Errorf(insitu.InvalidArgument, "gzip: %w", err)
		}
		if _, err := io.Copy(zw, ctxReader{ctx, in.Body}); err != nil {
			return err
		}
		return zw.Close()
	})}
}

// Zstd returns the transform that compresses its input into one
// Zstandard frame (RFC 8878, with a content checksum) at o's Level.
func Zstd(o *Options) insitu.Transform {
	level := o.level()
	return named{"zstd", insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		el := zstd.SpeedDefault
		switch {
		case level == 0:
		case level < 1 || level > 22:
			return insitu.Errorf(insitu.InvalidArgument, "zstd: level %d; want 1 to 22, or 0 for the default", level)
		default:
			el = zstd.EncoderLevelFromZstd(level)
		}
		zw, err := zstd.NewWriter(out, zstd.WithEncoderLevel(el), zstd.WithEncoderConcurrency(1))
		if err != nil {
			return insitu.Errorf(insitu.InvalidArgument, "zstd: %w", err)
		}
		if _, err := io.Copy(zw, ctxReader{ctx, in.Body}); err != nil {
			zw.Reset(io.Discard) // release the encoder without writing more
			_ = zw.Close()
			return err
		}
		return zw.Close()
	})}
}

// Gunzip returns the transform that decompresses a gzip stream: one
// member or several concatenated (as gzip -d reads them), each checked
// against its CRC-32 and length. Its output is bounded by o's MaxOutput.
func Gunzip(o *Options) insitu.Transform {
	limit := o.maxOutput()
	return named{"gunzip", insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		return decompress(ctx, in, out, limit, "gunzip", "gzip", func(r io.Reader) (io.Reader, func(), error) {
			// Tell input that is not gzip from a truncated stream even
			// when it is shorter than a gzip header.
			br := bufio.NewReader(r)
			if magic, _ := br.Peek(2); !bytes.HasPrefix([]byte{0x1f, 0x8b}, magic) {
				return nil, nil, gzip.ErrHeader
			}
			zr, err := gzip.NewReader(br)
			if err != nil {
				return nil, nil, err
			}
			return zr, func() { _ = zr.Close() }, nil
		})
	})}
}

// Unzstd returns the transform that decompresses a Zstandard stream: one
// frame or several concatenated, each checked against its checksum when
// it has one. Its output is bounded by o's MaxOutput, and the window a
// frame may ask for by [MaxZstdWindow].
func Unzstd(o *Options) insitu.Transform {
	limit := o.maxOutput()
	return named{"unzstd", insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		return decompress(ctx, in, out, limit, "unzstd", "zstd", func(r io.Reader) (io.Reader, func(), error) {
			zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
				zstd.WithDecoderMaxWindow(MaxZstdWindow))
			if err != nil {
				return nil, nil, err
			}
			return zr, zr.Close, nil
		})
	})}
}

// decompress copies what open makes of in.Body to out, at most limit
// bytes (none when limit < 0), and sorts the errors: the body's, out's
// and the context's come back as they are, the bound's is TooLarge, and
// any other is the decoder's verdict on the input, InvalidArgument.
func decompress(ctx context.Context, in *insitu.Input, out io.Writer, limit int64, op, format string,
	open func(io.Reader) (io.Reader, func(), error)) error {
	body := &errReader{r: ctxReader{ctx, in.Body}}
	w := &limitWriter{w: out, left: limit, limit: limit, op: op}
	zr, closeFn, err := open(body)
	if err == nil {
		defer closeFn()
		_, err = io.Copy(w, zr)
		if err == nil && body.n == 0 {
			err = io.EOF // no stream at all, which gzip -d and zstd -d reject too
		}
	}
	switch {
	case err == nil:
		return nil
	case body.err != nil:
		return body.err
	case w.err != nil:
		return w.err
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, zstd.ErrWindowSizeExceeded) || errors.Is(err, zstd.ErrDecoderSizeExceeded):
		return insitu.Errorf(insitu.TooLarge, "%s: the stream needs more memory than allowed (window over %d bytes): %w", op, MaxZstdWindow, err)
	}
	return insitu.Errorf(insitu.InvalidArgument, "%s: %s: %w", op, problem(err, format, body.n), err)
}

// problem names in words what a decoder's error says about the input.
func problem(err error, format string, read int64) string {
	var corrupt flate.CorruptInputError
	switch {
	case read == 0 && (err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF)):
		return "empty input, not a " + format + " stream"
	case errors.Is(err, gzip.ErrHeader) || errors.Is(err, zstd.ErrMagicMismatch):
		return "not a " + format + " stream"
	case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated " + format + " stream"
	case errors.Is(err, gzip.ErrChecksum) || errors.Is(err, zstd.ErrCRCMismatch):
		return "checksum mismatch, corrupt " + format + " stream"
	case errors.As(err, &corrupt):
		return "corrupt " + format + " stream"
	}
	return "corrupt " + format + " stream"
}

// errReader is r that records its first error other than io.EOF, and
// counts the bytes read.
type errReader struct {
	r   io.Reader
	n   int64
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	e.n += int64(n)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

// limitWriter is w that accepts at most limit bytes in all (any number
// when limit < 0), failing with TooLarge past it, and records its error.
type limitWriter struct {
	w           io.Writer
	left, limit int64
	op          string
	err         error
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	if l.limit >= 0 && int64(len(p)) > l.left {
		n, err := l.w.Write(p[:l.left])
		l.left -= int64(n)
		if err == nil {
			err = insitu.Errorf(insitu.TooLarge, "%s: the output is over the limit of %d bytes (Options.MaxOutput)", l.op, l.limit)
		}
		l.err = err
		return n, err
	}
	n, err := l.w.Write(p)
	l.left -= int64(n)
	if err != nil {
		l.err = err
	}
	return n, err
}

// ctxReader is r that fails with the context's error once ctx is done.
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

// named is a transform with a name, which its String method returns, so
// that a chain's errors (transform.Chain) can say which stage failed.
type named struct {
	name string
	t    insitu.Transform
}

func (n named) Transform(ctx context.Context, in *insitu.Input, out io.Writer) error {
	return n.t.Transform(ctx, in, out)
}

func (n named) String() string { return n.name }
