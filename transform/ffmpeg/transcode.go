package ffmpeg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/procio"
	"github.com/insitu-data/insitu/transform/wav"
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

// stderrTail is how much of ffmpeg's standard error an error keeps.
const stderrTail = 2 << 10

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
	bin     string
	out     output // the output for empty Input.Args
	allow   []Arg  // the options Input.Args may pass
	tempDir string
	log     *slog.Logger
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
	if o.TempDir == "" {
		o.TempDir = os.TempDir()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
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
	if fi, err := os.Stat(o.TempDir); err != nil || !fi.IsDir() {
		return nil, insitu.Errorf(insitu.InvalidArgument, "ffmpeg: TempDir %q is not a directory", o.TempDir)
	}
	bin, err := Lookup(o.Binary)
	if err != nil {
		return nil, err
	}
	return &WAV{
		bin:     bin,
		out:     output{channels: o.Channels, sampleRate: o.SampleRate, codec: o.Codec},
		allow:   allow,
		tempDir: o.TempDir,
		log:     o.Logger,
	}, nil
}

// AllowedArgs returns the options an object's Input.Args may pass to w:
// those of [AllowedArgs] that [WAVOptions].AllowArgs names, all of them
// when it is nil.
func (w *WAV) AllowedArgs() []Arg { return cloneArgs(w.allow) }

// WithArgs returns a transcoder like w whose defaults are changed by the
// args string args, as an object's Input.Args changes them (see
// [CheckArgs]); the error is the one Transform returns for such an object,
// less the object's name.
// Its [WAV.Args] and [WAV.Command] are then exactly what Transform runs for
// an object whose Input.Args is args; an object's Input.Args override the
// result again. The two share the ffmpeg binary, allow-list and TempDir.
func (w *WAV) WithArgs(args string) (*WAV, error) {
	out, err := parseArgs(args, w.out, w.allow)
	if err != nil {
		return nil, err
	}
	w2 := *w
	w2.out = out
	return &w2, nil
}

// Binary returns the path of the ffmpeg executable the transcoder runs.
func (w *WAV) Binary() string { return w.bin }

// Args returns ffmpeg's arguments (without the program name) to transcode
// the file inPath to the WAV file outPath, as Transform runs them for an
// object with empty Input.Args; for other args use [WAV.WithArgs] first.
// "pipe:0" as inPath reads standard input. Paths are given to ffmpeg with
// the "file:" protocol, so a name with a colon or a leading dash means the
// file.
func (w *WAV) Args(inPath, outPath string) []string {
	if inPath != "pipe:0" {
		inPath = "file:" + inPath
	}
	return w.out.command(inPath, outPath)
}

// command returns ffmpeg's arguments to transcode the input URL input
// ("file:…" or "pipe:0") to the file outPath with the output o.
func (o output) command(input, outPath string) []string {
	args := []string{
		"-nostdin", "-hide_banner", "-loglevel", "error", "-xerror",
		"-i", input,
		"-vn",
	}
	args = append(args, o.args()...)
	return append(args,
		"-map_metadata", "-1",
		"-fflags", "+bitexact", "-flags:a", "+bitexact",
		"-f", "wav",
		"-y", "file:"+outPath,
	)
}

// Command returns the ffmpeg command the transform runs for an object with
// empty Input.Args (for other args use [WAV.WithArgs] first), reading the
// file inPath and writing the WAV file outPath, killed when ctx ends. It
// lets a benchmark measure ffmpeg alone on the same arguments.
func (w *WAV) Command(ctx context.Context, inPath, outPath string) *exec.Cmd {
	return exec.CommandContext(ctx, w.bin, w.Args(inPath, outPath)...)
}

// Transform transcodes one object to WAV and streams it to out.
func (w *WAV) Transform(ctx context.Context, in *insitu.Input, out io.Writer) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	o, err := parseArgs(in.Args, w.out, w.allow)
	if err != nil {
		return &insitu.Error{Code: insitu.InvalidArgument, Name: in.Name, Err: err}
	}
	input := "pipe:0"
	if in.Path != "" {
		if _, err := os.Stat(in.Path); errors.Is(err, fs.ErrNotExist) {
			return &insitu.Error{Code: insitu.NotFound, Name: in.Name, Msg: "ffmpeg: input file not found", Err: err}
		}
		input = "file:" + in.Path
	} else if in.Body == nil {
		return &insitu.Error{Code: insitu.InvalidArgument, Name: in.Name, Msg: "ffmpeg: input has neither Path nor Body"}
	}

	tmp, err := os.CreateTemp(w.tempDir, ".insitu-ffmpeg-*.wav")
	if err != nil {
		return fmt.Errorf("ffmpeg: staging file: %w", err)
	}
	tmpName := tmp.Name()
	defer w.remove(tmpName)
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("ffmpeg: staging file: %w", err)
	}

	start := time.Now()
	if err := w.run(ctx, in, o.command(input, tmpName)); err != nil {
		return err
	}
	w.log.Debug("ffmpeg: transcoded", "name", in.Name.String(), "output", o.String(), "elapsed", time.Since(start))
	return w.send(ctx, in.Name, o, tmpName, out)
}

