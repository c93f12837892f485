package source

import (
	"context"
	"errors"
	"io"
	"iter"
	"slices"

	"github.com/insitu-data/insitu"
)

// Stater is implemented by sources that can describe one object without
// listing, such as [DirSource]. [Names] and [Template] use it to fill in
// Size, Path, Owner and Version.
type Stater interface {
	// Stat returns the object of name, or a NotFound error.
	Stat(ctx context.Context, name insitu.Name) (insitu.Object, error)
}

// Names returns a source over an explicit list of names, in the order
// given, opened through src.
//
// When src is a [Stater], each name is stat-ed as it is listed: the object
// gets Size, Path, Owner and Version from src, and a name src does not have is
// yielded as its NotFound error (the listing goes on, as it does after any
// other error about one name). Otherwise each object has only its Name, and
// Size -1. An invalid name is yielded as an InvalidArgument error.
func Names(src insitu.Source, names ...insitu.Name) insitu.Source {
	return &nameSource{src: src, names: slices.Values(slices.Clone(names))}
}

// nameSource lists names from a sequence and opens them through src.
type nameSource struct {
	src   insitu.Source
	names iter.Seq[insitu.Name]
}

// Objects yields one object, or one error, per name.
func (s *nameSource) Objects(ctx context.Context) iter.Seq2[insitu.Object, error] {
	return func(yield func(insitu.Object, error) bool) {
		st, _ := s.src.(Stater)
		for name := range s.names {
			if err := ctx.Err(); err != nil {
				yield(insitu.Object{}, err)
				return
			}
			if err := name.Validate(); err != nil {
				if !yield(insitu.Object{}, err) {
					return
				}
				continue
			}
			if st == nil {
				if !yield(insitu.Object{Name: name, Size: -1}, nil) {
					return
				}
				continue
			}
			obj, err := st.Stat(ctx, name)
			if err != nil {
				if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
					yield(insitu.Object{}, ctx.Err())
					return
				}
				if !yield(insitu.Object{}, insitu.WithName(err, name)) {
					return
				}
				continue
			}
			obj.Name = name
			if !yield(obj, nil) {
				return
			}
		}
	}
}

// Open opens obj through the underlying source.
func (s *nameSource) Open(ctx context.Context, obj insitu.Object) (io.ReadCloser, error) {
	return s.src.Open(ctx, obj)
}
