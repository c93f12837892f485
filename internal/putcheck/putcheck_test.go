package putcheck_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/cespare/xxhash/v2"
	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/putcheck"
)

var (
	name    = insitu.Name{Bucket: "b", Key: "k"}
	errBoom = errors.New("the input broke")
)

// parts gives each of its parts in one Read, then io.EOF, or err when set
// (with the last part when withLast).
type parts struct {
	parts    []string
	err      error
	withLast bool
	read     int64 // bytes given
}

func (p *parts) Read(b []byte) (int, error) {
	if len(p.parts) == 0 {
		if p.err != nil {
			return 0, p.err
		}
		return 0, io.EOF
	}
	n := copy(b, p.parts[0])
	p.parts[0] = p.parts[0][n:]
	if p.parts[0] == "" {
		p.parts = p.parts[1:]
	}
	p.read += int64(n)
	if len(p.parts) == 0 && p.withLast && p.err != nil {
		return n, p.err
	}
	return n, nil
}

// stalling gives its bytes, then (0, nil) for ever.
type stalling struct{ r io.Reader }

func (s *stalling) Read(b []byte) (int, error) {
	n, err := s.r.Read(b)
	if err == io.EOF {
		return 0, nil
	}
	return n, err
}

// readAll reads c to its end in reads of 7 bytes and returns the bytes and
// the error (nil at io.EOF). It checks that no Read returns bytes with an
// error other than io.EOF.
func readAll(t *testing.T, c *putcheck.Reader) ([]byte, error) {
	t.Helper()
	var got []byte
	buf := make([]byte, 7)
	for {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			return got, nil
		}
		if err != nil {
			if n != 0 {
				t.Errorf("Read returned %d bytes with the error %v", n, err)
			}
			return got, err
		}
	}
}

