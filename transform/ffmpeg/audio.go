package ffmpeg

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os/exec"
	"strings"

	"github.com/insitu-data/insitu"
)

// AudioOptions configure [NewAudio]. A nil *AudioOptions means all
// defaults: WAV, 16-bit, with the channels and sample rate of each input.
type AudioOptions struct {
	// Format is the output format, one of [AudioFormats]:
	//
	//	wav   PCM WAV (.wav), pcm_s16le unless the args say otherwise
	//	flac  FLAC (.flac), lossless
	//	mp3   MP3 (.mp3), libmp3lame
	//	ogg   Vorbis in Ogg (.ogg), libvorbis
	//	opus  Opus in Ogg (.opus), libopus
	//	m4a   AAC in MP4 (.m4a), ffmpeg's aac encoder
	//	alac  Apple Lossless in MP4 (.m4a)
	//
	// Default "wav".
	Format string
	// Args are the defaults of the output, as an args string such as
	// "-ac 1 -ar 16000 -b:a 64k" that may hold any option of
	// [AllowedAudioArgs] for the format (AllowArgs does not narrow it).
	// An object's [insitu.Input.Args] override them one by one, and what
	// neither sets is the encoder's default: the input's channels and
	// sample rate (or the nearest the encoder supports: Opus is always
	// 48,000 Hz, MP3 at most stereo), and the encoder's bitrate and
	// compression level. Default "".
	Args string
	// AllowArgs names the options of [AllowedAudioArgs] for the format
	// (by any of their spellings, such as "-ab") that an object's
	// Input.Args may pass; the others are refused like unknown options.
	// nil allows all of them; an empty, non-nil slice allows none, so
	// that any non-blank Input.Args fails the object. Naming an option
	// that is not in the list is an error of NewAudio.
	AllowArgs []string
	// Binary is the ffmpeg executable, a name searched on PATH or a path.
	// Default "ffmpeg".
	Binary string
	// TempDir is where the output is staged before it is streamed out.
	// Default os.TempDir().
	TempDir string
	// Logger receives a debug record per object or batch and a warning
	// when a temporary file cannot be removed. Default: discard.
	Logger *slog.Logger
}

// Audio is an [insitu.Transform] and an [insitu.BatchTransform] that
// decodes any audio ffmpeg can read (the first audio stream of the input)
// and encodes it in the format of its [AudioOptions]: WAV, FLAC, MP3, Ogg
// Vorbis, Ogg Opus, AAC or ALAC in .m4a. It is safe for concurrent use.
//
// An object's Input.Args is an args string of ffmpeg options, such as
// "-ac 1 -ar 16000 -b:a 64k", checked against the allow-list of the
// format ([AllowedAudioArgs], [CheckAudioArgs]) before anything is read
// or run: it can set the output's channels, sample rate, bitrate (lossy
// formats), compression level (FLAC) and sample format (WAV, FLAC, ALAC),
// each within a range, and nothing else. Args that name a file, a URL, a
// filter, a format, an encoder, an extra output or any option not on the
// list fail the object with [insitu.InvalidArgument], and ffmpeg is not
// started. The arguments ffmpeg runs with are always written by the
// package ([Audio.Args]); the args string only picks values for them. A
// value within its range can still be one the encoder refuses with the
// others (a Vorbis bitrate too high for 8,000 Hz mono): ffmpeg then fails
// the object as for a bad input.
//
// It works as [WAV] does: the input is read from in.Path when set, else
// in.Body is fed to ffmpeg through a pipe; ffmpeg writes the output to a
// temporary file, so that the formats that go back to finish their
// header or index (WAV sizes, MP4's index) get it right; the file's
// header is checked (a WAV's sizes and shape, the other formats' magic
// numbers), streamed to out and always removed. The output is the same
// bytes for the same input and args, whether made by Transform, by
// TransformBatch or by ffmpeg run with [Audio.Args]: no metadata is
// copied and ffmpeg writes bit-exact files (no version strings, Ogg
// serial numbers from the stream index).
//
// Errors, as for [WAV]: bad Input.Args are [insitu.InvalidArgument]
// naming the offending word; when ffmpeg exits non-zero (the input is not
// audio it can decode, or damaged: ffmpeg runs with -xerror) the error has
// the code [insitu.InvalidArgument] and the end of ffmpeg's standard
// error; a missing Path is [insitu.NotFound]; when ctx ends, ffmpeg is
// killed and reaped, and ctx's error is returned as is; errors reading
// in.Body or writing out are returned as they are.
type Audio struct {
	t transcoder
}

