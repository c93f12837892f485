package ffmpeg_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/testutil"
	"github.com/insitu-data/insitu/transform/ffmpeg"
	"github.com/insitu-data/insitu/transform/wav"
)

var _ insitu.BatchTransform = (*ffmpeg.Audio)(nil)

// newAudio returns an Audio transcoder staging in a fresh directory, and
// that directory.
func newAudio(t *testing.T, format, args string) (*ffmpeg.Audio, string) {
	t.Helper()
	requireFFmpeg(t)
	tmp := t.TempDir()
	a, err := ffmpeg.NewAudio(&ffmpeg.AudioOptions{Format: format, Args: args, TempDir: tmp})
	if err != nil {
		t.Fatal(err)
	}
	return a, tmp
}

// decodeBack transcodes out, an output of some format, back to WAV with
// the channels and rate ffmpeg decodes it to, and returns the header.
func decodeBack(t *testing.T, out []byte) wav.Header {
	t.Helper()
	back, _ := newAudio(t, "wav", "")
	in := &insitu.Input{Object: insitu.Object{Name: insitu.Name{Key: "back"}, Size: int64(len(out))}, Body: bytes.NewReader(out)}
	var b bytes.Buffer
	if err := back.Transform(t.Context(), in, &b); err != nil {
		t.Fatalf("decoding the output back: %v", err)
	}
	h, err := wav.Parse(bytes.NewReader(b.Bytes()), int64(b.Len()))
	if err != nil {
		t.Fatalf("the output decoded back is not a valid WAV: %v", err)
	}
	return h
}

// The signatures each format's files start with.
var magics = map[string]func([]byte) bool{
	"wav":  func(b []byte) bool { return string(b[:4]) == "RIFF" && string(b[8:12]) == "WAVE" },
	"flac": func(b []byte) bool { return string(b[:4]) == "fLaC" },
	"mp3":  func(b []byte) bool { return string(b[:3]) == "ID3" || b[0] == 0xFF },
	"ogg":  func(b []byte) bool { return string(b[:4]) == "OggS" && string(b[28:35]) == "\x01vorbis" },
	"opus": func(b []byte) bool { return string(b[:4]) == "OggS" && string(b[28:36]) == "OpusHead" },
	"m4a":  func(b []byte) bool { return string(b[4:8]) == "ftyp" && bytes.Contains(b, []byte("mp4a")) },
	"alac": func(b []byte) bool { return string(b[4:8]) == "ftyp" && bytes.Contains(b, []byte("alac")) },
}

// Every format: an input by path and by body gives a file of the format
// that decodes back to the channels, rate and duration asked for (or the
// input's, when the args say nothing), the same bytes both ways.
func TestAudioFormats(t *testing.T) {
	requireFFmpeg(t)
	if got := ffmpeg.AudioFormats(); !slices.Equal(got, []string{"wav", "flac", "mp3", "ogg", "opus", "m4a", "alac"}) {
		t.Fatalf("AudioFormats = %q", got)
	}
	for _, format := range ffmpeg.AudioFormats() {
		for _, tc := range []struct {
			file, args     string
			channels, rate int // decoded back
			dur            time.Duration
		}{
			{"test-audio-flac.flac", "", 2, 44100, time.Second},
			{"test-audio-flac.flac", "-ac 1 -ar 16000", 1, 16000, time.Second},
			{"test-audio-wav.wav", "-ar 48000", 2, 48000, 3 * time.Second},
		} {
			t.Run(format+"/"+tc.file+"/"+tc.args, func(t *testing.T) {
				if testing.Short() && tc.dur > time.Second {
					t.Skip("a longer input; skipped with -short")
				}
				t.Parallel()
				a, tmp := newAudio(t, format, "")
				if a.Format() != format {
					t.Errorf("Format() = %q", a.Format())
				}
				in := input(t, tc.file, true)
				in.Args = tc.args
				var viaPath, viaBody bytes.Buffer
				if err := a.Transform(t.Context(), in, &viaPath); err != nil {
					t.Fatal(err)
				}
				in = input(t, tc.file, false)
				in.Args = tc.args
				if err := a.Transform(t.Context(), in, &viaBody); err != nil {
					t.Fatal(err)
				}
				out := viaPath.Bytes()
				if len(out) < 1000 || !magics[format](out) {
					t.Fatalf("output of %d bytes is not %s: % x", len(out), format, out[:min(len(out), 40)])
				}
				if !bytes.Equal(out, viaBody.Bytes()) {
					t.Errorf("path (%d bytes) and body (%d bytes) outputs differ", len(out), viaBody.Len())
				}
				h := decodeBack(t, out)
				rate := tc.rate
				if format == "opus" {
					rate = 48000 // Opus always decodes at 48 kHz
				}
				if h.Channels != tc.channels || h.SampleRate != rate {
					t.Errorf("decoded back to %d ch, %d Hz; want %d ch, %d Hz", h.Channels, h.SampleRate, tc.channels, rate)
				}
				// Lossy encoders pad the last frame (AAC: 1,024 samples).
				if d := h.Duration() - tc.dur; d < -30*time.Millisecond || d > 80*time.Millisecond {
					t.Errorf("decoded back to %v, want %v", h.Duration(), tc.dur)
				}
				emptyDir(t, tmp)
			})
		}
	}
}

