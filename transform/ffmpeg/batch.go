package ffmpeg

import (
	"context"
	"io"
	"os/exec"

	"github.com/insitu-data/insitu"
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
func (w *WAV) TransformBatch(ctx context.Context, ins []*insitu.Input) ([]io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	outs, err := w.t.outputs(ins)
	if err != nil {
		return nil, err
	}
	return w.t.batch(ctx, ins, outs)
}

// BatchArgs returns ffmpeg's arguments (without the program name) to
// transcode the files inPaths[i] to the WAV files outPaths[i] in one
// process, as TransformBatch runs them for inputs with empty Input.Args
// (for other args use [WAV.WithArgs] first); each output is the one
// [WAV.Args] makes of its input. inPaths and outPaths must be as long.
func (w *WAV) BatchArgs(inPaths, outPaths []string) []string {
	return w.t.argv(inPaths, outPaths)
}

// BatchCommand returns the ffmpeg command of [WAV.BatchArgs], killed when
// ctx ends. It lets a benchmark measure batched ffmpeg alone on the same
// arguments.
func (w *WAV) BatchCommand(ctx context.Context, inPaths, outPaths []string) *exec.Cmd {
	return exec.CommandContext(ctx, w.t.bin, w.BatchArgs(inPaths, outPaths)...)
}