// AudioFormats returns the output formats of [Audio], the values of
// [AudioOptions].Format: wav, flac, mp3, ogg, opus, m4a, alac.
func AudioFormats() []string {
	var names []string
	for _, f := range formats() {
		names = append(names, f.name)
	}
	return names
}

// AllowedAudioArgs returns the ffmpeg options an object's Input.Args may
// pass to an [Audio] transcoder writing format (unless
// [AudioOptions].AllowArgs narrows them), in a new slice, or nil for an
// unknown format. For "wav" they are those of [AllowedArgs]; for the
// others:
//
//	-ac N                  output channels: 1 to 8 (mp3: 1 to 2)
//	-ar HZ                 output sample rate: one of those of AllowedArgs
//	                       the format supports (opus: 8000, 12000, 16000,
//	                       24000, 48000; mp3: up to 48000; ogg, m4a: up
//	                       to 96000; flac, alac: all)
//	-b:a R (-ab)           bitrate, in bits per second or with a k for
//	                       kilobits: mp3 8k to 320k, ogg 32k to 500k,
//	                       opus 6k to 510k, m4a 16k to 512k
//	-compression_level N   flac: 0 to 12
//	-sample_fmt F          flac, alac: s16 (16-bit) or s32 (24-bit)
//
// The syntax of an args string is the one of [CheckArgs].
func AllowedAudioArgs(format string) []Arg {
	f, ok := formatOf(format)
	if !ok {
		return nil
	}
	return audioArgs(f)
}

// CheckAudioArgs reports whether args is an args string that an [Audio]
// transcoder writing format, with the default options, accepts, without
// running ffmpeg: a coordinator or a command line can refuse a job's bad
// args before any object is read. The error is what Transform returns for
// an object with these Input.Args (see [CheckArgs] for the syntax and the
// errors); an unknown format is an [insitu.InvalidArgument] error too.
func CheckAudioArgs(format, args string) error {
	f, err := audioFormat(format)
	if err != nil {
		return err
	}
	_, err = parseArgs(args, output{format: f.name, codec: f.codec}, audioAllow(f, audioArgs(f)))
	return err
}

// audioFormat returns the format named name, "" being wav.
func audioFormat(name string) (format, error) {
	if name == "" {
		name = "wav"
	}
	f, ok := formatOf(name)
	if !ok {
		return format{}, insitu.Errorf(insitu.InvalidArgument, "ffmpeg: format %s; want one of %s", quote(name), strings.Join(AudioFormats(), ", "))
	}
	return f, nil
}

// audioAllow is the allow-list of an Audio transcoder writing f that
// allows allow.
func audioAllow(f format, allow []Arg) allowList {
	return allowList{allow: allow, all: audioArgs(f), opts: "AudioOptions"}
}

// NewAudio returns an audio transcoder. It fails when the options are
// invalid ([insitu.InvalidArgument]: an unknown format, bad Args, an
// option of AllowArgs that the format does not have, a TempDir that is
// not a directory) or ffmpeg is not installed (an error wrapping
// [ErrNotInstalled] that says how to install it).
func NewAudio(opts *AudioOptions) (*Audio, error) {
	var o AudioOptions
	if opts != nil {
		o = *opts
	}
	f, err := audioFormat(o.Format)
	if err != nil {
		return nil, err
	}
	all := audioArgs(f)
	out, err := parseArgs(o.Args, output{format: f.name, codec: f.codec}, audioAllow(f, all))
	if err != nil {
		var ie *insitu.Error
		if errors.As(err, &ie) { // say which args: these are not an object's
			err = insitu.Errorf(insitu.InvalidArgument, "ffmpeg: AudioOptions.Args: %s", strings.TrimPrefix(ie.Message(), "ffmpeg: args: "))
		}
		return nil, err
	}
	allow, err := pickArgs(all, o.AllowArgs)
	if err != nil {
		return nil, err
	}
	t, err := newTranscoder(o.Binary, o.TempDir, o.Logger, out, audioAllow(f, allow))
	if err != nil {
		return nil, err
	}
	return &Audio{t: t}, nil
}

