package pipeline_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/pipeline"
	"github.com/insitu-data/insitu/sink"
	"github.com/insitu-data/insitu/sink/sinktest"
	"github.com/insitu-data/insitu/source"
)

// dirResume is the resume harness of a run from one directory into
// another.
func dirResume(t *testing.T) sinktest.ResumeHarness {
	in, out := t.TempDir(), t.TempDir()
	src, err := source.Dir(in, nil)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := sink.Dir(out, &sink.DirOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	write := func(t *testing.T, dir, key string, data []byte) {
		p := filepath.Join(dir, filepath.FromSlash(key))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		// A new file, as an editor or a copy would leave it: a file
		// rewritten in place keeps its extended attributes.
		tmp := p + ".new"
		if err := os.WriteFile(tmp, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, p); err != nil {
			t.Fatal(err)
		}
	}
	return sinktest.ResumeHarness{
		WriteInput: func(t *testing.T, key string, data []byte) { write(t, in, key, data) },
		Run: func(t *testing.T, opts pipeline.Options) pipeline.Report {
			opts.Workers = 2
			rep, err := pipeline.Run(t.Context(), src, sinktest.ResumeTransform, dst, &opts)
			if err != nil {
				t.Fatalf("Run: %v\n%s", err, rep)
			}
			return rep
		},
		ReadOutput: func(t *testing.T, key string) []byte {
			b, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(key)))
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
		PutWithoutOrigin: func(t *testing.T, key string, data []byte) { write(t, out, key, data) },
	}
}

// TestSkipUnchangedDir: with source.Dir and sink.Dir, a rerun with
// SkipUnchanged makes again exactly the outputs of changed inputs, and
// every output after the args or the transform ID changed, or whose
// origin is missing.
func TestSkipUnchangedDir(t *testing.T) {
	t.Parallel()
	sinktest.RunResume(t, dirResume(t))
}

// TestSkipUnchangedDirectPut: the origin goes with the destination of a
// direct put, and a rerun reads it back.
func TestSkipUnchangedDirectPut(t *testing.T) {
	t.Parallel()
	src := newMemSource(5, 100)
	dst := &originMemSink{memSink: newMemSink()}
	tr := &originDelivery{dst: dst}
	opts := &pipeline.Options{DirectPut: true, SkipUnchanged: true, TransformID: "deliver/1", Workers: 2}
	run := func() pipeline.Report {
		t.Helper()
		rep, err := pipeline.Run(context.Background(), versioned{src}, tr, directOriginSink{dst}, opts)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	if rep := run(); rep.Transformed != 5 || dst.puts.Load() != 0 || tr.deliveries.Load() != 5 {
		t.Fatalf("first run: %s; %d puts, %d deliveries; want 5 transformed by delivery", rep, dst.puts.Load(), tr.deliveries.Load())
	}
	if rep := run(); rep.Skipped != 5 || rep.Transformed != 0 {
		t.Fatalf("rerun: %s; want 5 skipped", rep)
	}
	src.objs["obj-0003"] = []byte("changed, so its version changes")
	if rep := run(); rep.Skipped != 4 || rep.Transformed != 1 || tr.deliveries.Load() != 6 {
		t.Fatalf("rerun after a change: %s, %d deliveries; want 1 transformed, 4 skipped", rep, tr.deliveries.Load())
	}
	if got := string(dst.get("obj-0003")); got != "CHANGED, SO ITS VERSION CHANGES" {
		t.Errorf("obj-0003's output: %q", got)
	}
}

// TestSkipUnchangedRefused: SkipUnchanged needs a sink that records
// origins, and goes with SkipExisting no more than one flag with itself.
func TestSkipUnchangedRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := newMemSource(3, 10)
	dst := newMemSink() // not an OriginSink
	rep, err := pipeline.Run(ctx, src, upper, dst, &pipeline.Options{SkipUnchanged: true})
	if !errors.Is(err, insitu.InvalidArgument) || rep.Listed != 0 || src.opens.Load() != 0 {
		t.Errorf("SkipUnchanged into a sink that cannot record: %v, %s; want InvalidArgument before anything runs", err, rep)
	}
	job := pipeline.Start(ctx, src, upper, dst, &pipeline.Options{SkipUnchanged: true})
	if _, err := job.Wait(ctx); !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("Start with SkipUnchanged into a sink that cannot record: %v; want InvalidArgument", err)
	}
	_, err = pipeline.Run(ctx, src, upper, &originMemSink{memSink: dst}, &pipeline.Options{SkipUnchanged: true, SkipExisting: true})
	if !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("SkipUnchanged with SkipExisting: %v; want InvalidArgument", err)
	}
	_, err = pipeline.Run(ctx, src, upper, &originMemSink{memSink: dst}, &pipeline.Options{SkipUnchanged: true})
	if !errors.Is(err, insitu.InvalidArgument) || !strings.Contains(err.Error(), "TransformID") {
		t.Errorf("SkipUnchanged without a TransformID: %v; want InvalidArgument naming TransformID", err)
	}
}

