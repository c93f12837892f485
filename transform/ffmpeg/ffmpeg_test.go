package ffmpeg_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/testutil"
	"github.com/insitu-data/insitu/transform/ffmpeg"
	"github.com/insitu-data/insitu/transform/ffmpeg/ffmpegtest"
	"github.com/insitu-data/insitu/transform/wav"
)

const installHint = "apt-get install -y ffmpeg (Debian/Ubuntu) or brew install ffmpeg (macOS)"

func requireFFmpeg(t *testing.T) string {
	t.Helper()
	return testutil.RequireTool(t, "ffmpeg", installHint)
}

func TestLookupMissing(t *testing.T) {
	_, err := ffmpeg.Lookup("insitu-no-such-ffmpeg")
	if !errors.Is(err, ffmpeg.ErrNotInstalled) || !errors.Is(err, insitu.NotFound) {
		t.Fatalf("Lookup error = %v, want ErrNotInstalled with code not_found", err)
	}
	for _, want := range []string{"apt-get install -y ffmpeg", "brew install ffmpeg", "insitu-no-such-ffmpeg"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Lookup error %q does not mention %q", err, want)
		}
	}
	if _, err := ffmpeg.NewWAV(&ffmpeg.WAVOptions{Binary: "insitu-no-such-ffmpeg"}); !errors.Is(err, ffmpeg.ErrNotInstalled) {
		t.Fatalf("NewWAV error = %v, want ErrNotInstalled", err)
	}
	err = ffmpegtest.GenerateFLAC(t.Context(), "insitu-no-such-ffmpeg", filepath.Join(t.TempDir(), "x.flac"), ffmpegtest.SampleSpec{})
	if !errors.Is(err, ffmpeg.ErrNotInstalled) {
		t.Fatalf("GenerateFLAC error = %v, want ErrNotInstalled", err)
	}
}

func TestLookupFound(t *testing.T) {
	want := requireFFmpeg(t)
	for _, bin := range []string{"", "ffmpeg", want} {
		got, err := ffmpeg.Lookup(bin)
		if err != nil || got != want {
			t.Errorf("Lookup(%q) = %q, %v; want %q", bin, got, err, want)
		}
	}
}

func TestNewWAVBadOptions(t *testing.T) {
	requireFFmpeg(t)
	for _, o := range []ffmpeg.WAVOptions{{Channels: -1}, {Channels: 65}, {SampleRate: -8000}, {SampleRate: 1 << 30},
		{Codec: "flac"}, {Codec: "pcm_s16be"}, {Codec: "-i"}, {AllowArgs: []string{"-i"}}, {AllowArgs: []string{"-ac", "-af"}},
		{TempDir: filepath.Join(t.TempDir(), "missing")}, {TempDir: testutil.Testdata(t, "test-text.txt")}} {
		if _, err := ffmpeg.NewWAV(&o); !errors.Is(err, insitu.InvalidArgument) {
			t.Errorf("NewWAV(%+v) error = %v, want InvalidArgument", o, err)
		}
	}
}

// newWAV returns a transcoder staging in a fresh directory, and that directory.
func newWAV(t *testing.T, channels, rate int) (*ffmpeg.WAV, string) {
	t.Helper()
	requireFFmpeg(t)
	tmp := t.TempDir()
	w, err := ffmpeg.NewWAV(&ffmpeg.WAVOptions{Channels: channels, SampleRate: rate, TempDir: tmp})
	if err != nil {
		t.Fatal(err)
	}
	return w, tmp
}

