package transport

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/insitu-data/insitu"
)

// stuckAfter yields its bytes, then returns (0, nil) forever.
type stuckAfter struct{ r io.Reader }

func (s *stuckAfter) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err == io.EOF {
		return 0, nil
	}
	return n, err
}

// TestSizedReaderStuckInput: an input that has its announced bytes and then
// neither ends nor yields more fails with io.ErrNoProgress instead of
// spinning forever in the probe for its end.
func TestSizedReaderStuckInput(t *testing.T) {
	s := newSizedReader(&stuckAfter{strings.NewReader("abc")}, insitu.Name{Key: "k"}, 3, "Input.Size")
	_, err := io.ReadAll(s)
	if !errors.Is(err, io.ErrNoProgress) {
		t.Fatalf("ReadAll = %v, want io.ErrNoProgress", err)
	}
	zero := newSizedReader(&stuckAfter{strings.NewReader("")}, insitu.Name{Key: "k"}, 0, "Input.Size")
	if err := zero.check(); !errors.Is(err, io.ErrNoProgress) {
		t.Fatalf("check = %v, want io.ErrNoProgress", err)
	}
}