// flacInfo reads the bits per sample, channels and rate of a FLAC file's
// STREAMINFO.
func flacInfo(t *testing.T, b []byte) (bits, channels, rate int) {
	t.Helper()
	if len(b) < 42 || string(b[:4]) != "fLaC" || b[4]&0x7f != 0 {
		t.Fatalf("not a FLAC file with STREAMINFO first")
	}
	si := b[8:]
	rate = int(si[10])<<12 | int(si[11])<<4 | int(si[12])>>4
	channels = int(si[12]>>1&7) + 1
	bits = int(si[12]&1)<<4 | int(si[13]>>4) + 1
	return bits, channels, rate
}

// Input.Args set bitrate, compression level and sample format, on top of
// AudioOptions.Args, each where the format has it.
func TestAudioArgsHonoured(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ffmpeg 20 times; skipped with -short")
	}
	requireFFmpeg(t)
	t.Parallel()
	size := func(a *ffmpeg.Audio, args string) []byte {
		t.Helper()
		in := input(t, "test-audio-wav.wav", true)
		in.Args = args
		var out bytes.Buffer
		if err := a.Transform(t.Context(), in, &out); err != nil {
			t.Fatalf("%s %q: %v", a.Format(), args, err)
		}
		return out.Bytes()
	}
	// Bitrates: 3 s at 64k is about 24 kB, at 192k about 72 kB.
	for _, format := range []string{"mp3", "ogg", "opus", "m4a"} {
		a, tmp := newAudio(t, format, "")
		lo, hi := len(size(a, "-b:a 64k")), len(size(a, "-ab 192000"))
		if lo < 16000 || lo > 32000 || hi < 56000 || hi > 90000 {
			t.Errorf("%s: 3 s at 64k is %d bytes, at 192k %d bytes", format, lo, hi)
		}
		emptyDir(t, tmp)
	}
	// Compression level: the same samples, smaller at 12 than at 0.
	flac, _ := newAudio(t, "flac", "")
	fast, small := size(flac, "-compression_level 0"), size(flac, "-compression_level 12")
	if len(small) >= len(fast) || !bytes.Equal(fast[26:42], small[26:42]) { // STREAMINFO's MD5 of the samples
		t.Errorf("flac: level 0 is %d bytes, level 12 %d, or their samples differ", len(fast), len(small))
	}
	// Sample format, channels, rate: FLAC's STREAMINFO says them.
	for _, tc := range []struct {
		opts, args           string
		bits, channels, rate int
	}{
		{"", "", 16, 2, 44100},
		{"", "-sample_fmt s32", 24, 2, 44100},
		{"-sample_fmt s32 -ac 1", "-ar 22050", 24, 1, 22050},
		{"-sample_fmt s32 -ac 1", "-sample_fmt s16 -ac 2", 16, 2, 44100},
	} {
		a, _ := newAudio(t, "flac", tc.opts)
		bits, ch, rate := flacInfo(t, size(a, tc.args))
		if bits != tc.bits || ch != tc.channels || rate != tc.rate {
			t.Errorf("flac %q then %q: %d-bit, %d ch, %d Hz; want %d-bit, %d ch, %d Hz", tc.opts, tc.args, bits, ch, rate, tc.bits, tc.channels, tc.rate)
		}
	}
	// ALAC's sample format; MP3 in mono from AudioOptions.Args with an
	// object's bitrate.
	alac, _ := newAudio(t, "alac", "")
	if s16, s32 := size(alac, "-sample_fmt s16"), size(alac, "-sample_fmt s32"); len(s32) < len(s16)*5/4 {
		t.Errorf("alac: 24-bit is %d bytes, 16-bit %d", len(s32), len(s16))
	}
	mono, _ := newAudio(t, "mp3", "-ac 1 -ar 22050 -b:a 32k")
	out := size(mono, "-b:a 96k")
	if h := decodeBack(t, out); h.Channels != 1 || h.SampleRate != 22050 || len(out) < 30000 {
		t.Errorf("mp3 mono at 96k: %d bytes, decoded back to %v", len(out), h)
	}
}

