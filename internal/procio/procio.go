// Package procio holds the small readers and writers that the transforms
// running a program share (transform/ffmpeg, transform/exec): a bounded
// tail of its standard error, a mark on the errors of the input body, and
// a reader that stops when its context ends.
package procio

import (
	"bytes"
	"context"
	"io"
	"strings"
)

// Tail keeps the last Max bytes written to it.
type Tail struct {
	Max int
	buf []byte
	cut bool
}

// Write keeps the tail of p; it never fails.
func (t *Tail) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.Max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...) // no ever-growing array
		t.cut = true
	}
	return len(p), nil
}

// String returns what was kept; when the start was cut, from a line
// boundary near it, after "…".
func (t *Tail) String() string {
	b := t.buf
	if t.cut {
		if i := bytes.IndexByte(b, '\n'); i >= 0 && i < 200 {
			b = b[i+1:]
		}
		return "…" + string(b)
	}
	return string(b)
}

// OneLine returns what was kept as one line, its non-blank lines trimmed
// and joined by "; ", or none when nothing was.
func (t *Tail) OneLine(none string) string {
	var lines []string
	for l := range strings.Lines(t.String()) {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		return none
	}
	return strings.Join(lines, "; ")
}

// BodyReader marks the errors of the input body as [BodyError], to tell
// them from errors writing to the program.
type BodyReader struct{ R io.Reader }

// BodyError is an error of reading the input body; Err is that error.
type BodyError struct{ Err error }

func (e BodyError) Error() string { return e.Err.Error() }

// Read reads from the body.
func (b BodyReader) Read(p []byte) (int, error) {
	n, err := b.R.Read(p)
	if err != nil && err != io.EOF {
		err = BodyError{err}
	}
	return n, err
}

// CtxReader stops reading when Ctx ends, with its error.
type CtxReader struct {
	Ctx context.Context
	R   io.Reader
}

// Read reads from R unless Ctx has ended.
func (c CtxReader) Read(p []byte) (int, error) {
	if err := c.Ctx.Err(); err != nil {
		return 0, err
	}
	return c.R.Read(p)
}
