package ffmpeg_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/testutil"
	"github.com/insitu-data/insitu/pipeline"
	"github.com/insitu-data/insitu/sink"
	"github.com/insitu-data/insitu/source"
	"github.com/insitu-data/insitu/transform/ffmpeg"
	"github.com/insitu-data/insitu/transform/ffmpeg/ffmpegtest"
)

var _ insitu.BatchTransform = (*ffmpeg.WAV)(nil)

// samples generates n short FLAC samples of varied shapes in a new
// directory and returns their paths.
func samples(t *testing.T, n int) []string {
	t.Helper()
	bin := requireFFmpeg(t)
	paths, err := ffmpegtest.GenerateSet(t.Context(), bin, t.TempDir(), n, func(i int) ffmpegtest.SampleSpec {
		return ffmpegtest.SampleSpec{Seed: i, Duration: time.Duration(300+97*i) * time.Millisecond,
			SampleRate: []int{44100, 48000, 22050}[i%3], Channels: 1 + i%2}
	})
	if err != nil {
		t.Fatal(err)
	}
	return paths
}

func readAll(t *testing.T, rc io.ReadCloser) []byte {
	t.Helper()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Close(); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBatchMatchesOneByOne: one batch call, over inputs read by path and
// by body with args of their own, gives every input the bytes Transform
// gives it alone; no staging file stays.
func TestBatchMatchesOneByOne(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ffmpeg over a dozen files; skipped with -short")
	}
	w, tmp := newWAV(t, 2, 44100)
	paths := append(samples(t, 9), testutil.Testdata(t, "test-audio-flac.flac"),
		testutil.Testdata(t, "test-audio-mp3.mp3"), testutil.Testdata(t, "test-audio-wav.wav"))
	args := []string{"", "-ac 1", "-ar 16000", "", "-c:a pcm_f32le -ar 8000", "", "-ac 1 -ar 22050", "", "", "-sample_fmt u8", "", "-ac 1"}
	ins := make([]*insitu.Input, len(paths))
	alone := make([]*insitu.Input, len(paths))
	for i, p := range paths {
		mk := func() *insitu.Input {
			in := &insitu.Input{Object: insitu.Object{Name: insitu.Name{Bucket: "b", Key: filepath.Base(p)}, Size: -1}, Args: args[i]}
			if i%3 == 1 { // by body: a plain stream
				f, err := os.Open(p)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { f.Close() })
				in.Body = struct{ io.Reader }{f}
			} else {
				in.Path = p
			}
			return in
		}
		ins[i], alone[i] = mk(), mk()
	}
	outs, err := w.TransformBatch(t.Context(), ins)
	if err != nil {
		t.Fatal(err)
	}
	if len(outs) != len(ins) {
		t.Fatalf("%d outputs for %d inputs", len(outs), len(ins))
	}
	for i, rc := range outs {
		got := readAll(t, rc)
		var want bytes.Buffer
		if err := w.Transform(t.Context(), alone[i], &want); err != nil {
			t.Fatalf("%s alone: %v", paths[i], err)
		}
		if !bytes.Equal(got, want.Bytes()) || len(got) < 1000 {
			t.Errorf("%s (args %q): batch output of %d bytes differs from the %d bytes made alone", filepath.Base(paths[i]), args[i], len(got), want.Len())
		}
	}
	emptyDir(t, tmp)
}

// TestBatchCommandMatchesCommand: the batched floor's command writes the
// same files as one command per file.
func TestBatchCommandMatchesCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ffmpeg; skipped with -short")
	}
	w, _ := newWAV(t, 1, 16000)
	paths := samples(t, 6)
	dir := t.TempDir()
	var batchOuts []string
	for i, p := range paths {
		one := filepath.Join(dir, fmt.Sprintf("one-%d.wav", i))
		if out, err := w.Command(t.Context(), p, one).CombinedOutput(); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		batchOuts = append(batchOuts, filepath.Join(dir, fmt.Sprintf("batch-%d.wav", i)))
	}
	if out, err := w.BatchCommand(t.Context(), paths, batchOuts).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for i := range paths {
		a, _ := os.ReadFile(filepath.Join(dir, fmt.Sprintf("one-%d.wav", i)))
		b, _ := os.ReadFile(batchOuts[i])
		if len(a) < 1000 || !bytes.Equal(a, b) {
			t.Errorf("sample %d: batch command wrote %d bytes, one command %d, or they differ", i, len(b), len(a))
		}
	}
}

