package ffmpeg_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
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

// A job's args are checked against the allow-list without running ffmpeg:
// they may set the output's channels, rate and sample format, never name a
// file, a URL, a filter or another output.
func ExampleCheckArgs() {
	for _, args := range []string{
		"-ac 1 -ar 16000",
		"-ac 1 -i /etc/passwd",
		"-af amovie=/etc/passwd",
		"-ac 1 out.wav",
		"-ac 1; rm -rf /",
	} {
		err := ffmpeg.CheckArgs(args)
		fmt.Printf("%q: %v %v\n", args, errors.Is(err, insitu.InvalidArgument), err)
	}
	// Output:
	// "-ac 1 -ar 16000": false <nil>
	// "-ac 1 -i /etc/passwd": true ffmpeg: args: "-i" is not an allowed option; allowed: -ac, -ar, -sample_fmt, -c:a (invalid_argument)
	// "-af amovie=/etc/passwd": true ffmpeg: args: "-af" is not an allowed option; allowed: -ac, -ar, -sample_fmt, -c:a (invalid_argument)
	// "-ac 1 out.wav": true ffmpeg: args: "out.wav" is not an allowed option (args name no input, output, URL or filter, only options); allowed: -ac, -ar, -sample_fmt, -c:a (invalid_argument)
	// "-ac 1; rm -rf /": true ffmpeg: args: "-ac" "1;": the value is not accepted; want 1 to 8 (invalid_argument)
}

// What an object's Input.Args may pass to a WAV transcoder.
func ExampleAllowedArgs() {
	for _, a := range ffmpeg.AllowedArgs() {
		fmt.Println(a)
	}
	// Output:
	// -ac (output channels): 1 to 8
	// -ar (output sample rate): one of 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000, 176400, 192000
	// -sample_fmt (sample format, the same as -c:a): one of u8, s16, s32, flt, dbl
	// -c:a, -acodec, -codec:a (sample encoding, the same as -sample_fmt): one of pcm_u8, pcm_s16le, pcm_s24le, pcm_s32le, pcm_f32le, pcm_f64le
}

// Transcode with a job's args, and get the exact ffmpeg command Transform
// runs for them. (This example needs ffmpeg, so it is compiled but not run
// by go test.)
func ExampleWAV_WithArgs() {
	ctx := context.Background()
	w, err := ffmpeg.NewWAV(nil) // defaults: stereo, 44,100 Hz, 16-bit
	if err != nil {
		fmt.Println(err)
		return
	}
	const args = "-ac 1 -ar 16000" // say, a cluster.JobSpec's Args
	mono, err := w.WithArgs(args)
	if err != nil {
		fmt.Println(err) // args outside the allow-list: invalid_argument
		return
	}
	fmt.Println(mono.Command(ctx, "in.flac", "out.wav").Args[1:])

	// Transform does the same for each object whose Input.Args are args.
	in := &insitu.Input{Object: insitu.Object{Name: insitu.Name{Key: "in.flac"}, Path: "in.flac"}, Args: args}
	var out bytes.Buffer
	if err := w.Transform(ctx, in, &out); err != nil {
		fmt.Println(err)
	}
}

// Transcode a generated FLAC sample to mono MP3 at 64 kbit/s, a job's
// args asking for 16 kHz, alone and then in a batch with a second file:
// one ffmpeg process for both, each output the bytes it gets alone.
// (This example needs ffmpeg, so it is compiled but not run by go test.)
func ExampleAudio() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "audio")
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "speech.flac")
	if err := ffmpegtest.GenerateFLAC(ctx, "", src, ffmpegtest.SampleSpec{Seed: 7, Duration: 2 * time.Second}); err != nil {
		fmt.Println(err) // says how to install ffmpeg when it is missing
		return
	}

	mp3, err := ffmpeg.NewAudio(&ffmpeg.AudioOptions{Format: "mp3", Args: "-ac 1 -b:a 64k"})
	if err != nil {
		fmt.Println(err)
		return
	}
	in := &insitu.Input{Object: insitu.Object{Name: insitu.Name{Key: "speech.flac"}, Path: src}, Args: "-ar 16000"}
	var out bytes.Buffer
	if err := mp3.Transform(ctx, in, &out); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(out.Len(), "bytes of MP3 for", strings.TrimSuffix(in.Name.Key, ".flac")+mp3.Ext())

	// A batch: one ffmpeg process.
	in2 := &insitu.Input{Object: insitu.Object{Name: insitu.Name{Key: "again.flac"}, Path: src}}
	outs, err := mp3.TransformBatch(ctx, []*insitu.Input{in, in2})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, rc := range outs {
		b, _ := io.ReadAll(rc)
		rc.Close() // removes the staged output
		fmt.Println(len(b), "bytes")
	}
}

// A job's args for an Audio transcoder are checked against the
// allow-list of its format without running ffmpeg.
func ExampleCheckAudioArgs() {
	for _, c := range []struct{ format, args string }{
		{"opus", "-ac 1 -b:a 24k"},
		{"opus", "-ar 44100"},
		{"flac", "-compression_level 8 -sample_fmt s32"},
		{"flac", "-b:a 128k"},
		{"mp3", "-b:a 128k -f wav"},
	} {
		fmt.Printf("%s %q: %v\n", c.format, c.args, ffmpeg.CheckAudioArgs(c.format, c.args))
	}
	// Output:
	// opus "-ac 1 -b:a 24k": <nil>
	// opus "-ar 44100": ffmpeg: args: "-ar" "44100": the value is not accepted; want one of 8000, 12000, 16000, 24000, 48000 (invalid_argument)
	// flac "-compression_level 8 -sample_fmt s32": <nil>
	// flac "-b:a 128k": ffmpeg: args: "-b:a" is not an allowed option; allowed: -ac, -ar, -compression_level, -sample_fmt (invalid_argument)
	// mp3 "-b:a 128k -f wav": ffmpeg: args: "-f" is not an allowed option; allowed: -ac, -ar, -b:a (invalid_argument)
}
