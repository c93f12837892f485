package pipeline_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/pipeline"
)

func checkCounts(t *testing.T, rep pipeline.Report) {
	t.Helper()
	if rep.Listed != rep.Transformed+rep.Skipped+rep.Failed {
		t.Fatalf("counts do not add up: %+v", rep)
	}
	if int64(len(rep.Failures))+rep.FailuresDropped != rep.Failed {
		t.Fatalf("Failed = %d but %d failures recorded and %d dropped", rep.Failed, len(rep.Failures), rep.FailuresDropped)
	}
}

var upper = insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
	b, err := io.ReadAll(in.Body)
	if err != nil {
		return err
	}
	_, err = out.Write(bytes.ToUpper(b))
	return err
})

func TestRunTransformsEveryObject(t *testing.T) {
	t.Parallel()
	src := newMemSource(200, 1000)
	dst := newMemSink()
	rep, err := pipeline.Run(t.Context(), src, insitu.Identity, dst, &pipeline.Options{Workers: 8})
	if err != nil {
		t.Fatal(err)
	}
	checkCounts(t, rep)
	if rep.Listed != 200 || rep.Transformed != 200 {
		t.Fatalf("report %+v, want 200 transformed", rep)
	}
	var total int64
	for k, want := range src.objs {
		got, ok := dst.get(insitu.Name{Bucket: "in", Key: k})
		if !ok || !bytes.Equal(got, want) {
			t.Fatalf("%s: output differs from input (present %v)", k, ok)
		}
		total += int64(len(want))
	}
	if rep.BytesIn != total || rep.BytesOut != total {
		t.Errorf("bytes in/out = %d/%d, want %d", rep.BytesIn, rep.BytesOut, total)
	}
}

func TestRunRenameAndArgs(t *testing.T) {
	t.Parallel()
	src := newMemSource(3, 10)
	dst := newMemSink()
	var seen sync.Map
	tr := insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		seen.Store(in.Name.Key, in.Args)
		_, err := io.Copy(out, in.Body)
		return err
	})
	opts := &pipeline.Options{Args: `{"seed": 42}`, Rename: pipeline.ReplaceExt("-0001", ".out")}
	if _, err := pipeline.Run(t.Context(), src, tr, dst, opts); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"obj-0000.out", "obj-0001.out", "obj-0002.out"} {
		if _, ok := dst.get(insitu.Name{Bucket: "in", Key: k}); !ok && k != "obj-0001.out" {
			t.Errorf("missing output %s", k)
		}
	}
	if _, ok := dst.get(insitu.Name{Bucket: "in", Key: "obj.out"}); !ok {
		t.Errorf("obj-0001 was not renamed to obj.out; have %d objects", dst.len())
	}
	for _, k := range []string{"obj-0000", "obj-0001", "obj-0002"} {
		if a, _ := seen.Load(k); a != `{"seed": 42}` {
			t.Errorf("%s: args = %q", k, a)
		}
	}
}

func TestReplaceExt(t *testing.T) {
	t.Parallel()
	r := pipeline.ReplaceExt(".flac", ".wav")
	for in, want := range map[string]string{
		"a/b.flac": "a/b.wav",
		"B.FLAC":   "B.wav",
		"notes":    "notes.wav",
		"x.flac.1": "x.flac.1.wav",
	} {
		got, err := r(insitu.Name{Bucket: "b", Key: in})
		if err != nil || got != (insitu.Name{Bucket: "b", Key: want}) {
			t.Errorf("ReplaceExt(%q) = %v, %v; want %q", in, got, err, want)
		}
	}
	if _, err := pipeline.ReplaceExt(".flac", "/../x")(insitu.Name{Key: "a.flac"}); !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("a rename to an invalid name gave %v, want InvalidArgument", err)
	}
}

