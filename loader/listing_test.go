package loader_test

import (
	"bytes"
	"context"
	"errors"
	"iter"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/loader"
)

// listCounter is a source that counts its listings; odd samples are in
// bucket "odd", to have a listing of two buckets.
type listCounter struct {
	genSource
	lists atomic.Int32
}

func (s *listCounter) Objects(ctx context.Context) iter.Seq2[insitu.Object, error] {
	s.lists.Add(1)
	return func(yield func(insitu.Object, error) bool) {
		i := 0
		for obj, err := range s.genSource.Objects(ctx) {
			if i%2 == 1 {
				obj.Name.Bucket = "odd"
			}
			i++
			if !yield(obj, err) {
				return
			}
		}
	}
}

// names returns the names of an epoch, in order.
func names(t *testing.T, l *loader.Loader, e int) []insitu.Name {
	t.Helper()
	var ns []insitu.Name
	for s, err := range l.Samples(context.Background(), e) {
		if err != nil {
			t.Fatal(err)
		}
		ns = append(ns, s.Name)
	}
	return ns
}

// TestListing: a loader given the listing of another (as it is, or
// written and read back) never lists the source and yields the same
// orders; a corrupt or truncated listing, a listing that is not the
// state's, or one given outside ShuffleGlobal, is an InvalidArgument
// error.
func TestListing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := &listCounter{genSource: genSource{n: 300, size: 8}}
	a := newLoader(t, src, &loader.Options{Seed: 5})
	want := [][]insitu.Name{names(t, a, 0), names(t, a, 1)}
	ls, err := a.Listing(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ls.Len() != 300 || ls.ID() != a.State().Listing || src.lists.Load() != 1 {
		t.Fatalf("listing of %d, id %s (state's %s), %d listings", ls.Len(), ls.ID(), a.State().Listing, src.lists.Load())
	}
	var enc bytes.Buffer
	if n, err := ls.WriteTo(&enc); err != nil || n != int64(enc.Len()) {
		t.Fatalf("WriteTo: %d, %v (%d bytes)", n, err, enc.Len())
	}
	read, err := loader.ReadListing(bytes.NewReader(enc.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	for _, given := range []*loader.Listing{ls, read} {
		b := newLoader(t, src, &loader.Options{Seed: 5, Listing: given})
		for e := range 2 {
			if got := names(t, b, e); !slices.Equal(got, want[e]) {
				t.Fatalf("epoch %d: another order with the listing given", e)
			}
		}
		if src.lists.Load() != 1 {
			t.Fatalf("the source was listed %d times", src.lists.Load())
		}
	}
	t.Logf("300 names in %d bytes", enc.Len())

	b := enc.Bytes()
	for name, bad := range map[string][]byte{
		"truncated":     b[:len(b)-30],
		"a key changed": append(append(slices.Clone(b[:len(b)-40]), 'X'), b[len(b)-39:]...),
		"not a listing": []byte("hello"),
		"empty":         nil,
	} {
		if _, err := loader.ReadListing(bytes.NewReader(bad)); !errors.Is(err, insitu.InvalidArgument) {
			t.Errorf("%s: %v", name, err)
		}
	}
	other, _ := newLoader(t, &genSource{n: 10, size: 1}, nil).Listing(ctx)
	st := a.State()
	l := newLoader(t, src, &loader.Options{Seed: 5, Listing: other, Resume: &st})
	if _, err := first(l.Samples(ctx, st.Epoch)); !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("resume with another listing: %v", err)
	}
	if _, err := loader.New(src, &loader.Options{Shuffle: loader.ShuffleBuffer, Listing: ls}); !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("Listing with ShuffleBuffer: %v", err)
	}
}