// audioHostile are args strings each format refuses, with a part of the
// error.
func audioHostile(format string) []struct{ args, want string } {
	c := []struct{ args, want string }{
		{"-f mp3", `"-f" is not an allowed option`},
		{"-q:a 2", `"-q:a" is not an allowed option`},
		{"-ac 1 out.mp3", `"out.mp3" is not an allowed option (args name no input`},
		{"-ar 8000 -i /etc/passwd", `"-i" is not an allowed option`},
		{"-metadata title=x", `"-metadata" is not an allowed option`},
		{"-ac 0", `"-ac" "0": the value is not accepted`},
		{"-ar 44101", `"-ar" "44101": the value is not accepted`},
	}
	add := func(args, want string) { c = append(c, struct{ args, want string }{args, want}) }
	if format == "wav" {
		add("-c:a libmp3lame", `"-c:a" "libmp3lame": the value is not accepted`)
	} else {
		add("-c:a libmp3lame", `"-c:a" is not an allowed option`)
		add("-acodec copy", `"-acodec" is not an allowed option`)
	}
	switch format {
	case "mp3":
		add("-ac 3", `"-ac" "3": the value is not accepted; want 1 to 2`)
		add("-ar 96000", `"-ar" "96000"`)
		add("-b:a 7k", `"-b:a" "7k": the value is not accepted; want 8k to 320k`)
		add("-b:a 321k", `"-b:a" "321k"`)
		add("-b:a 320001", `"-b:a" "320001"`)
		add("-b:a 128K", `"-b:a" "128K"`)
		add("-b:a 1.5k", `"-b:a" "1.5k"`)
		add("-b:a -128k", `"-b:a" "-128k"`)
		add("-b:a 128kk", `"-b:a" "128kk"`)
		add("-b:a k", `"-b:a" "k"`)
		add("-b:a 1M", `"-b:a" "1M"`)
		add("-b:a 64k -ab 96k", `"-ab" sets the bitrate, which -b:a already set`)
		add("-compression_level 5", `"-compression_level" is not an allowed option`)
		add("-sample_fmt s16", `"-sample_fmt" is not an allowed option`)
	case "opus":
		add("-ar 44100", `"-ar" "44100": the value is not accepted; want one of 8000, 12000, 16000, 24000, 48000`)
		add("-b:a 511k", `"-b:a" "511k"`)
		add("-ac 9", `"-ac" "9"`)
	case "flac":
		add("-b:a 128k", `"-b:a" is not an allowed option`)
		add("-compression_level 13", `"-compression_level" "13": the value is not accepted; want 0 to 12`)
		add("-compression_level -1", `"-compression_level" "-1"`)
		add("-sample_fmt s24", `"-sample_fmt" "s24": the value is not accepted; want one of s16, s32`)
		add("-sample_fmt s32p", `"-sample_fmt" "s32p"`)
	case "alac":
		add("-sample_fmt s16p", `"-sample_fmt" "s16p"`)
		add("-compression_level 2", `"-compression_level" is not an allowed option`)
	case "wav":
		add("-b:a 128k", `"-b:a" is not an allowed option`)
	}
	return c
}