// input returns an Input for a test file: with Path only, or with Body only.
func input(t *testing.T, file string, viaPath bool) *insitu.Input {
	t.Helper()
	p := testutil.Testdata(t, file)
	in := &insitu.Input{Object: insitu.Object{Name: insitu.Name{Bucket: "audio", Key: file}, Size: -1}}
	if viaPath {
		in.Path = p
		return in
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	in.Body = struct{ io.Reader }{f} // hide *os.File: a plain stream
	return in
}

// checkWAV parses out and checks it is a complete 16-bit PCM WAV of the
// given shape and duration (±50 ms).
func checkWAV(t *testing.T, out []byte, channels, rate int, dur time.Duration) wav.Header {
	t.Helper()
	return checkWAVOf(t, out, wav.FormatPCM, 16, channels, rate, dur)
}

// checkWAVOf parses out and checks it is a complete WAV of the given
// format, bits per sample, channels, rate and duration (±50 ms).
func checkWAVOf(t *testing.T, out []byte, format, bits, channels, rate int, dur time.Duration) wav.Header {
	t.Helper()
	h, err := wav.Parse(bytes.NewReader(out), int64(len(out)))
	if err != nil {
		t.Fatalf("output is not a valid WAV: %v", err)
	}
	if h.Format != format || h.BitsPerSample != bits || h.Channels != channels || h.SampleRate != rate {
		t.Fatalf("output is %v, want format %d, %d-bit, %d ch, %d Hz", h, format, bits, channels, rate)
	}
	// The sizes in the header match the file's length exactly.
	if riff := binary.LittleEndian.Uint32(out[4:8]); int(riff) != len(out)-8 {
		t.Fatalf("RIFF size %d, file is %d bytes", riff, len(out))
	}
	if h.DataOffset+h.DataSize != int64(len(out)) {
		t.Fatalf("data chunk %d+%d does not end at the file's end (%d)", h.DataOffset, h.DataSize, len(out))
	}
	if d := h.Duration() - dur; d < -50*time.Millisecond || d > 50*time.Millisecond {
		t.Fatalf("duration %v, want %v ± 50ms", h.Duration(), dur)
	}
	return h
}

func emptyDir(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("left behind in %s: %s", dir, e.Name())
	}
}

func TestTranscode(t *testing.T) {
	for _, tc := range []struct {
		file           string
		channels, rate int
		dur            time.Duration
	}{
		{"test-audio-flac.flac", 2, 44100, 1000 * time.Millisecond},
		{"test-audio-flac.flac", 1, 16000, 1000 * time.Millisecond},
		{"test-audio-mp3.mp3", 2, 44100, 10030 * time.Millisecond},
		{"test-audio-mp3.mp3", 1, 16000, 10030 * time.Millisecond},
		{"test-audio-wav.wav", 2, 44100, 3000 * time.Millisecond},
		{"test-audio-wav.wav", 1, 16000, 3000 * time.Millisecond},
	} {
		for _, viaPath := range []bool{true, false} {
			name := tc.file + "/" + map[bool]string{true: "path", false: "body"}[viaPath]
			t.Run(name, func(t *testing.T) {
				if testing.Short() && tc.dur > 3*time.Second {
					t.Skip("a long input; skipped with -short")
				}
				t.Parallel()
				w, tmp := newWAV(t, tc.channels, tc.rate)
				var out bytes.Buffer
				if err := w.Transform(t.Context(), input(t, tc.file, viaPath), &out); err != nil {
					t.Fatal(err)
				}
				checkWAV(t, out.Bytes(), tc.channels, tc.rate, tc.dur)
				emptyDir(t, tmp)
			})
		}
	}
}

// FLAC and WAV inputs decode to the same bytes whether ffmpeg reads the
// file or a pipe, and the same as ffmpeg run directly with Command.
func TestTranscodePathBodyCommandAgree(t *testing.T) {
	w, tmp := newWAV(t, 2, 44100)
	for _, file := range []string{"test-audio-flac.flac", "test-audio-wav.wav"} {
		var viaPath, viaBody bytes.Buffer
		if err := w.Transform(t.Context(), input(t, file, true), &viaPath); err != nil {
			t.Fatal(err)
		}
		if err := w.Transform(t.Context(), input(t, file, false), &viaBody); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "direct.wav")
		cmd := w.Command(t.Context(), testutil.Testdata(t, file), out)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", cmd.Args, err, b)
		}
		direct, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(viaPath.Bytes(), viaBody.Bytes()) || !bytes.Equal(viaPath.Bytes(), direct) {
			t.Errorf("%s: path (%d bytes), body (%d bytes) and direct (%d bytes) outputs differ", file, viaPath.Len(), viaBody.Len(), len(direct))
		}
	}
	emptyDir(t, tmp)
}

