package ffmpeg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/procio"
)

// TransformBatch transcodes ins to WAV in one ffmpeg process, which reads
// every input and writes every output: on short files, where starting
// ffmpeg costs more than the conversion, a batch of 16 takes a fraction
// of the time of 16 processes, and each output is byte for byte what
// Transform makes of its input (each input's Args are its own). It makes
// [WAV] an [insitu.BatchTransform], so the pipeline's runner, a storage
// node's jobs and a transform server hand it batches.
//
// Inputs with a Path are read as files; the others' Body is fed to ffmpeg
// through a pipe of its own. Each output is staged in a temporary file,
// checked as Transform checks it, and returned as a reader of that file
// that removes it when closed. When ffmpeg fails (one input is not audio
// it can decode, say; with -xerror one bad input stops the process), the
// error covers the batch as a whole, and every staging file is removed:
// the caller transforms each input alone to learn which failed.
func (w *WAV) TransformBatch(ctx context.Context, ins []*insitu.Input) (outs []io.ReadCloser, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(ins) == 0 {
		return nil, nil
	}
	b := &batchRun{w: w, ins: ins, shapes: make([]output, len(ins)), urls: make([]string, len(ins))}
	for i, in := range ins {
		o, err := parseArgs(in.Args, w.out, w.allow)
		if err != nil {
			return nil, &insitu.Error{Code: insitu.InvalidArgument, Name: in.Name, Err: err}
		}
		b.shapes[i] = o
		switch {
		case in.Path != "":
			if _, err := os.Stat(in.Path); errors.Is(err, fs.ErrNotExist) {
				return nil, &insitu.Error{Code: insitu.NotFound, Name: in.Name, Msg: "ffmpeg: input file not found", Err: err}
			}
			b.urls[i] = "file:" + in.Path
		case in.Body == nil:
			return nil, &insitu.Error{Code: insitu.InvalidArgument, Name: in.Name, Msg: "ffmpeg: input has neither Path nor Body"}
		default:
			b.urls[i] = "pipe:" + strconv.Itoa(3+len(b.piped)) // ExtraFiles[j] is fd 3+j
			b.piped = append(b.piped, i)
		}
	}
	defer func() {
		if err != nil {
			b.removeAll()
		}
	}()
	for range ins {
		tmp, err := os.CreateTemp(w.tempDir, ".insitu-ffmpeg-*.wav")
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
	w.log.Debug("ffmpeg: transcoded a batch", "objects", len(ins), "first", ins[0].Name.String(), "elapsed", time.Since(start))
	return b.open()
}

// BatchArgs returns ffmpeg's arguments (without the program name) to
// transcode the files inPaths[i] to the WAV files outPaths[i] in one
// process, as TransformBatch runs them for inputs with empty Input.Args
// (for other args use [WAV.WithArgs] first); each output is the one
// [WAV.Args] makes of its input. inPaths and outPaths must be as long.
func (w *WAV) BatchArgs(inPaths, outPaths []string) []string {
	urls := make([]string, len(inPaths))
	shapes := make([]output, len(inPaths))
	for i, p := range inPaths {
		urls[i], shapes[i] = "file:"+p, w.out
	}
	return batchCommand(urls, shapes, outPaths)
}

// BatchCommand returns the ffmpeg command of [WAV.BatchArgs], killed when
// ctx ends. It lets a benchmark measure batched ffmpeg alone on the same
// arguments.
func (w *WAV) BatchCommand(ctx context.Context, inPaths, outPaths []string) *exec.Cmd {
	return exec.CommandContext(ctx, w.bin, w.BatchArgs(inPaths, outPaths)...)
}

// batchCommand returns ffmpeg's arguments to transcode the input URLs
// inputs[i] to the files outPaths[i] with the outputs shapes[i]: every
// input first, then each output with the options of [output.command] and
// a -map that takes the first audio stream of its own input.
func batchCommand(inputs []string, shapes []output, outPaths []string) []string {
	args := []string{"-nostdin", "-hide_banner", "-loglevel", "error", "-xerror"}
	for _, in := range inputs {
		args = append(args, "-i", in)
	}
	for i, o := range shapes {
		args = append(args, "-map", strconv.Itoa(i)+":a:0", "-vn")
		args = append(args, o.args()...)
		args = append(args,
			"-map_metadata", "-1",
			"-fflags", "+bitexact", "-flags:a", "+bitexact",
			"-f", "wav",
			"-y", "file:"+outPaths[i],
		)
	}
	return args
}

// batchRun is one TransformBatch call.
type batchRun struct {
	w      *WAV
	ins    []*insitu.Input
	shapes []output // the output of each input
	urls   []string // ffmpeg's URL of each input
	piped  []int    // the inputs fed through pipes, in fd order
	tmps   []string // the staging file of each output
}

// run runs ffmpeg over the batch and waits for it; the bodies of piped
// inputs are copied to their pipes meanwhile.
func (b *batchRun) run(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, b.w.bin, batchCommand(b.urls, b.shapes, b.tmps)...)
	stderr := &procio.Tail{Max: stderrTail}
	cmd.Stderr = stderr
	writers := make([]*os.File, 0, len(b.piped))
	closeAll := func() {
		for _, f := range cmd.ExtraFiles {
			f.Close()
		}
		for _, f := range writers {
			f.Close()
		}
	}
	for range b.piped {
		pr, pw, err := os.Pipe()
		if err != nil {
			closeAll()
			return fmt.Errorf("ffmpeg: input pipe: %w", err)
		}
		cmd.ExtraFiles = append(cmd.ExtraFiles, pr)
		writers = append(writers, pw)
	}
	if err := cmd.Start(); err != nil {
		closeAll()
		return fmt.Errorf("ffmpeg: start: %w", err)
	}
	for _, f := range cmd.ExtraFiles {
		f.Close() // the child has its copies
	}
	copied := make(chan error, len(writers))
	for j, pw := range writers {
		body := b.ins[b.piped[j]].Body
		go func() {
			// Once ffmpeg exits, writes fail at once (EPIPE); only a Read
			// of the body can keep this goroutine, until the caller
			// closes the body.
			_, err := io.Copy(pw, procio.BodyReader{R: body})
			pw.Close()
			copied <- err
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
		what := fmt.Sprintf("%d inputs, the first %s", len(b.ins), b.ins[0].Name)
		var ee *exec.ExitError
		if errors.As(waitErr, &ee) && ee.ExitCode() > 0 {
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
func (b *batchRun) open() ([]io.ReadCloser, error) {
	outs := make([]io.ReadCloser, 0, len(b.tmps))
	for i, path := range b.tmps {
		f, err := b.w.staged(b.ins[i].Name, b.shapes[i], path)
		if err != nil {
			for _, o := range outs {
				o.Close()
			}
			return nil, err
		}
		outs = append(outs, &stagedOutput{File: f, w: b.w})
	}
	return outs, nil
}

// removeAll removes every staging file of the batch.
func (b *batchRun) removeAll() {
	for _, p := range b.tmps {
		b.w.remove(p)
	}
}

// stagedOutput reads a staged output and removes it when closed.
type stagedOutput struct {
	*os.File
	w *WAV
}

func (s *stagedOutput) Close() error {
	err := s.File.Close()
	s.w.remove(s.Name())
	return err
}
