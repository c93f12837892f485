package pipeline_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/pipeline"
)

// Report.Failures keeps the first MaxFailures failures and counts the
// rest; OnFailure gets every one, one call at a time (the race detector
// sees the unguarded slice otherwise).
func TestRunFailuresCapped(t *testing.T) {
	t.Parallel()
	fail := insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		return insitu.Errorf(insitu.InvalidArgument, "bad input")
	})
	for _, tc := range []struct {
		max, kept int
	}{{5, 5}, {-1, 0}, {0, 40}, {100, 40}} {
		var got []pipeline.Failure // no lock: OnFailure calls are serialized
		rep, err := pipeline.Run(t.Context(), newMemSource(40, 10), fail, newMemSink(), &pipeline.Options{
			ContinueOnError: true, Workers: 8, MaxFailures: tc.max,
			OnFailure: func(f pipeline.Failure) { got = append(got, f) },
		})
		if err != nil {
			t.Fatal(err)
		}
		checkCounts(t, rep)
		if rep.Failed != 40 || len(rep.Failures) != tc.kept || rep.FailuresDropped != int64(40-tc.kept) || len(got) != 40 {
			t.Fatalf("MaxFailures %d: failed %d, kept %d, dropped %d, OnFailure calls %d; want 40, %d, %d, 40",
				tc.max, rep.Failed, len(rep.Failures), rep.FailuresDropped, len(got), tc.kept, 40-tc.kept)
		}
		// The report keeps the first ones, in the order OnFailure saw them.
		for i, f := range rep.Failures {
			if f != got[i] {
				t.Fatalf("MaxFailures %d: failure %d is %v, OnFailure's %d was %v", tc.max, i, f, i, got[i])
			}
		}
		more := "... and 20 more failures"
		if tc.kept < 40 {
			more = fmt.Sprintf("... and %d more failures (%d of them not kept in the report)", 40-min(tc.kept, 20), 40-tc.kept)
		}
		if tc.kept == 0 {
			more = "... and 40 more failures (40 of them not kept in the report)"
		}
		if s := rep.String(); !strings.Contains(s, more) {
			t.Errorf("MaxFailures %d: report lacks %q:\n%s", tc.max, more, s)
		}
	}
}

func TestFailureLog(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l := pipeline.NewFailureLog(&buf)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			l.Add(pipeline.Failure{Name: insitu.Name{Bucket: "b", Key: fmt.Sprintf("k%02d", i)}, Code: insitu.NotFound, Message: "gone\nfor good"})
		})
	}
	wg.Wait()
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		var f pipeline.Failure
		if err := json.Unmarshal(sc.Bytes(), &f); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if f.Code != insitu.NotFound || f.Message != "gone\nfor good" {
			t.Fatalf("line %q decodes as %+v", sc.Text(), f)
		}
		keys[f.Name.Key] = true
	}
	if len(keys) != 50 {
		t.Fatalf("%d distinct failures in the log, want 50", len(keys))
	}

	// A write error stops the log and is kept.
	l = pipeline.NewFailureLog(failingWriter{})
	l.Add(pipeline.Failure{Code: insitu.Internal})
	l.Add(pipeline.Failure{Code: insitu.Internal})
	if err := l.Err(); !errors.Is(err, errDiskFull) {
		t.Fatalf("Err() = %v, want the writer's error", err)
	}
}

var errDiskFull = errors.New("disk full")

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errDiskFull }
