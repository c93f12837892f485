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
	"strconv"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/procio"
)

// stderrTail is how much of ffmpeg's standard error an error keeps.
const stderrTail = 2 << 10

// transcoder is what [WAV] and [Audio] share: the ffmpeg binary, the
// staging directory, the output for empty Input.Args and the options an
// Input.Args may pass. Its methods do the work of theirs.
type transcoder struct {
	bin     string
	tempDir string
	log     *slog.Logger
	out     output    // the output for empty Input.Args
	args    allowList // what Input.Args may set
}

// newTranscoder checks the staging directory and finds ffmpeg.
func newTranscoder(bin, tempDir string, log *slog.Logger, out output, args allowList) (transcoder, error) {
	if tempDir == "" {
		tempDir = os.TempDir()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if fi, err := os.Stat(tempDir); err != nil || !fi.IsDir() {
		return transcoder{}, insitu.Errorf(insitu.InvalidArgument, "ffmpeg: TempDir %q is not a directory", tempDir)
	}
	p, err := Lookup(bin)
	if err != nil {
		return transcoder{}, err
	}
	return transcoder{bin: p, tempDir: tempDir, log: log, out: out, args: args}, nil
}

// withArgs returns t with its output changed by the args string args.
func (t transcoder) withArgs(args string) (transcoder, error) {
	out, err := parseArgs(args, t.out, t.args)
	if err != nil {
		return transcoder{}, err
	}
	t.out = out
	return t, nil
}

// argv returns ffmpeg's arguments to transcode the files inPaths[i] to
// the files outPaths[i] with t's output, in one process ("pipe:0" as an
// input path reads standard input).
func (t transcoder) argv(inPaths, outPaths []string) []string {
	urls := make([]string, len(inPaths))
	outs := make([]output, len(inPaths))
	for i, p := range inPaths {
		if p != "pipe:0" {
			p = "file:" + p
		}
		urls[i], outs[i] = p, t.out
	}
	return command(urls, outs, outPaths)
}

// command returns ffmpeg's arguments to transcode the input URLs
// inputs[i] ("file:…" or "pipe:N") to the files outPaths[i] with the
// outputs outs[i]: every input first, then each output with a -map that
// takes the first audio stream of its own input, its encoder's options,
// no metadata, bit-exact muxing (no version strings, fixed stream serial
// numbers) and its format. One input gives the command of one object,
// many the command of a batch; each output is the same either way.
func command(inputs []string, outs []output, outPaths []string) []string {
	args := []string{"-nostdin", "-hide_banner", "-loglevel", "error", "-xerror"}
	for _, in := range inputs {
		args = append(args, "-i", in)
	}
	for i, o := range outs {
		args = append(args, "-map", strconv.Itoa(i)+":a:0", "-vn")
		args = append(args, o.args()...)
		args = append(args,
			"-map_metadata", "-1",
			"-fflags", "+bitexact", "-flags:a", "+bitexact",
		)
		args = append(args, o.muxOpts()...)
		args = append(args,
			"-f", o.muxer(),
			"-y", "file:"+outPaths[i],
		)
	}
	return args
}

// transform transcodes one object whose Input.Args are already applied
// to o and streams the output to out.
func (t transcoder) transform(ctx context.Context, in *insitu.Input, o output, out io.Writer) error {
	outs, err := t.batch(ctx, []*insitu.Input{in}, []output{o})
	if err != nil {
		return err
	}
	defer outs[0].Close()
	_, err = io.Copy(out, procio.CtxReader{Ctx: ctx, R: outs[0]})
	return err
}

// outputs applies each input's Args to t's output.
func (t transcoder) outputs(ins []*insitu.Input) ([]output, error) {
	outs := make([]output, len(ins))
	for i, in := range ins {
		o, err := parseArgs(in.Args, t.out, t.args)
		if err != nil {
			return nil, &insitu.Error{Code: insitu.InvalidArgument, Name: in.Name, Err: err}
		}
		outs[i] = o
	}
	return outs, nil
}

// batch transcodes ins[i] to outs[i] in one ffmpeg process and returns
// readers of the staged, checked outputs that remove them when closed.
// On an error nothing is left behind.
func (t transcoder) batch(ctx context.Context, ins []*insitu.Input, outs []output) (rcs []io.ReadCloser, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(ins) == 0 {
		return nil, nil
	}
	b := &run{t: t, ins: ins, outs: outs, urls: make([]string, len(ins))}
	for i, in := range ins {
		switch {
		case in.Path != "":
			if _, err := os.Stat(in.Path); errors.Is(err, fs.ErrNotExist) {
				return nil, &insitu.Error{Code: insitu.NotFound, Name: in.Name, Msg: "ffmpeg: input file not found", Err: err}
			}
			b.urls[i] = "file:" + in.Path
		case in.Body == nil:
			return nil, &insitu.Error{Code: insitu.InvalidArgument, Name: in.Name, Msg: "ffmpeg: input has neither Path nor Body"}
		default:
			// The first body is standard input; the others are
			// ExtraFiles, whose j-th is fd 3+j.
			fd := 0
			if len(b.piped) > 0 {
				fd = 2 + len(b.piped)
			}
			b.urls[i] = "pipe:" + strconv.Itoa(fd)
			b.piped = append(b.piped, i)
		}
	}
	defer func() {
		if err != nil {
			b.removeAll()
		}
	}()
	for _, o := range outs {
		tmp, err := os.CreateTemp(t.tempDir, ".insitu-ffmpeg-*"+o.ext())
		if err != nil {
			return nil, fmt.Errorf("ffmpeg: staging file: %w", err)
		}
		b.tmps = append(b.tmps, tmp.Name())
		if err := tmp.Close(); err != nil {
			return nil, fmt.Errorf("ffmpeg: staging file: %w", err)
		}
	}
	start := time.Now()
	if err := b.run(ctx); err != nil {
		return nil, err
	}
	if len(ins) == 1 {
		t.log.Debug("ffmpeg: transcoded", "name", ins[0].Name.String(), "output", outs[0].String(), "elapsed", time.Since(start))
	} else {
		t.log.Debug("ffmpeg: transcoded a batch", "objects", len(ins), "first", ins[0].Name.String(), "elapsed", time.Since(start))
	}
	return b.open()
}

// run is one ffmpeg process over one input or a batch.
type run struct {
	t     transcoder
	ins   []*insitu.Input
	outs  []output // the output of each input
	urls  []string // ffmpeg's URL of each input
	piped []int    // the inputs fed through pipes, in fd order
	tmps  []string // the staging file of each output
}

// run runs ffmpeg and waits for it; the bodies of piped inputs are
// copied to their pipes meanwhile.
func (b *run) run(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, b.t.bin, command(b.urls, b.outs, b.tmps)...)
	stderr := &procio.Tail{Max: stderrTail}
	cmd.Stderr = stderr
	var readers, writers []*os.File // the pipes' ends, in fd order
	closeAll := func() {
		for _, f := range readers {
			f.Close()
		}
		for _, f := range writers {
			f.Close()
		}
	}
	for j := range b.piped {
		pr, pw, err := os.Pipe()
		if err != nil {
			closeAll()
			return fmt.Errorf("ffmpeg: input pipe: %w", err)
		}
		readers, writers = append(readers, pr), append(writers, pw)
		if j == 0 {
			cmd.Stdin = pr
		} else {
			cmd.ExtraFiles = append(cmd.ExtraFiles, pr)
		}
	}
	if err := cmd.Start(); err != nil {
		closeAll()
		return fmt.Errorf("ffmpeg: start: %w", err)
	}
	for _, f := range readers {
		f.Close() // the child has its copies
	}
	copied := make(chan error, len(writers))
	for j, pw := range writers {
		body := b.ins[b.piped[j]].Body
		go func() {
			// Once ffmpeg exits, writes fail at once (EPIPE); only a Read
			// of the body can keep this goroutine, until the caller
			// closes the body. The result is sent before the pipe is
			// closed, so that ffmpeg, which fails on the end of an input
			// that a body's error cut short, has its cause ready.
			_, err := io.Copy(pw, procio.BodyReader{R: body})
			copied <- err
			pw.Close()
		}()
	}
	waitErr := cmd.Wait() // reaps ffmpeg; CommandContext kills it when ctx ends
	if err := ctx.Err(); err != nil {
		// A copy may be in a Read of its body, which the caller closes
		// once this returns; it then ends, as writes to a dead ffmpeg fail.
		return err
	}
	var copyErr error
	for range writers {
		var err error
		if waitErr == nil {
			err = <-copied // ffmpeg read its inputs; the copies end
		} else {
			select {
			case err = <-copied:
			default:
				// Still in a Read of its body: it ends when the caller
				// closes the body, and ffmpeg's error says enough.
			}
		}
		if err != nil && copyErr == nil {
			copyErr = err
		}
	}
	var be procio.BodyError
	if errors.As(copyErr, &be) {
		return be.Err // a source's error, as it is
	}
	if waitErr != nil {
		msg := stderr.OneLine("no message")
		var ee *exec.ExitError
		bad := errors.As(waitErr, &ee) && ee.ExitCode() > 0 // ffmpeg refused the input
		if len(b.ins) == 1 {
			if bad {
				return &insitu.Error{Code: insitu.InvalidArgument, Name: b.ins[0].Name, Msg: "ffmpeg cannot transcode the input: " + msg, Err: waitErr}
			}
			return &insitu.Error{Code: insitu.Internal, Name: b.ins[0].Name, Msg: "ffmpeg: " + msg, Err: waitErr}
		}
		what := fmt.Sprintf("%d inputs, the first %s", len(b.ins), b.ins[0].Name)
		if bad {
			return &insitu.Error{Code: insitu.InvalidArgument, Msg: "ffmpeg cannot transcode the batch (" + what + "): " + msg, Err: waitErr}
		}
		return &insitu.Error{Code: insitu.Internal, Msg: "ffmpeg (" + what + "): " + msg, Err: waitErr}
	}
	if copyErr != nil {
		return fmt.Errorf("ffmpeg: writing its input: %w", copyErr)
	}
	return nil
}