// The reason for the staging file: the same arguments writing to a pipe
// give a WAV whose sizes are 0xFFFFFFFF, which wav.Parse refuses.
func TestPipeOutputIsRejected(t *testing.T) {
	w, _ := newWAV(t, 2, 44100)
	args := w.Args(testutil.Testdata(t, "test-audio-flac.flac"), "unused")
	args[len(args)-1] = "pipe:1"
	out, err := exec.CommandContext(t.Context(), w.Binary(), args...).Output()
	if err != nil {
		t.Fatal(err)
	}
	if riff := binary.LittleEndian.Uint32(out[4:8]); riff != 0xFFFFFFFF {
		t.Logf("this ffmpeg wrote a RIFF size of %d to a pipe", riff)
	}
	if _, err := wav.Parse(bytes.NewReader(out), int64(len(out))); !errors.Is(err, insitu.InvalidArgument) {
		t.Fatalf("wav.Parse of ffmpeg's pipe output = %v, want InvalidArgument", err)
	}
}

func TestTranscodeCorruptInput(t *testing.T) {
	w, tmp := newWAV(t, 2, 44100)
	for _, viaPath := range []bool{true, false} {
		in := input(t, "test-text.txt", viaPath)
		var out bytes.Buffer
		err := w.Transform(t.Context(), in, &out)
		if !errors.Is(err, insitu.InvalidArgument) {
			t.Fatalf("viaPath=%v: error = %v, want InvalidArgument", viaPath, err)
		}
		var ie *insitu.Error
		if !errors.As(err, &ie) || ie.Name != in.Name {
			t.Fatalf("viaPath=%v: error %v does not name the object %v", viaPath, err, in.Name)
		}
		// ffmpeg's own words are in the message.
		if !strings.Contains(err.Error(), "ffmpeg cannot transcode the input: ") || len(ie.Msg) < len("ffmpeg cannot transcode the input: ")+10 {
			t.Fatalf("viaPath=%v: error %q lacks ffmpeg's message", viaPath, err)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Fatalf("viaPath=%v: error %q spans lines", viaPath, err)
		}
		t.Logf("viaPath=%v: %v", viaPath, err)
		if out.Len() != 0 {
			t.Fatalf("viaPath=%v: %d bytes written for a failed object", viaPath, out.Len())
		}
	}
	emptyDir(t, tmp)
}

func TestTranscodeMissingPath(t *testing.T) {
	w, tmp := newWAV(t, 2, 44100)
	in := &insitu.Input{Object: insitu.Object{Name: insitu.Name{Key: "gone.flac"}, Path: filepath.Join(t.TempDir(), "gone.flac")}}
	if err := w.Transform(t.Context(), in, io.Discard); !errors.Is(err, insitu.NotFound) {
		t.Fatalf("error = %v, want NotFound", err)
	}
	in = &insitu.Input{Object: insitu.Object{Name: insitu.Name{Key: "nothing.flac"}}}
	if err := w.Transform(t.Context(), in, io.Discard); !errors.Is(err, insitu.InvalidArgument) {
		t.Fatalf("no Path and no Body: error = %v, want InvalidArgument", err)
	}
	emptyDir(t, tmp)
}

// children returns the PIDs of this process's child processes (zombies
// included), or ok=false where /proc does not tell.
func children(t *testing.T) (pids []string, ok bool) {
	t.Helper()
	files, _ := filepath.Glob("/proc/self/task/*/children")
	if len(files) == 0 {
		return nil, false
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, false
		}
		pids = append(pids, strings.Fields(string(b))...)
	}
	return pids, true
}

func TestTranscodeCanceled(t *testing.T) {
	w, tmp := newWAV(t, 2, 44100)
	flac, err := os.ReadFile(testutil.Testdata(t, "test-audio-flac.flac"))
	if err != nil {
		t.Fatal(err)
	}
	// A body that never ends: ffmpeg waits for more input until killed.
	pr, pw := io.Pipe()
	defer pw.Close()
	ctx, cancel := context.WithCancel(t.Context())
	in := &insitu.Input{Object: insitu.Object{Name: insitu.Name{Key: "endless.flac"}}, Body: pr}
	done := make(chan error, 1)
	var out bytes.Buffer
	go func() { done <- w.Transform(ctx, in, &out) }()
	// Once ffmpeg has taken the first part of the input, it is running.
	if _, err := pw.Write(flac[:4096]); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != context.Canceled {
			t.Fatalf("error = %v, want context.Canceled as is", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Transform did not return within 10s of the cancel")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Transform took %v to return after the cancel", d)
	}
	if out.Len() != 0 {
		t.Errorf("%d bytes written after a cancel", out.Len())
	}
	emptyDir(t, tmp)
	if pids, ok := children(t); ok && len(pids) > 0 {
		t.Errorf("child processes left (not reaped): %v", pids)
	}
}