// Every format refuses args outside its allow-list with InvalidArgument
// naming the offending word, before ffmpeg starts or a byte of the body
// is read; the hostile args of WAV are refused by every format.
func TestAudioArgsRefused(t *testing.T) {
	t.Parallel()
	bin, log := spyFFmpeg(t)
	tmp := t.TempDir()
	flac := testutil.Testdata(t, "test-audio-flac.flac")
	for _, format := range ffmpeg.AudioFormats() {
		a, err := ffmpeg.NewAudio(&ffmpeg.AudioOptions{Format: format, Binary: bin, TempDir: tmp})
		if err != nil {
			t.Fatal(err)
		}
		cases := audioHostile(format)
		for _, h := range hostileArgs {
			cases = append(cases, struct{ args, want string }{h.args, ""})
		}
		for _, tc := range cases {
			check := func(what string, err error) {
				t.Helper()
				if !errors.Is(err, insitu.InvalidArgument) {
					t.Errorf("%s %q: %s = %v, want InvalidArgument", format, tc.args, what, err)
					return
				}
				if msg := err.Error(); !strings.Contains(msg, tc.want) || strings.ContainsAny(msg, "\n\r\x00") || len(msg) > 400 {
					t.Errorf("%s %q: %s = %q, want one short line with %q", format, tc.args, what, msg, tc.want)
				}
			}
			check("CheckAudioArgs", ffmpeg.CheckAudioArgs(format, tc.args))
			a2, err := a.WithArgs(tc.args)
			check("WithArgs", err)
			if a2 != nil {
				t.Errorf("%s %q: WithArgs returned a transcoder with its error", format, tc.args)
			}
			in := &insitu.Input{Object: insitu.Object{Name: insitu.Name{Key: "a.flac"}, Path: flac}, Args: tc.args}
			err = a.Transform(t.Context(), in, io.Discard)
			check("Transform", err)
			var ie *insitu.Error
			if !errors.As(err, &ie) || ie.Name != in.Name {
				t.Errorf("%s %q: error %v does not name the object", format, tc.args, err)
			}
			body := &countingReader{r: bytes.NewReader([]byte("fLaC and more"))}
			ins := []*insitu.Input{{Object: insitu.Object{Name: insitu.Name{Key: "ok.flac"}, Path: flac}},
				{Object: insitu.Object{Name: insitu.Name{Key: "b.flac"}}, Args: tc.args, Body: body}}
			outs, err := a.TransformBatch(t.Context(), ins)
			check("TransformBatch", err)
			if outs != nil || body.n != 0 {
				t.Errorf("%s %q: TransformBatch gave %d outputs, read %d bytes", format, tc.args, len(outs), body.n)
			}
		}
	}
	if n := starts(t, log); n != 0 {
		t.Errorf("ffmpeg was started %d times for refused args", n)
	}
	emptyDir(t, tmp)
	if err := ffmpeg.CheckAudioArgs("mp3", "-ac 2 -ar 44100 -b:a 128k"); err != nil {
		t.Error(err)
	}
	if err := ffmpeg.CheckAudioArgs("aiff", ""); !errors.Is(err, insitu.InvalidArgument) || !strings.Contains(err.Error(), "wav, flac, mp3") {
		t.Errorf("CheckAudioArgs of an unknown format = %v", err)
	}
}