func TestRunSkipExisting(t *testing.T) {
	t.Parallel()
	src := newMemSource(10, 100)
	dst := newMemSink()
	for _, k := range []string{"obj-0002", "obj-0005", "obj-0009"} {
		dst.objs[insitu.Name{Bucket: "in", Key: k}] = []byte("old")
	}
	var calls atomic.Int64
	tr := insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		calls.Add(1)
		_, err := io.Copy(out, in.Body)
		return err
	})
	rep, err := pipeline.Run(t.Context(), src, tr, dst, &pipeline.Options{SkipExisting: true})
	if err != nil {
		t.Fatal(err)
	}
	checkCounts(t, rep)
	if rep.Skipped != 3 || rep.Transformed != 7 || calls.Load() != 7 {
		t.Fatalf("skipped %d, transformed %d, transform calls %d; want 3, 7, 7", rep.Skipped, rep.Transformed, calls.Load())
	}
	if b, _ := dst.get(insitu.Name{Bucket: "in", Key: "obj-0005"}); string(b) != "old" {
		t.Errorf("an existing output was overwritten: %q", b)
	}
}

func TestRunDryRunWritesNothing(t *testing.T) {
	t.Parallel()
	src := newMemSource(20, 500)
	dst := newMemSink()
	rep, err := pipeline.Run(t.Context(), src, upper, dst, &pipeline.Options{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	checkCounts(t, rep)
	if dst.puts.Load() != 0 || dst.len() != 0 {
		t.Fatalf("dry run wrote %d objects", dst.len())
	}
	if rep.Transformed != 20 || rep.BytesOut != rep.BytesIn || rep.BytesOut == 0 {
		t.Fatalf("dry run report %+v", rep)
	}
}

func TestRunTransformErrSkip(t *testing.T) {
	t.Parallel()
	src := newMemSource(10, 10)
	dst := newMemSink()
	tr := insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		if strings.HasSuffix(in.Name.Key, "3") {
			out.Write([]byte("partial"))
			return insitu.ErrSkip
		}
		_, err := io.Copy(out, in.Body)
		return err
	})
	rep, err := pipeline.Run(t.Context(), src, tr, dst, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkCounts(t, rep)
	if rep.Skipped != 1 || rep.Transformed != 9 {
		t.Fatalf("report %+v", rep)
	}
	if _, ok := dst.get(insitu.Name{Bucket: "in", Key: "obj-0003"}); ok {
		t.Fatal("a skipped object was written")
	}
}

// failOn fails the objects whose keys end in one of the suffixes, after
// writing part of their output.
func failOn(code insitu.Code, suffixes ...string) insitu.Transform {
	return insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		if _, err := io.Copy(out, in.Body); err != nil {
			return err
		}
		for _, s := range suffixes {
			if strings.HasSuffix(in.Name.Key, s) {
				return insitu.Errorf(code, "cannot transform this one")
			}
		}
		return nil
	})
}

func TestRunStopsAtFirstFailure(t *testing.T) {
	t.Parallel()
	src := newMemSource(50, 10)
	dst := newMemSink()
	rep, err := pipeline.Run(t.Context(), src, failOn(insitu.InvalidArgument, "0007"), dst, &pipeline.Options{Workers: 2})
	checkCounts(t, rep)
	if !errors.Is(err, insitu.InvalidArgument) {
		t.Fatalf("err = %v, want the transform's InvalidArgument", err)
	}
	var e *insitu.Error
	if !errors.As(err, &e) || e.Name != (insitu.Name{Bucket: "in", Key: "obj-0007"}) {
		t.Fatalf("error %v does not name obj-0007", err)
	}
	if !strings.Contains(err.Error(), "cannot transform this one") {
		t.Errorf("error %q lost the transform's message", err)
	}
	if _, ok := dst.get(insitu.Name{Bucket: "in", Key: "obj-0007"}); ok {
		t.Error("the failed object's partial output was stored")
	}
	if rep.Listed == 50 && rep.Transformed == 49 {
		t.Error("the run went on after the first failure")
	}
}

