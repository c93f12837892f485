package sinktest

import (
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/pipeline"
)

// ResumeTransform is the transform that [RunResume] runs: its output is
// the input's args, "|", then the input's bytes. A harness that runs the
// transform elsewhere (registered on a storage node, behind a transform
// server) runs this one.
var ResumeTransform insitu.Transform = insitu.TransformFunc(func(_ context.Context, in *insitu.Input, out io.Writer) error {
	if _, err := io.WriteString(out, in.Args+"|"); err != nil {
		return err
	}
	_, err := io.Copy(out, in.Body)
	return err
})

// ResumeHarness connects [RunResume] to a source, a sink and a way to run
// [ResumeTransform] from one into the other: a pipeline.Run, a
// cluster.Run of a job, with or without direct put.
type ResumeHarness struct {
	// WriteInput stores data as the input object key, creating or
	// replacing it. Required.
	WriteInput func(t *testing.T, key string, data []byte)
	// Run runs ResumeTransform over every input object, each output under
	// its input's key, with opts: RunResume sets Args, TransformID,
	// SkipExisting and SkipUnchanged, the harness sets the rest. It
	// returns the run's report, and fails t if the run fails. Required.
	Run func(t *testing.T, opts pipeline.Options) pipeline.Report
	// ReadOutput returns the bytes of the output key. Required.
	ReadOutput func(t *testing.T, key string) []byte
	// PutWithoutOrigin stores data as the output key with no origin, as
	// a sink that records none (or a crash between an object's bytes and
	// its origin, if a sink could leave one) would leave it. Required.
	PutWithoutOrigin func(t *testing.T, key string, data []byte)
}

// RunResume checks that reruns with SkipUnchanged make again exactly the
// outputs whose origin changed, and skip the others: after one input's
// bytes change, only its output; after the args change, or the
// TransformID, every output; an output stored without an origin is made
// again; a rerun after a rerun skips everything. Each step asserts the
// report's counts and every output's bytes. It also checks that
// SkipExisting keeps an output whose input changed (existence only).
func RunResume(t *testing.T, h ResumeHarness) {
	if h.WriteInput == nil || h.Run == nil || h.ReadOutput == nil || h.PutWithoutOrigin == nil {
		t.Fatal("sinktest: every field of ResumeHarness is required")
	}
	keys := []string{"a.bin", "dir/b.bin", "dir/sub/c.bin", "d.bin"}
	inputs := map[string]string{}
	write := func(key, data string) {
		t.Helper()
		h.WriteInput(t, key, []byte(data))
		inputs[key] = data
	}
	for i, k := range keys {
		write(k, fmt.Sprintf("input %d of %s", i, k))
	}
	type want struct{ transformed, skipped int64 }
	step := func(what string, opts pipeline.Options, w want) {
		t.Helper()
		rep := h.Run(t, opts)
		if rep.Failed != 0 || rep.Transformed != w.transformed || rep.Skipped != w.skipped || rep.Listed != int64(len(keys)) {
			t.Fatalf("%s: listed %d, transformed %d, skipped %d, failed %d (%+v); want listed %d, transformed %d, skipped %d",
				what, rep.Listed, rep.Transformed, rep.Skipped, rep.Failed, rep.Failures, len(keys), w.transformed, w.skipped)
		}
		for _, k := range keys {
			if got, want := string(h.ReadOutput(t, k)), opts.Args+"|"+inputs[k]; got != want {
				t.Fatalf("%s: output %s is %q, want %q", what, k, got, want)
			}
		}
	}
	opts := pipeline.Options{Args: "x", TransformID: "resume/1", SkipUnchanged: true}
	step("first run", opts, want{4, 0})
	step("rerun", opts, want{0, 4})

	write("dir/b.bin", "b's new bytes, longer than before")
	step("rerun after an input changed", opts, want{1, 3})
	step("rerun after that", opts, want{0, 4})

	opts.Args = "y"
	step("rerun with other args", opts, want{4, 0})
	step("rerun after that", opts, want{0, 4})

	opts.TransformID = "resume/2"
	step("rerun with another TransformID", opts, want{4, 0})

	h.PutWithoutOrigin(t, "d.bin", []byte("stale bytes, no origin"))
	step("rerun after an output lost its origin", opts, want{1, 3})

	// SkipExisting looks at existence only: a changed input's output
	// stays as it was, until a rerun with SkipUnchanged.
	write("a.bin", "a changed again")
	stale := h.ReadOutput(t, "a.bin")
	exist := opts
	exist.SkipUnchanged, exist.SkipExisting = false, true
	rep := h.Run(t, exist)
	if rep.Transformed != 0 || rep.Skipped != int64(len(keys)) || rep.Failed != 0 {
		t.Fatalf("rerun with SkipExisting: transformed %d, skipped %d, failed %d; want 0, %d, 0", rep.Transformed, rep.Skipped, rep.Failed, len(keys))
	}
	if got := h.ReadOutput(t, "a.bin"); string(got) != string(stale) {
		t.Fatalf("SkipExisting changed the output a.bin to %q", got)
	}
	step("rerun with SkipUnchanged after SkipExisting", opts, want{1, 3})
}