// Each option of each format accepts exactly what its Values say: both
// ends of a range, and every listed value, but not one past an end.
func TestAllowedAudioArgsDocumented(t *testing.T) {
	t.Parallel()
	if ffmpeg.AllowedAudioArgs("aiff") != nil {
		t.Error("AllowedAudioArgs of an unknown format is not nil")
	}
	for _, format := range ffmpeg.AudioFormats() {
		args := ffmpeg.AllowedAudioArgs(format)
		if format == "wav" && fmt.Sprint(args) != fmt.Sprint(ffmpeg.AllowedArgs()) {
			t.Errorf("wav: %v, want AllowedArgs", args)
		}
		for _, a := range args {
			if a.Doc == "" || a.Values == "" {
				t.Errorf("%s %s is not documented", format, a.Name)
			}
			var ok, bad []string
			if list, found := strings.CutPrefix(a.Values, "one of "); found {
				ok, bad = strings.Split(list, ", "), []string{"x", "1" + strings.Split(list, ", ")[0]}
			} else {
				r, _, _ := strings.Cut(a.Values, " (")
				lo, hi, found := strings.Cut(r, " to ")
				if !found {
					t.Fatalf("%s %s: Values %q", format, a.Name, a.Values)
				}
				k := ""
				if strings.HasSuffix(lo, "k") {
					lo, hi, k = strings.TrimSuffix(lo, "k"), strings.TrimSuffix(hi, "k"), "000"
				}
				l, _ := strconv.Atoi(lo)
				h, _ := strconv.Atoi(hi)
				ok = []string{lo + k, hi + k}
				bad = []string{strconv.Itoa(h+1) + k}
				if l > 0 {
					bad = append(bad, strconv.Itoa(l-1)+k)
				}
			}
			for _, name := range append([]string{a.Name}, a.Aliases...) {
				for _, v := range ok {
					if err := ffmpeg.CheckAudioArgs(format, name+" "+v); err != nil {
						t.Errorf("%s: %s lists %q, but: %v", format, name, v, err)
					}
				}
				for _, v := range bad {
					if err := ffmpeg.CheckAudioArgs(format, name+" "+v); err == nil {
						t.Errorf("%s: %s %s accepted (%s)", format, name, v, a.Values)
					}
				}
			}
		}
	}
}