// Format returns the output format, such as "flac".
func (a *Audio) Format() string { return a.t.out.format }

// Ext returns the file name extension of the output format, with its
// dot, such as ".flac" (for pipeline.ReplaceExt, say).
func (a *Audio) Ext() string { return a.t.out.ext() }

// AllowedArgs returns the options an object's Input.Args may pass to a:
// those of [AllowedAudioArgs] for its format that [AudioOptions].AllowArgs
// names, all of them when it is nil.
func (a *Audio) AllowedArgs() []Arg { return cloneArgs(a.t.args.allow) }

// WithArgs returns a transcoder like a whose defaults are changed by the
// args string args, as an object's Input.Args changes them; the error is
// the one Transform returns for such an object, less the object's name.
// Its [Audio.Args] and [Audio.Command] are then exactly what Transform
// runs for an object whose Input.Args is args; an object's Input.Args
// override the result again. The two share the ffmpeg binary, allow-list
// and TempDir.
func (a *Audio) WithArgs(args string) (*Audio, error) {
	t, err := a.t.withArgs(args)
	if err != nil {
		return nil, err
	}
	return &Audio{t: t}, nil
}

// Binary returns the path of the ffmpeg executable the transcoder runs.
func (a *Audio) Binary() string { return a.t.bin }

// Args returns ffmpeg's arguments (without the program name) to transcode
// the file inPath to the file outPath, as Transform runs them for an
// object with empty Input.Args; for other args use [Audio.WithArgs]
// first. "pipe:0" as inPath reads standard input. Paths are given to
// ffmpeg with the "file:" protocol, so a name with a colon or a leading
// dash means the file.
func (a *Audio) Args(inPath, outPath string) []string {
	return a.t.argv([]string{inPath}, []string{outPath})
}

// Command returns the ffmpeg command of [Audio.Args], killed when ctx
// ends.
func (a *Audio) Command(ctx context.Context, inPath, outPath string) *exec.Cmd {
	return exec.CommandContext(ctx, a.t.bin, a.Args(inPath, outPath)...)
}

// BatchArgs returns ffmpeg's arguments (without the program name) to
// transcode the files inPaths[i] to the files outPaths[i] in one process,
// as TransformBatch runs them for inputs with empty Input.Args; each
// output is the one [Audio.Args] makes of its input. inPaths and outPaths
// must be as long.
func (a *Audio) BatchArgs(inPaths, outPaths []string) []string {
	return a.t.argv(inPaths, outPaths)
}

// BatchCommand returns the ffmpeg command of [Audio.BatchArgs], killed
// when ctx ends.
func (a *Audio) BatchCommand(ctx context.Context, inPaths, outPaths []string) *exec.Cmd {
	return exec.CommandContext(ctx, a.t.bin, a.BatchArgs(inPaths, outPaths)...)
}

// Transform transcodes one object and streams the output to out.
func (a *Audio) Transform(ctx context.Context, in *insitu.Input, out io.Writer) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o, err := a.t.outputs([]*insitu.Input{in})
	if err != nil {
		return err
	}
	return a.t.transform(ctx, in, o[0], out)
}

// TransformBatch transcodes ins in one ffmpeg process, each output byte
// for byte what Transform makes of its input (each input's Args are its
// own), as [WAV.TransformBatch] does: the outputs are staged files,
// checked, returned as readers that remove them when closed; when ffmpeg
// fails, the error covers the batch and nothing is left behind.
func (a *Audio) TransformBatch(ctx context.Context, ins []*insitu.Input) ([]io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	outs, err := a.t.outputs(ins)
	if err != nil {
		return nil, err
	}
	return a.t.batch(ctx, ins, outs)
}