func TestRunContinueOnError(t *testing.T) {
	t.Parallel()
	src := newMemSource(40, 10)
	dst := newMemSink()
	ff := filepath.Join(t.TempDir(), "failures.jsonl")
	file, err := os.Create(ff)
	if err != nil {
		t.Fatal(err)
	}
	flog := pipeline.NewFailureLog(file)
	rep, err := pipeline.Run(t.Context(), src, failOn(insitu.InvalidArgument, "0003", "0017", "0031"), dst,
		&pipeline.Options{ContinueOnError: true, OnFailure: flog.Add, Workers: 4})
	if err != nil {
		t.Fatalf("err = %v, want nil with ContinueOnError", err)
	}
	checkCounts(t, rep)
	if rep.Failed != 3 || rep.Transformed != 37 || dst.len() != 37 {
		t.Fatalf("report %+v, sink has %d", rep, dst.len())
	}
	if err := flog.Err(); err != nil {
		t.Fatal(err)
	}
	if err := file.Close(); err != nil {
		t.Fatal(err)
	}
	// The failures file has the same failures as the report.
	f, err := os.Open(ff)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var fromFile []pipeline.Failure
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var fl pipeline.Failure
		if err := json.Unmarshal(sc.Bytes(), &fl); err != nil {
			t.Fatalf("bad JSON line %q: %v", sc.Text(), err)
		}
		fromFile = append(fromFile, fl)
	}
	sortFailures := func(fs []pipeline.Failure) []pipeline.Failure {
		out := append([]pipeline.Failure(nil), fs...)
		slicesSortFunc(out)
		return out
	}
	if diff := cmp.Diff(sortFailures(rep.Failures), sortFailures(fromFile)); diff != "" {
		t.Fatalf("failures file differs from the report (-report +file):\n%s", diff)
	}
	want := []string{"obj-0003", "obj-0017", "obj-0031"}
	for i, fl := range sortFailures(rep.Failures) {
		if fl.Name.Key != want[i] || fl.Code != insitu.InvalidArgument || fl.Message != "cannot transform this one" {
			t.Errorf("failure %d = %+v", i, fl)
		}
	}
}

func TestRunRetriesUnavailableOnly(t *testing.T) {
	t.Parallel()
	src := newMemSource(4, 10)
	// obj-0000 is unavailable twice, then fine; obj-0001 is always
	// unavailable; obj-0002 is missing, which must not be retried.
	src.openErr = func(key string, try int64) error {
		switch {
		case key == "obj-0000" && try <= 2, key == "obj-0001":
			return insitu.Errorf(insitu.Unavailable, "connection reset")
		case key == "obj-0002":
			return insitu.Errorf(insitu.NotFound, "gone")
		}
		return nil
	}
	dst := newMemSink()
	rep, err := pipeline.Run(t.Context(), src, insitu.Identity, dst,
		&pipeline.Options{ContinueOnError: true, Retries: 3, Backoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	checkCounts(t, rep)
	if rep.Transformed != 2 || rep.Failed != 2 {
		t.Fatalf("report %+v", rep)
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	if got := src.tries; got["obj-0000"] != 3 || got["obj-0001"] != 4 || got["obj-0002"] != 1 || got["obj-0003"] != 1 {
		t.Fatalf("tries = %v, want obj-0000:3 obj-0001:4 obj-0002:1 obj-0003:1", got)
	}
}

func TestRunPanicFailsOneObject(t *testing.T) {
	t.Parallel()
	src := newMemSource(10, 10)
	dst := newMemSink()
	tr := insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		if in.Name.Key == "obj-0004" {
			var s []int
			_ = s[len(in.Name.Key)] // out of range: a real runtime panic
		}
		_, err := io.Copy(out, in.Body)
		return err
	})
	rep, err := pipeline.Run(t.Context(), src, tr, dst, &pipeline.Options{ContinueOnError: true})
	if err != nil {
		t.Fatal(err)
	}
	checkCounts(t, rep)
	if rep.Failed != 1 || rep.Transformed != 9 {
		t.Fatalf("report %+v", rep)
	}
	f := rep.Failures[0]
	if f.Code != insitu.Internal || f.Name.Key != "obj-0004" || !strings.Contains(f.Message, "index out of range") ||
		!strings.Contains(f.Message, "run_test.go") {
		t.Fatalf("failure %q lacks the panic value or its stack", f)
	}
}

func TestRunTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	defer close(release)
	tr := insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		switch in.Name.Key {
		case "obj-0001": // honours its context
			<-ctx.Done()
			return ctx.Err()
		case "obj-0002": // ignores it and hangs
			<-release
			return nil
		}
		_, err := io.Copy(out, in.Body)
		return err
	})
	src := newMemSource(4, 10)
	dst := newMemSink()
	rep, err := pipeline.Run(t.Context(), src, tr, dst,
		&pipeline.Options{ContinueOnError: true, Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	checkCounts(t, rep)
	if rep.Transformed != 2 || rep.Failed != 2 {
		t.Fatalf("report %+v", rep)
	}
	for _, f := range rep.Failures {
		if f.Code != insitu.DeadlineExceeded || !strings.Contains(f.Message, "timeout of 50ms") {
			t.Errorf("failure %v, want a DeadlineExceeded naming the timeout", f)
		}
	}
}

func TestRunCanceledContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	var n atomic.Int64
	tr := insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		if n.Add(1) == 5 {
			cancel()
		}
		_, err := io.Copy(out, in.Body)
		return err
	})
	// More objects than the listing runs ahead of the workers (a few
	// hundred at most).
	rep, err := pipeline.Run(ctx, newMemSource(2000, 10), tr, newMemSink(), &pipeline.Options{Workers: 1, ContinueOnError: true})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	checkCounts(t, rep)
	if rep.Listed >= 2000 {
		t.Errorf("the listing went on after cancel: %+v", rep)
	}
}