// run runs ffmpeg with args, which read in.Path or, when it is empty,
// in.Body on standard input, and waits for it.
func (w *WAV) run(ctx context.Context, in *insitu.Input, args []string) error {
	cmd := exec.CommandContext(ctx, w.bin, args...)
	stderr := &procio.Tail{Max: stderrTail}
	cmd.Stderr = stderr

	var (
		pw       *os.File
		copyDone chan error
	)
	if in.Path == "" {
		pr, pwr, err := os.Pipe()
		if err != nil {
			return fmt.Errorf("ffmpeg: stdin pipe: %w", err)
		}
		cmd.Stdin, pw = pr, pwr
		defer pr.Close()
	}
	if err := cmd.Start(); err != nil {
		if pw != nil {
			pw.Close()
		}
		return fmt.Errorf("ffmpeg: start: %w", err)
	}
	if pw != nil {
		cmd.Stdin.(*os.File).Close() // the child has its copy
		copyDone = make(chan error, 1)
		go func() {
			// ffmpeg's stdin. Once ffmpeg exits, writes fail at once
			// (EPIPE); only a Read of in.Body can keep this goroutine,
			// until the caller closes the body.
			_, err := io.Copy(pw, procio.BodyReader{R: in.Body})
			pw.Close()
			copyDone <- err
		}()
	}
	waitErr := cmd.Wait() // reaps ffmpeg; CommandContext kills it when ctx ends

	if err := ctx.Err(); err != nil {
		return err
	}
	if copyDone != nil {
		// ffmpeg has exited, so the copy ends as soon as the body's
		// current Read returns.
		if err := <-copyDone; err != nil {
			var be procio.BodyError
			if errors.As(err, &be) {
				return be.Err // the source's error, as it is
			}
			// Writing to ffmpeg failed: it stopped reading; waitErr says why.
			if waitErr == nil {
				return fmt.Errorf("ffmpeg: writing its input: %w", err)
			}
		}
	}
	if waitErr != nil {
		msg := stderr.OneLine("no message")
		var ee *exec.ExitError
		if errors.As(waitErr, &ee) && ee.ExitCode() > 0 {
			return &insitu.Error{Code: insitu.InvalidArgument, Name: in.Name, Msg: "ffmpeg cannot transcode the input: " + msg, Err: waitErr}
		}
		return &insitu.Error{Code: insitu.Internal, Name: in.Name, Msg: "ffmpeg: " + msg, Err: waitErr}
	}
	return nil
}

// send checks that the WAV file at path is the output o and copies it to
// out.
func (w *WAV) send(ctx context.Context, name insitu.Name, o output, path string, out io.Writer) error {
	f, err := w.staged(name, o, path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(out, procio.CtxReader{Ctx: ctx, R: f})
	return err
}

// staged opens the WAV file ffmpeg wrote at path and checks that it is
// the output o: sizes consistent with the file's length, the channels,
// rate and encoding asked for. A bad file is an Internal error.
func (w *WAV) staged(name insitu.Name, o output, path string) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("ffmpeg: staging file: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("ffmpeg: staging file: %w", err)
	}
	h, err := wav.Parse(f, fi.Size())
	format, bits, _ := codecShape(o.codec)
	if err == nil && (h.Format != format || h.BitsPerSample != bits || h.Channels != o.channels || h.SampleRate != o.sampleRate) {
		err = fmt.Errorf("got %v, want %s", h, o)
	}
	if err != nil {
		f.Close()
		return nil, &insitu.Error{Code: insitu.Internal, Name: name, Msg: "ffmpeg produced an invalid WAV", Err: err}
	}
	return f, nil
}

// remove removes a staging file, logging a failure other than its being
// gone already.
func (w *WAV) remove(path string) {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		w.log.Warn("ffmpeg: cannot remove staging file", "path", path, "err", err)
	}
}
