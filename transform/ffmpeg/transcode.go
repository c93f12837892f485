package ffmpeg

import (
	"context"
	"io"
	"log/slog"
	"os/exec"

	"github.com/insitu-data/insitu"
)

// WAVOptions configure [NewWAV]. A nil *WAVOptions means all defaults.
//
// Channels, SampleRate and Codec are the defaults of the output: an
// object's [insitu.Input.Args] (a job's or a run's args, such as
// "-ac 1 -ar 16000") override them one by one, and what the args do not
// set keeps its default. So with Channels 1 and args "-ar 8000" the output
// is mono at 8,000 Hz.
type WAVOptions struct {
	// Channels is the number of output channels, 1 to 64. Default 2.
	Channels int
	// SampleRate is the output sample rate in Hz, 1 to 768000. Default
	// 44100.
	SampleRate int
	// Codec is the encoding of the output samples: pcm_u8, pcm_s16le,
	// pcm_s24le, pcm_s32le (integer PCM of 8 to 32 bits), pcm_f32le or
	// pcm_f64le (float). Default "pcm_s16le".
	Codec string
	// AllowArgs names the options of [AllowedArgs] (by any of their
	// spellings, such as "-ac") that an object's Input.Args may pass; the
	// others are refused like unknown options. nil allows all of
	// AllowedArgs; an empty, non-nil slice allows none, so that any
	// non-blank Input.Args fails the object. Naming an option that is not
	// in AllowedArgs is an error of NewWAV.
	AllowArgs []string
	// Binary is the ffmpeg executable, a name searched on PATH or a path.
	// Default "ffmpeg".
	Binary string
	// TempDir is where the output is staged before it is streamed out.
	// Default os.TempDir().
	TempDir string
	// Logger receives a debug record per object and a warning when a
	// temporary file cannot be removed. Default: discard.
	Logger *slog.Logger
}

// WAV is an [insitu.Transform] that decodes any audio ffmpeg can read and
// outputs PCM WAV (16-bit by default) with the channels, sample rate and
// encoding of its [WAVOptions], or of the object's Input.Args where they
// say otherwise. It is safe for concurrent use.
//
// Input.Args is an args string of ffmpeg options, such as
// "-ac 1 -ar 16000", checked against an allow-list (see [AllowedArgs] and
// [CheckArgs]) before anything is read or run: it can set the output's
// channels, sample rate and sample format, and nothing else. Args that
// name a file, a URL, a filter, a format, an extra output or any option
// not on the list fail the object with [insitu.InvalidArgument], and
// ffmpeg is not started. The arguments ffmpeg runs with are always written
// by the package ([WAV.Args]); the args string only picks values for them.
//
// It reads the input from in.Path when set (no copy of the bytes), else
// feeds in.Body to ffmpeg's standard input. ffmpeg writes the WAV to a
// temporary file, not to a pipe: a WAV written to a pipe cannot be seeked
// back, so ffmpeg leaves its RIFF and data sizes at 0xFFFFFFFF, and many
// readers reject such files. A seekable file gets the correct sizes without
// holding the object in memory. The header of that file is then checked
// (sizes consistent with the file length, the requested channels and rate),
// so a bad output is never passed on, and the file is streamed to out and
// always removed, on success and on error.
//
// Errors: bad Input.Args are [insitu.InvalidArgument] naming the offending
// word; when ffmpeg exits non-zero (the input is not audio it can
// decode) the error has the code [insitu.InvalidArgument] and the end of
// ffmpeg's standard error; a missing Path is [insitu.NotFound]; when ctx
// ends, ffmpeg is killed and reaped, and ctx's error is returned as is;
// errors reading in.Body or writing out are returned as they are.
//
// ffmpeg runs with -xerror, so damaged input (a truncated or corrupt
// frame) fails the object instead of quietly giving a shorter output:
// nothing is lost without a word.
type WAV struct {
	t transcoder
}