func TestNewAudioBadOptions(t *testing.T) {
	requireFFmpeg(t)
	for _, o := range []ffmpeg.AudioOptions{{Format: "aiff"}, {Format: "MP3"}, {Format: "-f"}, {Args: "-i x"},
		{Format: "mp3", Args: "-b:a 1k"}, {Format: "mp3", Args: "-sample_fmt s16"}, {Format: "wav", Args: "-b:a 64k"},
		{Format: "mp3", AllowArgs: []string{"-compression_level"}}, {AllowArgs: []string{"-i"}},
		{TempDir: filepath.Join(t.TempDir(), "missing")}} {
		if _, err := ffmpeg.NewAudio(&o); !errors.Is(err, insitu.InvalidArgument) {
			t.Errorf("NewAudio(%+v) error = %v, want InvalidArgument", o, err)
		} else if o.Args != "" && !strings.Contains(err.Error(), "AudioOptions.Args") {
			t.Errorf("NewAudio(%+v) error %q does not name AudioOptions.Args", o, err)
		}
	}
	_, err := ffmpeg.NewAudio(&ffmpeg.AudioOptions{Binary: "insitu-no-such-ffmpeg"})
	if !errors.Is(err, ffmpeg.ErrNotInstalled) || !errors.Is(err, insitu.NotFound) {
		t.Errorf("NewAudio without ffmpeg = %v, want ErrNotInstalled, not_found", err)
	}
	a, err := ffmpeg.NewAudio(nil)
	if err != nil || a.Format() != "wav" || a.Ext() != ".wav" {
		t.Fatalf("NewAudio(nil) = %v, %v; want wav", a, err)
	}
	for format, ext := range map[string]string{"flac": ".flac", "mp3": ".mp3", "ogg": ".ogg", "opus": ".opus", "m4a": ".m4a", "alac": ".m4a"} {
		if a, err := ffmpeg.NewAudio(&ffmpeg.AudioOptions{Format: format}); err != nil || a.Ext() != ext {
			t.Errorf("%s: Ext = %v, %v; want %s", format, a, err, ext)
		}
	}
	// AllowArgs narrows what objects may pass, not the options' Args.
	a, err = ffmpeg.NewAudio(&ffmpeg.AudioOptions{Format: "mp3", Args: "-b:a 96k", AllowArgs: []string{"-ac"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.WithArgs("-b:a 128k"); !errors.Is(err, insitu.InvalidArgument) ||
		!strings.Contains(err.Error(), "here (this transcoder's AudioOptions.AllowArgs leave it out); allowed: -ac") {
		t.Errorf("WithArgs outside AllowArgs = %v", err)
	}
	if names := a.AllowedArgs(); len(names) != 1 || names[0].Name != "-ac" {
		t.Errorf("AllowedArgs = %v", names)
	}
}

// For every format, a batch (inputs by path and by body, args of their
// own) gives each input the bytes Transform gives it alone, which are
// also what ffmpeg run directly with WithArgs(args).Command writes, and
// BatchCommand writes the same as Command.
func TestAudioBatchMatchesOneByOneAndCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ffmpeg over a batch per format; skipped with -short")
	}
	paths := append(samples(t, 3), testutil.Testdata(t, "test-audio-flac.flac"), testutil.Testdata(t, "test-audio-wav.wav"))
	args := map[string][]string{
		"wav":  {"", "-ac 1", "-c:a pcm_s24le -ar 22050", "", "-sample_fmt u8"},
		"flac": {"", "-compression_level 0", "-sample_fmt s32 -ar 48000", "-ac 1", ""},
		"mp3":  {"", "-b:a 64k", "-ac 1 -ar 22050", "-b:a 320k", ""},
		"ogg":  {"", "-b:a 96k", "-ac 1", "-ar 48000", ""},
		"opus": {"", "-b:a 24k -ac 1", "-ar 16000", "", "-b:a 128k"},
		"m4a":  {"", "-b:a 64k", "-ac 1 -ar 32000", "", "-b:a 256k"},
		"alac": {"", "-sample_fmt s32", "-ac 1", "", "-ar 96000"},
	}
	for _, format := range ffmpeg.AudioFormats() {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			a, tmp := newAudio(t, format, "")
			ins := make([]*insitu.Input, len(paths))
			for i, p := range paths {
				ins[i] = &insitu.Input{Object: insitu.Object{Name: insitu.Name{Key: filepath.Base(p)}, Path: p, Size: -1}, Args: args[format][i]}
				if i%2 == 1 {
					f, err := os.Open(p)
					if err != nil {
						t.Fatal(err)
					}
					defer f.Close()
					ins[i].Path, ins[i].Body = "", struct{ io.Reader }{f}
				}
			}
			outs, err := a.TransformBatch(t.Context(), ins)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			var direct []string
			for i, rc := range outs {
				got := readAll(t, rc)
				in := &insitu.Input{Object: insitu.Object{Name: ins[i].Name, Path: paths[i]}, Args: ins[i].Args}
				var alone bytes.Buffer
				if err := a.Transform(t.Context(), in, &alone); err != nil {
					t.Fatal(err)
				}
				wa, err := a.WithArgs(ins[i].Args)
				if err != nil {
					t.Fatal(err)
				}
				p := filepath.Join(dir, strconv.Itoa(i)+a.Ext())
				if b, err := wa.Command(t.Context(), paths[i], p).CombinedOutput(); err != nil {
					t.Fatalf("%v: %s", err, b)
				}
				cmd, _ := os.ReadFile(p)
				if len(got) < 1000 || !magics[format](got) || !bytes.Equal(got, alone.Bytes()) || !bytes.Equal(got, cmd) {
					t.Errorf("%s (args %q): batch %d bytes, alone %d, command %d; want the same bytes of %s",
						filepath.Base(paths[i]), ins[i].Args, len(got), alone.Len(), len(cmd), format)
				}
				if ins[i].Args == "" {
					direct = append(direct, p)
				}
			}
			// The batched floor's command.
			var in, out []string
			for i, p := range paths {
				if args[format][i] == "" {
					in, out = append(in, p), append(out, filepath.Join(dir, "batch-"+strconv.Itoa(i)+a.Ext()))
				}
			}
			if b, err := a.BatchCommand(t.Context(), in, out).CombinedOutput(); err != nil {
				t.Fatalf("%v: %s", err, b)
			}
			for i := range out {
				x, _ := os.ReadFile(direct[i])
				y, _ := os.ReadFile(out[i])
				if len(x) < 1000 || !bytes.Equal(x, y) {
					t.Errorf("%s: BatchCommand wrote %d bytes, Command %d", in[i], len(y), len(x))
				}
			}
			emptyDir(t, tmp)
		})
	}
}