// TestSkipUnchangedNoVersion: an input whose source gives no version is
// always made again: nothing tells that it did not change.
func TestSkipUnchangedNoVersion(t *testing.T) {
	t.Parallel()
	src := newMemSource(4, 10) // lists no Version
	dst := &originMemSink{memSink: newMemSink()}
	opts := &pipeline.Options{SkipUnchanged: true, TransformID: "upper/1"}
	for i := range 3 {
		rep, err := pipeline.Run(context.Background(), src, upper, dst, opts)
		if err != nil || rep.Transformed != 4 || rep.Skipped != 0 {
			t.Fatalf("run %d: %s, %v; want all 4 transformed", i, rep, err)
		}
	}
	// The origins are recorded all the same, with no version.
	obj, err := dst.Stat(context.Background(), insitu.Name{Bucket: "in", Key: "obj-0000"})
	if err != nil {
		t.Fatal(err)
	}
	o, err := insitu.ParseOrigin(obj.Origin)
	if err != nil || o.Version != "" || o.Input.Key != "obj-0000" || o.Transform != "upper/1" || o.Args != insitu.ArgsDigest("") {
		t.Errorf("recorded origin %+v, %v", o, err)
	}
}

// originMemSink is a memSink that records origins.
type originMemSink struct {
	*memSink
	omu     sync.Mutex
	origins map[insitu.Name]string
}

func (s *originMemSink) setOrigin(name insitu.Name, origin string) {
	s.omu.Lock()
	defer s.omu.Unlock()
	if s.origins == nil {
		s.origins = map[insitu.Name]string{}
	}
	s.origins[name] = origin
}

func (s *originMemSink) Put(ctx context.Context, name insitu.Name, r io.Reader, size int64) (insitu.PutResult, error) {
	res, err := s.memSink.Put(ctx, name, r, size)
	if err == nil {
		s.setOrigin(name, "")
	}
	return res, err
}

func (s *originMemSink) PutOrigin(ctx context.Context, name insitu.Name, r io.Reader, size int64, origin insitu.Origin) (insitu.PutResult, error) {
	res, err := s.memSink.Put(ctx, name, r, size)
	if err == nil {
		s.setOrigin(name, origin.String())
	}
	return res, err
}

func (s *originMemSink) Stat(ctx context.Context, name insitu.Name) (insitu.Object, error) {
	obj, err := s.memSink.Stat(ctx, name)
	s.omu.Lock()
	obj.Origin = s.origins[name]
	s.omu.Unlock()
	return obj, err
}

func (s *originMemSink) get(key string) []byte {
	b, _ := s.memSink.get(insitu.Name{Bucket: "in", Key: key})
	return b
}

// directOriginSink names a destination for each output of an
// originMemSink.
type directOriginSink struct{ *originMemSink }

func (s directOriginSink) Destination(ctx context.Context, name insitu.Name) (insitu.Destination, error) {
	return insitu.Destination{Name: name, URL: "mem://" + name.String()}, nil
}

// originDelivery uppercases and delivers the output, and the origin the
// destination carries, into an originMemSink itself.
type originDelivery struct {
	dst        *originMemSink
	deliveries atomic.Int64
}

func (d *originDelivery) Transform(ctx context.Context, in *insitu.Input, out io.Writer) error {
	return upper.Transform(ctx, in, out)
}

func (d *originDelivery) TransformTo(ctx context.Context, in *insitu.Input, dst insitu.Destination) (insitu.PutResult, error) {
	d.deliveries.Add(1)
	var buf bytes.Buffer
	if err := upper.Transform(ctx, in, &buf); err != nil {
		return insitu.PutResult{}, err
	}
	d.dst.mu.Lock()
	d.dst.objs[dst.Name] = buf.Bytes()
	d.dst.mu.Unlock()
	d.dst.setOrigin(dst.Name, dst.Origin)
	return insitu.PutResult{Name: dst.Name, Size: int64(buf.Len())}, nil
}

// versioned lists a memSource's objects with a version: the XXH64 of
// their bytes.
type versioned struct{ *memSource }

func (v versioned) Objects(ctx context.Context) iter.Seq2[insitu.Object, error] {
	return func(yield func(insitu.Object, error) bool) {
		for obj, err := range v.memSource.Objects(ctx) {
			if err == nil {
				obj.Version = fmt.Sprintf("%016x", xxhash.Sum64(v.objs[obj.Name.Key]))
			}
			if !yield(obj, err) {
				return
			}
		}
	}
}