func TestReader(t *testing.T) {
	t.Parallel()
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	nf := &insitu.Error{Code: insitu.NotFound, Msg: "the source lost it"}
	other := &insitu.Error{Code: insitu.Unavailable, Name: insitu.Name{Bucket: "src", Key: "x"}, Msg: "node down"}
	tests := []struct {
		name  string
		r     func() io.Reader
		size  int64
		limit int64
		want  string      // the bytes Read returns
		code  insitu.Code // of the error; Unknown with is == nil: no error
		is    error       // an errors.Is target of the error, when set
		msg   string      // in the error's text, when set
	}{
		{name: "exact", r: func() io.Reader { return strings.NewReader("hello") }, size: 5, want: "hello"},
		{name: "exact, data with EOF", r: func() io.Reader { return iotest.DataErrReader(strings.NewReader("hello")) }, size: 5, want: "hello"},
		{name: "exact, one byte a read", r: func() io.Reader { return iotest.OneByteReader(strings.NewReader("hello")) }, size: 5, want: "hello"},
		{name: "exact 1 MiB", r: func() io.Reader { return bytes.NewReader(big) }, size: int64(len(big)), want: string(big)},
		{name: "unknown size", r: func() io.Reader { return bytes.NewReader(big) }, size: -1, want: string(big)},
		{name: "unknown size, data with EOF", r: func() io.Reader { return iotest.DataErrReader(strings.NewReader("hello")) }, size: -1, want: "hello"},
		{name: "zero length", r: func() io.Reader { return strings.NewReader("") }, size: 0, want: ""},
		{name: "zero length, unknown size", r: func() io.Reader { return strings.NewReader("") }, size: -1, want: ""},
		{name: "zero length, one byte", r: func() io.Reader { return strings.NewReader("x") }, size: 0,
			code: insitu.InvalidArgument, msg: "the input is longer than its size 0"},
		{name: "short", r: func() io.Reader { return strings.NewReader("hell") }, size: 5, want: "hell",
			code: insitu.InvalidArgument, msg: "the input is 4 bytes, shorter than its size 5"},
		{name: "short, data with EOF", r: func() io.Reader { return iotest.DataErrReader(strings.NewReader("hell")) }, size: 5,
			code: insitu.InvalidArgument, msg: "the input is 4 bytes, shorter than its size 5"},
		{name: "empty, size 1", r: func() io.Reader { return strings.NewReader("") }, size: 1,
			code: insitu.InvalidArgument, msg: "the input is 0 bytes, shorter than its size 1"},
		{name: "long, in the same read", r: func() io.Reader { return &parts{parts: []string{"hello!"}} }, size: 5,
			code: insitu.InvalidArgument, msg: "the input is longer than its size 5"},
		{name: "long, in a later read", r: func() io.Reader { return &parts{parts: []string{"hel", "lo", "!"}} }, size: 5, want: "hel",
			code: insitu.InvalidArgument, msg: "the input is longer than its size 5"},
		{name: "long, 1 MiB for 10", r: func() io.Reader { return bytes.NewReader(big) }, size: 10, want: "0123456",
			code: insitu.InvalidArgument, msg: "the input is longer than its size 10"},
		{name: "limit, exact", r: func() io.Reader { return strings.NewReader("0123456789") }, size: -1, limit: 10, want: "0123456789"},
		{name: "limit, known size at the limit", r: func() io.Reader { return strings.NewReader("0123456789") }, size: 10, limit: 10, want: "0123456789"},
		{name: "limit, over", r: func() io.Reader { return strings.NewReader("0123456789a") }, size: -1, limit: 10, want: "0123456",
			code: insitu.TooLarge, msg: "the input is over the limit of 10 bytes"},
		{name: "no limit below 0", r: func() io.Reader { return strings.NewReader("0123456789a") }, size: -1, limit: -1, want: "0123456789a"},
		{name: "reader error", r: func() io.Reader { return &parts{parts: []string{"abc"}, err: errBoom} }, size: -1, want: "abc",
			code: insitu.Unknown, is: errBoom, msg: "b/k: reading the input: the input broke"},
		{name: "reader error with the last bytes", r: func() io.Reader { return &parts{parts: []string{"abc", "de"}, err: errBoom, withLast: true} }, size: -1, want: "abc",
			code: insitu.Unknown, is: errBoom},
		{name: "reader error with the bytes of the size", r: func() io.Reader { return &parts{parts: []string{"hello"}, err: errBoom, withLast: true} }, size: 5,
			code: insitu.Unknown, is: errBoom},
		{name: "reader error at the probe", r: func() io.Reader { return &parts{parts: []string{"hello"}, err: errBoom} }, size: 5,
			code: insitu.Unknown, is: errBoom},
		{name: "reader error short of the size", r: func() io.Reader { return &parts{parts: []string{"hel"}, err: errBoom} }, size: 5, want: "hel",
			code: insitu.Unknown, is: errBoom},
		{name: "reader error with a code", r: func() io.Reader { return &parts{parts: []string{"abc"}, err: nf} }, size: 3,
			code: insitu.NotFound, is: insitu.NotFound, msg: "b/k: the source lost it"},
		{name: "reader error naming another object", r: func() io.Reader { return &parts{parts: []string{"abc"}, err: other} }, size: -1, want: "abc",
			code: insitu.Unavailable, is: other},
		{name: "reader's context error", r: func() io.Reader { return &parts{parts: []string{"abc"}, err: context.DeadlineExceeded} }, size: -1, want: "abc",
			code: insitu.DeadlineExceeded, is: context.DeadlineExceeded},
		{name: "no progress at the probe", r: func() io.Reader { return &stalling{strings.NewReader("abc")} }, size: 3,
			code: insitu.Unknown, is: io.ErrNoProgress},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := tc.r()
			c, err := putcheck.New(t.Context(), name, r, tc.size, tc.limit)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			got, err := readAll(t, c)
			if string(got) != tc.want {
				t.Errorf("read %q, want %q", trim(got), trim([]byte(tc.want)))
			}
			if c.Size() != int64(len(got)) || c.Sum() != xxhash.Sum64(got) {
				t.Errorf("Size, Sum = %d, %016x; want those of the %d bytes read, %016x", c.Size(), c.Sum(), len(got), xxhash.Sum64(got))
			}
			if tc.code == insitu.Unknown && tc.is == nil {
				if err != nil || c.Err() != nil {
					t.Fatalf("error %v, Err() %v; want none", err, c.Err())
				}
				res := c.Result()
				if res.Name != name || res.Size != int64(len(tc.want)) || res.Checksum != c.Checksum() || len(res.Checksum) != 16 {
					t.Errorf("Result() = %+v", res)
				}
				if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
					t.Errorf("Read after the end = %d, %v; want 0, io.EOF", n, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error; want %v", tc.code)
			}
			if c := insitu.CodeOf(err); c != tc.code {
				t.Errorf("error %v has code %v; want %v", err, c, tc.code)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v; want one that is %v", err, tc.is)
			}
			if tc.msg != "" && !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q; want it to say %q", err, tc.msg)
			}
			if ie, ok := errors.AsType[*insitu.Error](err); ok && ie.Name == (insitu.Name{}) {
				t.Errorf("error %v names no object", err)
			}
			if c.Err() != err {
				t.Errorf("Err() = %v; want %v", c.Err(), err)
			}
			if n, again := c.Read(make([]byte, 10)); n != 0 || again != err {
				t.Errorf("Read after the error = %d, %v; want 0, %v", n, again, err)
			}
		})
	}
}

