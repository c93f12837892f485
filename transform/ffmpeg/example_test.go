package ffmpeg_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/transform/ffmpeg"
	"github.com/insitu-data/insitu/transform/ffmpeg/ffmpegtest"
)

// Lookup says how to install ffmpeg when it is missing.
func ExampleLookup() {
	_, err := ffmpeg.Lookup("no-such-ffmpeg")
	fmt.Println(errors.Is(err, ffmpeg.ErrNotInstalled))
	fmt.Println(err)
	// Output:
	// true
	// ffmpeg is not installed: install it with `apt-get install -y ffmpeg` (Debian/Ubuntu) or `brew install ffmpeg` (macOS) (no-such-ffmpeg: executable file not found in $PATH) (not_found)
}

// Transcode a generated FLAC sample to 16 kHz mono WAV. (This example needs
// ffmpeg, so it is compiled but not run by go test.)
func ExampleWAV() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "flac")
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "speech.flac")
	if err := ffmpegtest.GenerateFLAC(ctx, "", src, ffmpegtest.SampleSpec{Seed: 7, Duration: 2 * time.Second}); err != nil {
		fmt.Println(err) // says how to install ffmpeg when it is missing
		return
	}

	w, err := ffmpeg.NewWAV(&ffmpeg.WAVOptions{Channels: 1, SampleRate: 16000})
	if err != nil {
		fmt.Println(err)
		return
	}
	in := &insitu.Input{Object: insitu.Object{Name: insitu.Name{Key: "speech.flac"}, Path: src}}
	var out bytes.Buffer
	if err := w.Transform(ctx, in, &out); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(out.Len(), "bytes of WAV") // 44 + 2 s × 16,000 Hz × 2 bytes = 64044
}