// open checks each staged output and returns readers of them that
// remove them when closed.
func (b *run) open() ([]io.ReadCloser, error) {
	rcs := make([]io.ReadCloser, 0, len(b.tmps))
	for i, path := range b.tmps {
		f, err := b.staged(b.ins[i].Name, b.outs[i], path)
		if err != nil {
			for _, rc := range rcs {
				rc.Close()
			}
			return nil, err
		}
		rcs = append(rcs, &stagedOutput{File: f, t: b.t})
	}
	return rcs, nil
}

// staged opens the file ffmpeg wrote at path and checks that it is the
// output o (see [output.check]). A bad file is an Internal error.
func (b *run) staged(name insitu.Name, o output, path string) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("ffmpeg: staging file: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("ffmpeg: staging file: %w", err)
	}
	if err := o.check(f, fi.Size()); err != nil {
		f.Close()
		return nil, &insitu.Error{Code: insitu.Internal, Name: name, Msg: "ffmpeg produced an invalid " + o.kind(), Err: err}
	}
	return f, nil
}

// removeAll removes every staging file of the run.
func (b *run) removeAll() {
	for _, p := range b.tmps {
		b.t.remove(p)
	}
}

// remove removes a staging file, logging a failure other than its being
// gone already.
func (t transcoder) remove(path string) {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.log.Warn("ffmpeg: cannot remove staging file", "path", path, "err", err)
	}
}

// stagedOutput reads a staged output and removes it when closed.
type stagedOutput struct {
	*os.File
	t transcoder
}

func (s *stagedOutput) Close() error {
	err := s.File.Close()
	s.t.remove(s.Name())
	return err
}