// TestBatchBadInputFailsTheBatch: a batch holding a file that is not
// audio fails as a whole, with no output and no staging file left.
func TestBatchBadInputFailsTheBatch(t *testing.T) {
	w, tmp := newWAV(t, 2, 44100)
	ins := []*insitu.Input{input(t, "test-audio-flac.flac", true), input(t, "test-text.txt", true), input(t, "test-audio-wav.wav", false)}
	outs, err := w.TransformBatch(t.Context(), ins)
	if !errors.Is(err, insitu.InvalidArgument) || outs != nil {
		t.Fatalf("TransformBatch = %d outputs, %v; want none and invalid_argument", len(outs), err)
	}
	t.Log(err)
	emptyDir(t, tmp)
	ins = []*insitu.Input{input(t, "test-audio-flac.flac", true), {Object: insitu.Object{Name: insitu.Name{Key: "gone"}, Path: filepath.Join(tmp, "gone.flac")}}}
	if _, err := w.TransformBatch(t.Context(), ins); !errors.Is(err, insitu.NotFound) {
		t.Fatalf("missing path: %v, want not_found", err)
	}
	ins = []*insitu.Input{input(t, "test-audio-flac.flac", true), {Object: insitu.Object{Name: insitu.Name{Key: "x"}, Path: "/dev/null"}, Args: "-i /etc/passwd"}}
	if _, err := w.TransformBatch(t.Context(), ins); !errors.Is(err, insitu.InvalidArgument) {
		t.Fatalf("bad args: %v, want invalid_argument", err)
	}
	emptyDir(t, tmp)
}