// A corrupt input fails with InvalidArgument and ffmpeg's words, alone
// or in a batch, in every format, and leaves no staging file; a missing
// Path is NotFound.
func TestAudioBadInput(t *testing.T) {
	requireFFmpeg(t)
	b, err := os.ReadFile(testutil.Testdata(t, "test-audio-flac.flac"))
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(t.TempDir(), "cut.flac")
	if err := os.WriteFile(cut, b[:60000], 0o644); err != nil {
		t.Fatal(err)
	}
	for _, format := range ffmpeg.AudioFormats() {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			a, tmp := newAudio(t, format, "")
			for _, viaPath := range []bool{true, false} {
				in := input(t, "test-text.txt", viaPath)
				var out bytes.Buffer
				err := a.Transform(t.Context(), in, &out)
				var ie *insitu.Error
				if !errors.Is(err, insitu.InvalidArgument) || !errors.As(err, &ie) || ie.Name != in.Name ||
					!strings.Contains(err.Error(), "ffmpeg cannot transcode the input: ") || out.Len() != 0 {
					t.Errorf("text file (path %v): %v, %d bytes; want invalid_argument naming it", viaPath, err, out.Len())
				}
			}
			in := &insitu.Input{Object: insitu.Object{Name: insitu.Name{Key: "cut.flac"}, Path: cut}}
			if err := a.Transform(t.Context(), in, io.Discard); !errors.Is(err, insitu.InvalidArgument) {
				t.Errorf("truncated FLAC: %v, want invalid_argument", err)
			}
			outs, err := a.TransformBatch(t.Context(), []*insitu.Input{input(t, "test-audio-wav.wav", true), in, input(t, "test-audio-flac.flac", false)})
			if !errors.Is(err, insitu.InvalidArgument) || outs != nil || !strings.Contains(err.Error(), "ffmpeg cannot transcode the batch (3 inputs") {
				t.Errorf("batch with a truncated FLAC: %d outputs, %v", len(outs), err)
			}
			gone := &insitu.Input{Object: insitu.Object{Name: insitu.Name{Key: "gone"}, Path: filepath.Join(tmp, "gone.flac")}}
			if err := a.Transform(t.Context(), gone, io.Discard); !errors.Is(err, insitu.NotFound) {
				t.Errorf("missing path: %v, want not_found", err)
			}
			if _, err := a.TransformBatch(t.Context(), []*insitu.Input{input(t, "test-audio-wav.wav", true), gone}); !errors.Is(err, insitu.NotFound) {
				t.Errorf("batch with a missing path: %v, want not_found", err)
			}
			emptyDir(t, tmp)
		})
	}
}

// A canceled object or batch returns ctx's error with ffmpeg reaped and
// no staging file left.
func TestAudioCanceled(t *testing.T) {
	a, tmp := newAudio(t, "opus", "-b:a 32k")
	flac, err := os.ReadFile(testutil.Testdata(t, "test-audio-flac.flac"))
	if err != nil {
		t.Fatal(err)
	}
	for _, batch := range []bool{false, true} {
		pr, pw := io.Pipe()
		ctx, cancel := context.WithCancel(t.Context())
		endless := &insitu.Input{Object: insitu.Object{Name: insitu.Name{Key: "endless.flac"}}, Body: pr}
		done := make(chan error, 1)
		go func() {
			var err error
			if batch {
				_, err = a.TransformBatch(ctx, []*insitu.Input{input(t, "test-audio-wav.wav", true), endless})
			} else {
				err = a.Transform(ctx, endless, io.Discard)
			}
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
				t.Fatalf("batch %v: error = %v, want context.Canceled", batch, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("batch %v: no return within 10s of the cancel", batch)
		}
		pw.Close()
		emptyDir(t, tmp)
		if pids, ok := children(t); ok && len(pids) > 0 {
			t.Errorf("batch %v: child processes left: %v", batch, pids)
		}
	}
}
