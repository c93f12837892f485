package ffmpeg_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/transform/ffmpeg/ffmpegtest"
)

// decode transcodes the file at path and checks its shape and duration.
func decode(t *testing.T, path string, channels, rate int, dur time.Duration) []byte {
	t.Helper()
	w, _ := newWAV(t, channels, rate)
	var out bytes.Buffer
	in := &insitu.Input{Object: insitu.Object{Name: insitu.Name{Key: filepath.Base(path)}, Path: path}}
	if err := w.Transform(t.Context(), in, &out); err != nil {
		t.Fatalf("decoding %s: %v", path, err)
	}
	checkWAV(t, out.Bytes(), channels, rate, dur)
	return out.Bytes()
}

func TestGenerateFLAC(t *testing.T) {
	if testing.Short() {
		t.Skip("generates and decodes five clips (over a second); skipped with -short")
	}
	bin := requireFFmpeg(t)
	dir := t.TempDir()
	gen := func(name string, spec ffmpegtest.SampleSpec) []byte {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := ffmpegtest.GenerateFLAC(t.Context(), bin, p, spec); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte("fLaC")) {
			t.Fatalf("%s does not start with the FLAC magic", name)
		}
		return b
	}
	a := gen("a.flac", ffmpegtest.SampleSpec{Seed: 1, Duration: 2500 * time.Millisecond})
	a2 := gen("a2.flac", ffmpegtest.SampleSpec{Seed: 1, Duration: 2500 * time.Millisecond})
	b := gen("b.flac", ffmpegtest.SampleSpec{Seed: 2, Duration: 2500 * time.Millisecond})
	gen("mono.flac", ffmpegtest.SampleSpec{Seed: 3, Duration: 1200 * time.Millisecond, SampleRate: 16000, Channels: 1})
	gen("default.flac", ffmpegtest.SampleSpec{Seed: 4})

	if md5.Sum(a) != md5.Sum(a2) {
		t.Error("the same seed gave different files")
	}
	if md5.Sum(a) == md5.Sum(b) {
		t.Error("different seeds gave the same file")
	}

	pcmA := decode(t, filepath.Join(dir, "a.flac"), 2, 44100, 2500*time.Millisecond)
	pcmB := decode(t, filepath.Join(dir, "b.flac"), 2, 44100, 2500*time.Millisecond)
	decode(t, filepath.Join(dir, "mono.flac"), 1, 16000, 1200*time.Millisecond)
	decode(t, filepath.Join(dir, "default.flac"), 2, 44100, 3*time.Second)

	// Not silence, not clipped flat, and the two channels differ.
	for name, pcm := range map[string][]byte{"a": pcmA, "b": pcmB} {
		s := pcm[44:]
		var peak, diff int
		for i := 0; i+3 < len(s); i += 4 {
			l, r := int(int16(uint16(s[i])|uint16(s[i+1])<<8)), int(int16(uint16(s[i+2])|uint16(s[i+3])<<8))
			peak = max(peak, abs(l), abs(r))
			if l != r {
				diff++
			}
		}
		if peak < 3000 || peak > 32000 {
			t.Errorf("%s: peak amplitude %d, want a loud but unclipped signal", name, peak)
		}
		if diff < len(s)/8 {
			t.Errorf("%s: left and right are almost identical", name)
		}
	}

	ents, _ := os.ReadDir(dir)
	if len(ents) != 5 {
		t.Errorf("%d files in the directory, want the 5 samples and no temporary file", len(ents))
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func TestGenerateFLACErrors(t *testing.T) {
	bin := requireFFmpeg(t)
	dir := t.TempDir()
	for _, spec := range []ffmpegtest.SampleSpec{{Duration: -time.Second}, {Channels: 9}, {SampleRate: -1}} {
		if err := ffmpegtest.GenerateFLAC(t.Context(), bin, filepath.Join(dir, "x.flac"), spec); !errors.Is(err, insitu.InvalidArgument) {
			t.Errorf("GenerateFLAC(%+v) = %v, want InvalidArgument", spec, err)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := ffmpegtest.GenerateFLAC(ctx, bin, filepath.Join(dir, "x.flac"), ffmpegtest.SampleSpec{}); err != context.Canceled {
		t.Errorf("canceled: error = %v, want context.Canceled", err)
	}
	if err := ffmpegtest.GenerateFLAC(t.Context(), bin, filepath.Join(dir, "no", "such", "dir.flac"), ffmpegtest.SampleSpec{}); err == nil {
		t.Error("generating into a missing directory succeeded")
	}
	emptyDir(t, dir)
}

func TestGenerateSet(t *testing.T) {
	bin := requireFFmpeg(t)
	dir := filepath.Join(t.TempDir(), "set")
	durs := []time.Duration{500 * time.Millisecond, 1 * time.Second, 1500 * time.Millisecond, 700 * time.Millisecond}
	paths, err := ffmpegtest.GenerateSet(t.Context(), bin, dir, len(durs), func(i int) ffmpegtest.SampleSpec {
		return ffmpegtest.SampleSpec{Seed: 100 + i, Duration: durs[i]}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != len(durs) {
		t.Fatalf("%d paths, want %d", len(paths), len(durs))
	}
	for i, p := range paths {
		if want := filepath.Join(dir, "sample-000"+string(rune('0'+i))+".flac"); p != want {
			t.Errorf("path %d = %s, want %s", i, p, want)
		}
		decode(t, p, 2, 44100, durs[i])
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != len(durs) {
		t.Errorf("%d files in %s, want %d", len(ents), dir, len(durs))
	}

	// One bad spec fails the set with its error.
	_, err = ffmpegtest.GenerateSet(t.Context(), bin, t.TempDir(), 3, func(i int) ffmpegtest.SampleSpec {
		return ffmpegtest.SampleSpec{Seed: i, Channels: 1 + 9*(i%2), Duration: 200 * time.Millisecond}
	})
	if !errors.Is(err, insitu.InvalidArgument) || !strings.Contains(err.Error(), "10 channels") {
		t.Errorf("set with a bad spec: error = %v, want InvalidArgument about 10 channels", err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := ffmpegtest.GenerateSet(ctx, bin, t.TempDir(), 3, func(int) ffmpegtest.SampleSpec { return ffmpegtest.SampleSpec{} }); err != context.Canceled {
		t.Errorf("canceled set: error = %v, want context.Canceled", err)
	}
}