func TestTranscodeCanceledBeforeStart(t *testing.T) {
	w, tmp := newWAV(t, 2, 44100)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := w.Transform(ctx, input(t, "test-audio-flac.flac", true), io.Discard); err != context.Canceled {
		t.Fatalf("error = %v, want context.Canceled", err)
	}
	ctx, cancel2 := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancel2()
	if err := w.Transform(ctx, input(t, "test-audio-flac.flac", false), io.Discard); err != context.DeadlineExceeded {
		t.Fatalf("error = %v, want context.DeadlineExceeded", err)
	}
	emptyDir(t, tmp)
}

// errAfter reads the first n bytes of r, then fails with err.
type errAfter struct {
	r   io.Reader
	n   int
	err error
}

func (e *errAfter) Read(p []byte) (int, error) {
	if e.n <= 0 {
		return 0, e.err
	}
	if len(p) > e.n {
		p = p[:e.n]
	}
	n, err := e.r.Read(p)
	e.n -= n
	return n, err
}

func TestTranscodeBodyError(t *testing.T) {
	w, tmp := newWAV(t, 2, 44100)
	boom := insitu.Errorf(insitu.Unavailable, "connection reset")
	f, err := os.Open(testutil.Testdata(t, "test-audio-flac.flac"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	in := &insitu.Input{Object: insitu.Object{Name: insitu.Name{Key: "a.flac"}}, Body: &errAfter{r: f, n: 30000, err: boom}}
	var out bytes.Buffer
	if err := w.Transform(t.Context(), in, &out); err != boom {
		t.Fatalf("error = %v, want the body's error as is", err)
	}
	if out.Len() != 0 {
		t.Fatalf("%d bytes written from a truncated input", out.Len())
	}
	emptyDir(t, tmp)
}

type failingWriter struct{ err error }

func (f failingWriter) Write([]byte) (int, error) { return 0, f.err }

func TestTranscodeOutputError(t *testing.T) {
	w, tmp := newWAV(t, 2, 44100)
	full := errors.New("disk full")
	if err := w.Transform(t.Context(), input(t, "test-audio-flac.flac", true), failingWriter{full}); err != full {
		t.Fatalf("error = %v, want the writer's error as is", err)
	}
	emptyDir(t, tmp)
}

func TestTranscodeConcurrent(t *testing.T) {
	w, tmp := newWAV(t, 1, 16000)
	var wg sync.WaitGroup
	outs := make([]bytes.Buffer, 6)
	errs := make([]error, len(outs))
	for i := range outs {
		wg.Go(func() {
			errs[i] = w.Transform(t.Context(), input(t, "test-audio-flac.flac", i%2 == 0), &outs[i])
		})
	}
	wg.Wait()
	for i := range outs {
		if errs[i] != nil {
			t.Fatalf("transform %d: %v", i, errs[i])
		}
		if !bytes.Equal(outs[i].Bytes(), outs[0].Bytes()) {
			t.Fatalf("transform %d gave different bytes", i)
		}
	}
	checkWAV(t, outs[0].Bytes(), 1, 16000, time.Second)
	emptyDir(t, tmp)
}

// A FLAC file cut off mid-frame fails: with -xerror ffmpeg does not quietly
// hand back a shorter WAV.
func TestTranscodeTruncatedInput(t *testing.T) {
	w, tmp := newWAV(t, 2, 44100)
	b, err := os.ReadFile(testutil.Testdata(t, "test-audio-flac.flac"))
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(t.TempDir(), "cut.flac")
	if err := os.WriteFile(cut, b[:60000], 0o644); err != nil {
		t.Fatal(err)
	}
	in := &insitu.Input{Object: insitu.Object{Name: insitu.Name{Bucket: "audio", Key: "cut.flac"}, Size: 60000, Path: cut}}
	var out bytes.Buffer
	if err := w.Transform(t.Context(), in, &out); !errors.Is(err, insitu.InvalidArgument) {
		t.Fatalf("truncated FLAC: error = %v, want InvalidArgument", err)
	}
	if out.Len() != 0 {
		t.Fatalf("%d bytes written for a truncated input", out.Len())
	}
	emptyDir(t, tmp)
}