// NewWAV returns a WAV transcoder. It fails when the options are invalid
// ([insitu.InvalidArgument], also when TempDir is not a directory) or
// ffmpeg is not installed (an error wrapping [ErrNotInstalled] that says
// how to install it).
func NewWAV(opts *WAVOptions) (*WAV, error) {
	var o WAVOptions
	if opts != nil {
		o = *opts
	}
	def := defaultOutput()
	if o.Channels == 0 {
		o.Channels = def.channels
	}
	if o.SampleRate == 0 {
		o.SampleRate = def.sampleRate
	}
	if o.Codec == "" {
		o.Codec = def.codec
	}
	if o.Channels < 0 || o.Channels > 64 {
		return nil, insitu.Errorf(insitu.InvalidArgument, "ffmpeg: %d channels; want 1 to 64", o.Channels)
	}
	if o.SampleRate < 0 || o.SampleRate > 768000 {
		return nil, insitu.Errorf(insitu.InvalidArgument, "ffmpeg: sample rate %d Hz; want 1 to 768000", o.SampleRate)
	}
	if !knownCodec(o.Codec) {
		return nil, insitu.Errorf(insitu.InvalidArgument, "ffmpeg: codec %q; want one of pcm_u8, pcm_s16le, pcm_s24le, pcm_s32le, pcm_f32le, pcm_f64le", o.Codec)
	}
	allow, err := pickArgs(AllowedArgs(), o.AllowArgs)
	if err != nil {
		return nil, err
	}
	out := output{format: "wav", channels: o.Channels, sampleRate: o.SampleRate, codec: o.Codec}
	t, err := newTranscoder(o.Binary, o.TempDir, o.Logger, out, wavArgs(allow))
	if err != nil {
		return nil, err
	}
	return &WAV{t: t}, nil
}

// AllowedArgs returns the options an object's Input.Args may pass to w:
// those of [AllowedArgs] that [WAVOptions].AllowArgs names, all of them
// when it is nil.
func (w *WAV) AllowedArgs() []Arg { return cloneArgs(w.t.args.allow) }

// WithArgs returns a transcoder like w whose defaults are changed by the
// args string args, as an object's Input.Args changes them (see
// [CheckArgs]); the error is the one Transform returns for such an object,
// less the object's name.
// Its [WAV.Args] and [WAV.Command] are then exactly what Transform runs for
// an object whose Input.Args is args; an object's Input.Args override the
// result again. The two share the ffmpeg binary, allow-list and TempDir.
func (w *WAV) WithArgs(args string) (*WAV, error) {
	t, err := w.t.withArgs(args)
	if err != nil {
		return nil, err
	}
	return &WAV{t: t}, nil
}

// Binary returns the path of the ffmpeg executable the transcoder runs.
func (w *WAV) Binary() string { return w.t.bin }

// Args returns ffmpeg's arguments (without the program name) to transcode
// the file inPath to the WAV file outPath, as Transform runs them for an
// object with empty Input.Args; for other args use [WAV.WithArgs] first.
// "pipe:0" as inPath reads standard input. Paths are given to ffmpeg with
// the "file:" protocol, so a name with a colon or a leading dash means the
// file.
func (w *WAV) Args(inPath, outPath string) []string {
	return w.t.argv([]string{inPath}, []string{outPath})
}

// Command returns the ffmpeg command the transform runs for an object with
// empty Input.Args (for other args use [WAV.WithArgs] first), reading the
// file inPath and writing the WAV file outPath, killed when ctx ends. It
// lets a benchmark measure ffmpeg alone on the same arguments.
func (w *WAV) Command(ctx context.Context, inPath, outPath string) *exec.Cmd {
	return exec.CommandContext(ctx, w.t.bin, w.Args(inPath, outPath)...)
}

// Transform transcodes one object to WAV and streams it to out.
func (w *WAV) Transform(ctx context.Context, in *insitu.Input, out io.Writer) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o, err := w.t.outputs([]*insitu.Input{in})
	if err != nil {
		return err
	}
	return w.t.transform(ctx, in, o[0], out)
}
