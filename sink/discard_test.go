package sink_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/sink"
	"github.com/insitu-data/insitu/sink/sinktest"
)

// countingReader counts the bytes read from it; it is not seekable.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func TestDiscard(t *testing.T) {
	s := sink.Discard()
	ctx := context.Background()
	for _, n := range []int{0, 1, 1 << 20, 16<<20 + 1} {
		for _, size := range []int64{int64(n), -1} {
			b := sinktest.Content("d", n)
			r := &countingReader{r: bytes.NewReader(b)}
			name := insitu.Name{Bucket: "b", Key: "k"}
			res, err := s.Put(ctx, name, r, size)
			if err != nil {
				t.Fatal(err)
			}
			want := insitu.PutResult{Name: name, Size: int64(n), Checksum: fmt.Sprintf("%016x", xxhash.Sum64(b))}
			if res != want || r.n != int64(n) {
				t.Errorf("%d bytes, size %d: result %+v after reading %d bytes", n, size, res, r.n)
			}
		}
	}
	if _, err := s.Stat(ctx, insitu.Name{Key: "k"}); !errors.Is(err, insitu.NotFound) {
		t.Errorf("Stat: %v, want NotFound", err)
	}
}

func TestDiscardErrors(t *testing.T) {
	s := sink.Discard()
	ctx := context.Background()
	for _, key := range sinktest.InvalidKeys() {
		if _, err := s.Put(ctx, insitu.Name{Key: key}, strings.NewReader("x"), 1); !errors.Is(err, insitu.InvalidArgument) {
			t.Errorf("Put(%.40q): %v, want InvalidArgument", key, err)
		}
	}
	for _, tc := range []struct {
		data string
		size int64
	}{{"abc", 4}, {"abcd", 3}, {"", 1}, {"a", 0}} {
		if _, err := s.Put(ctx, insitu.Name{Key: "k"}, strings.NewReader(tc.data), tc.size); !errors.Is(err, insitu.InvalidArgument) {
			t.Errorf("Put of %d bytes with size %d: %v, want InvalidArgument", len(tc.data), tc.size, err)
		}
	}
	// An endless input with a known size: Discard stops one byte over.
	r := &countingReader{r: endless{}}
	if _, err := s.Put(ctx, insitu.Name{Key: "k"}, r, 1000); !errors.Is(err, insitu.InvalidArgument) || r.n > 1001 {
		t.Errorf("endless input: %v after %d bytes, want InvalidArgument after at most 1001", err, r.n)
	}
	boom := errors.New("boom")
	if _, err := s.Put(ctx, insitu.Name{Key: "k"}, io.MultiReader(strings.NewReader("ab"), errReader{boom}), -1); !errors.Is(err, boom) {
		t.Errorf("failing input: %v, want it wrapped", err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Put(canceled, insitu.Name{Key: "k"}, endless{}, -1); err != context.Canceled {
		t.Errorf("canceled: %v, want context.Canceled", err)
	}
}

type endless struct{}

func (endless) Read(p []byte) (int, error) { return len(p), nil }

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