func TestRunListingErrorsCount(t *testing.T) {
	t.Parallel()
	src := newMemSource(3, 10)
	src.listErrs = []error{&insitu.Error{Code: insitu.PermissionDenied, Name: insitu.Name{Bucket: "in", Key: "locked"}, Msg: "cannot read"}}
	rep, err := pipeline.Run(t.Context(), src, insitu.Identity, newMemSink(), &pipeline.Options{ContinueOnError: true})
	if err != nil {
		t.Fatal(err)
	}
	checkCounts(t, rep)
	if rep.Listed != 4 || rep.Failed != 1 || rep.Failures[0].Code != insitu.PermissionDenied || rep.Failures[0].Name.Key != "locked" {
		t.Fatalf("report %+v", rep)
	}
}

func TestRunBodyIsLazy(t *testing.T) {
	t.Parallel()
	src := newMemSource(5, 10)
	pathOnly := insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		_, err := io.WriteString(out, in.Name.Key)
		return err
	})
	rep, err := pipeline.Run(t.Context(), src, pathOnly, newMemSink(), nil)
	if err != nil {
		t.Fatal(err)
	}
	// The body was never opened, yet the inputs count by their size.
	if src.opens.Load() != 0 || rep.BytesIn != 10+11+12+13+14 {
		t.Fatalf("a transform that never read its body caused %d opens, %d bytes in (want 0 opens, 60 bytes)", src.opens.Load(), rep.BytesIn)
	}
}

func TestRunProgressCallback(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var last pipeline.Stats
	calls := 0
	rep, err := pipeline.Run(t.Context(), newMemSource(30, 100), insitu.Identity, newMemSink(), &pipeline.Options{
		ProgressInterval: time.Millisecond,
		Progress: func(s pipeline.Stats) {
			mu.Lock()
			defer mu.Unlock()
			if calls > 0 && last.Final {
				t.Error("a progress call came after the final one")
			}
			calls++
			last = s
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !last.Final || !last.ListingDone || last.Done() != rep.Listed || last.Transformed != 30 || last.BytesOut != rep.BytesOut {
		t.Fatalf("final stats %+v do not match report %+v", last, rep)
	}
	if !strings.HasPrefix(last.Line(), "30/30 objects") {
		t.Errorf("Line() = %q", last.Line())
	}
}

func TestRunBadArguments(t *testing.T) {
	t.Parallel()
	src, dst := newMemSource(1, 1), newMemSink()
	for name, run := range map[string]func() error{
		"nil source":    func() error { _, err := pipeline.Run(t.Context(), nil, insitu.Identity, dst, nil); return err },
		"nil transform": func() error { _, err := pipeline.Run(t.Context(), src, nil, dst, nil); return err },
		"nil sink":      func() error { _, err := pipeline.Run(t.Context(), src, insitu.Identity, nil, nil); return err },
		"negative worker": func() error {
			_, err := pipeline.Run(t.Context(), src, insitu.Identity, dst, &pipeline.Options{Workers: -1})
			return err
		},
		"negative timeout": func() error {
			_, err := pipeline.Run(t.Context(), src, insitu.Identity, dst, &pipeline.Options{Timeout: -1})
			return err
		},
	} {
		if err := run(); !errors.Is(err, insitu.InvalidArgument) {
			t.Errorf("%s: err = %v, want InvalidArgument", name, err)
		}
	}
	if src.opens.Load() != 0 || dst.puts.Load() != 0 {
		t.Error("a run with bad arguments touched the source or sink")
	}
}