func trim(b []byte) string {
	if len(b) > 20 {
		return string(b[:20]) + "..."
	}
	return string(b)
}

func TestNewRefuses(t *testing.T) {
	t.Parallel()
	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	for _, tc := range []struct {
		name  string
		ctx   context.Context
		r     io.Reader
		size  int64
		limit int64
		is    error
	}{
		{"nil reader", t.Context(), nil, 0, 0, insitu.InvalidArgument},
		{"nil reader, unknown size", t.Context(), nil, -1, 0, insitu.InvalidArgument},
		{"size below -1", t.Context(), strings.NewReader("x"), -2, 0, insitu.InvalidArgument},
		{"size over the limit", t.Context(), strings.NewReader("x"), 11, 10, insitu.TooLarge},
		{"context ended", canceled, strings.NewReader("x"), 1, 0, context.Canceled},
	} {
		c, err := putcheck.New(tc.ctx, name, tc.r, tc.size, tc.limit)
		if c != nil || !errors.Is(err, tc.is) {
			t.Errorf("%s: New = %v, %v; want an error that is %v", tc.name, c, err, tc.is)
		}
	}
}

// TestContextEnds checks that a Read after ctx ends returns ctx.Err(),
// unwrapped, and that an input failing because ctx ended gives ctx.Err()
// too, not its own error.
func TestContextEnds(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	c, err := putcheck.New(ctx, name, strings.NewReader("hello world"), -1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := c.Read(make([]byte, 5)); n != 5 || err != nil {
		t.Fatalf("first Read = %d, %v", n, err)
	}
	cancel()
	if n, err := c.Read(make([]byte, 5)); n != 0 || err != context.Canceled {
		t.Errorf("Read after cancel = %d, %v; want 0, context.Canceled unwrapped", n, err)
	}

	ctx, cancel = context.WithCancel(t.Context())
	r := &parts{parts: []string{"abc"}, err: errBoom, withLast: true}
	fail := readerFunc(func(p []byte) (int, error) { cancel(); return r.Read(p) })
	c, err = putcheck.New(ctx, name, fail, 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := readAll(t, c); err != context.Canceled {
		t.Errorf("input failing as ctx ends: %v; want context.Canceled unwrapped", err)
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// TestReadsNoFurtherThanTheProbe checks that r is read for at most one
// byte past a known size.
func TestReadsNoFurtherThanTheProbe(t *testing.T) {
	t.Parallel()
	r := &parts{parts: []string{strings.Repeat("x", 1<<20)}}
	c, err := putcheck.New(t.Context(), name, r, 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, c); !errors.Is(err, insitu.InvalidArgument) {
		t.Fatalf("io.Copy: %v; want InvalidArgument", err)
	}
	if r.read != 11 {
		t.Errorf("read %d bytes of the input; want 11 (the size and the probe's byte)", r.read)
	}
}

// TestIOReader runs testing/iotest's checks of an io.Reader.
func TestIOReader(t *testing.T) {
	t.Parallel()
	content := bytes.Repeat([]byte("insitu"), 1000)
	for _, size := range []int64{int64(len(content)), -1} {
		c, err := putcheck.New(t.Context(), name, bytes.NewReader(content), size, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := iotest.TestReader(c, content); err != nil {
			t.Errorf("size %d: %v", size, err)
		}
	}
}

// TestHex holds Hex to fmt's %016x.
func TestHex(t *testing.T) {
	t.Parallel()
	vals := []uint64{0, 1, 0xf, 0x10, 0xdeadbeef, 1<<63 - 1, 1 << 63, ^uint64(0)}
	for i := range uint64(1000) {
		vals = append(vals, xxhash.Sum64String(fmt.Sprint(i)))
	}
	for _, v := range vals {
		if got, want := putcheck.Hex(v), fmt.Sprintf("%016x", v); got != want {
			t.Fatalf("Hex(%#x) = %q, want %q", v, got, want)
		}
	}
}