// TestBatchCanceled: a batch whose context ends while ffmpeg waits for
// an input returns ctx's error at once, with ffmpeg reaped and no
// staging file left.
func TestBatchCanceled(t *testing.T) {
	w, tmp := newWAV(t, 2, 44100)
	flac, err := os.ReadFile(testutil.Testdata(t, "test-audio-flac.flac"))
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	defer pw.Close()
	ctx, cancel := context.WithCancel(t.Context())
	ins := []*insitu.Input{input(t, "test-audio-wav.wav", true), {Object: insitu.Object{Name: insitu.Name{Key: "endless.flac"}}, Body: pr}}
	done := make(chan error, 1)
	go func() {
		_, err := w.TransformBatch(ctx, ins)
		pr.Close() // as the caller closes the bodies
		done <- err
	}()
	if _, err := pw.Write(flac[:4096]); err != nil { // ffmpeg is reading
		t.Fatal(err)
	}
	cancel()
	select {
	case err := <-done:
		if err != context.Canceled {
			t.Fatalf("error = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("TransformBatch did not return within 10s of the cancel")
	}
	emptyDir(t, tmp)
	if pids, ok := children(t); ok && len(pids) > 0 {
		t.Errorf("child processes left: %v", pids)
	}
}

// TestBatchedRunFailsOnlyTheCorruptFile: a run of 20 files, batched, one
// of them corrupt: exactly that file fails, named, with invalid_argument,
// and every other output is byte for byte what one ffmpeg command per
// file writes.
func TestBatchedRunFailsOnlyTheCorruptFile(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ffmpeg over 20 files; skipped with -short")
	}
	w, tmp := newWAV(t, 1, 16000)
	paths := samples(t, 20)
	in := filepath.Dir(paths[0])
	// Sample 7 is cut short in the middle of a frame: with -xerror
	// ffmpeg fails on it.
	b, err := os.ReadFile(paths[7])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(paths[7], b[:len(b)*2/3], 0o644); err != nil {
		t.Fatal(err)
	}
	floor := t.TempDir()
	for _, p := range paths {
		out := filepath.Join(floor, filepath.Base(p))
		w.Command(t.Context(), p, out).Run() // the corrupt one fails here too
	}
	src, err := source.Dir(in, nil)
	if err != nil {
		t.Fatal(err)
	}
	outDir := t.TempDir()
	dst, err := sink.Dir(outDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	var failures []pipeline.Failure
	rep, err := pipeline.Run(t.Context(), src, w, dst, &pipeline.Options{Workers: 2, ContinueOnError: true,
		Batch: &pipeline.BatchOptions{Size: 8, Wait: time.Second}, OnFailure: func(f pipeline.Failure) { failures = append(failures, f) }})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Transformed != 19 || rep.Failed != 1 || len(failures) != 1 {
		t.Fatalf("report %+v, want 19 transformed and 1 failed", rep)
	}
	if f := failures[0]; f.Name.Key != filepath.Base(paths[7]) || f.Code != insitu.InvalidArgument {
		t.Errorf("failure %+v, want %s with invalid_argument", f, filepath.Base(paths[7]))
	}
	var names []string
	for i, p := range paths {
		got, err := os.ReadFile(filepath.Join(outDir, filepath.Base(p)))
		if i == 7 {
			if err == nil {
				t.Errorf("the corrupt file has an output")
			}
			continue
		}
		want, _ := os.ReadFile(filepath.Join(floor, filepath.Base(p)))
		if err != nil || len(want) < 1000 || !bytes.Equal(got, want) {
			t.Errorf("%s: output of %d bytes differs from the floor's %d (%v)", filepath.Base(p), len(got), len(want), err)
		}
		names = append(names, filepath.Base(p))
	}
	if len(names) != 19 || !slices.IsSorted(names) {
		t.Errorf("checked %d outputs", len(names))
	}
	emptyDir(t, tmp)
}

// twoStreams writes a Matroska file with two audio streams, a mono 440 Hz
// tone first and a stereo 880 Hz tone second marked as the default, and
// returns its path.
func twoStreams(t *testing.T) string {
	t.Helper()
	bin := requireFFmpeg(t)
	p := filepath.Join(t.TempDir(), "two-streams.mka")
	cmd := exec.CommandContext(t.Context(), bin, "-nostdin", "-hide_banner", "-loglevel", "error",
		"-f", "lavfi", "-i", "sine=frequency=440:duration=1:sample_rate=44100",
		"-f", "lavfi", "-i", "sine=frequency=880:duration=1:sample_rate=44100",
		"-filter_complex", "[1:a]pan=stereo|c0=c0|c1=c0[s]",
		"-map", "0:a", "-map", "[s]", "-c:a", "pcm_s16le", "-disposition:a:0", "0", "-disposition:a:1", "default", p)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return p
}

// TestManyStreamsSameAloneAndBatched: of an input with several audio
// streams, an object alone and in a batch both take the first, so their
// outputs are the same bytes (ffmpeg's own choice, without -map, is the
// stream marked as the default, here the second).
func TestManyStreamsSameAloneAndBatched(t *testing.T) {
	w, tmp := newWAV(t, 2, 44100)
	p := twoStreams(t)
	in := func() *insitu.Input {
		return &insitu.Input{Object: insitu.Object{Name: insitu.Name{Key: "two.mka"}, Path: p}}
	}
	var alone bytes.Buffer
	if err := w.Transform(t.Context(), in(), &alone); err != nil {
		t.Fatal(err)
	}
	outs, err := w.TransformBatch(t.Context(), []*insitu.Input{input(t, "test-audio-flac.flac", true), in()})
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, outs[0])
	if got := readAll(t, outs[1]); !bytes.Equal(got, alone.Bytes()) || len(got) < 1000 {
		t.Errorf("batched output of %d bytes differs from the %d bytes made alone", len(got), alone.Len())
	}
	emptyDir(t, tmp)
}
