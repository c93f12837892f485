package pipeline_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"iter"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
	"github.com/insitu-data/insitu"
)

// memSource is an in-memory Source for runner tests that need to inject
// faults precisely; the end-to-end tests use the real directory source.
type memSource struct {
	objs     map[string][]byte
	listErrs []error // yielded after the objects
	opens    atomic.Int64
	// openErr, when set, is consulted before each Open.
	openErr func(key string, attempt int64) error
	mu      sync.Mutex
	tries   map[string]int64
}

func newMemSource(n int, size int) *memSource {
	s := &memSource{objs: map[string][]byte{}, tries: map[string]int64{}}
	for i := range n {
		b := bytes.Repeat([]byte{byte(i)}, size+i%7)
		s.objs[fmt.Sprintf("obj-%04d", i)] = b
	}
	return s
}

func (s *memSource) Objects(ctx context.Context) iter.Seq2[insitu.Object, error] {
	return func(yield func(insitu.Object, error) bool) {
		for _, k := range slices.Sorted(maps.Keys(s.objs)) {
			if !yield(insitu.Object{Name: insitu.Name{Bucket: "in", Key: k}, Size: int64(len(s.objs[k]))}, nil) {
				return
			}
		}
		for _, err := range s.listErrs {
			if !yield(insitu.Object{}, err) {
				return
			}
		}
	}
}

func (s *memSource) Open(ctx context.Context, obj insitu.Object) (io.ReadCloser, error) {
	s.opens.Add(1)
	s.mu.Lock()
	s.tries[obj.Name.Key]++
	try := s.tries[obj.Name.Key]
	s.mu.Unlock()
	if s.openErr != nil {
		if err := s.openErr(obj.Name.Key, try); err != nil {
			return nil, err
		}
	}
	b, ok := s.objs[obj.Name.Key]
	if !ok {
		return nil, insitu.Errorf(insitu.NotFound, "no such object")
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// memSink keeps whole objects, visible only after the reader's EOF.
type memSink struct {
	mu   sync.Mutex
	objs map[insitu.Name][]byte
	puts atomic.Int64
}

func newMemSink() *memSink { return &memSink{objs: map[insitu.Name][]byte{}} }

func (s *memSink) Put(ctx context.Context, name insitu.Name, r io.Reader, size int64) (insitu.PutResult, error) {
	s.puts.Add(1)
	if err := name.Validate(); err != nil {
		return insitu.PutResult{}, err
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return insitu.PutResult{}, err
	}
	if err := ctx.Err(); err != nil {
		return insitu.PutResult{}, err
	}
	s.mu.Lock()
	s.objs[name] = b
	s.mu.Unlock()
	return insitu.PutResult{Name: name, Size: int64(len(b)), Checksum: fmt.Sprintf("%016x", xxhash.Sum64(b))}, nil
}

func (s *memSink) Stat(ctx context.Context, name insitu.Name) (insitu.Object, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.objs[name]
	if !ok {
		return insitu.Object{}, &insitu.Error{Code: insitu.NotFound, Name: name}
	}
	return insitu.Object{Name: name, Size: int64(len(b))}, nil
}

func (s *memSink) get(name insitu.Name) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.objs[name]
	return b, ok
}

func (s *memSink) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.objs)
}
