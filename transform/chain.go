package transform

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/sourcegraph/conc/panics"

	"github.com/insitu-data/insitu"
)

// StageBuffer is the size of the buffer between two stages of a [Chain]:
// a stage's writes reach the next stage in pieces of up to this many
// bytes, and a chain of n stages holds at most n-1 such buffers.
const StageBuffer = 64 << 10

var (
	// errAborted is what a stage's reads and writes return once another
	// stage has failed.
	errAborted = errors.New("transform: chain aborted: another stage failed")
	// errDownstreamDone is what a stage's writes return once the next
	// stage has returned without reading all its input, which is not a
	// failure (like a closed pipe in a shell pipeline).
	errDownstreamDone = errors.New("transform: the next stage stopped reading")
)

// Chain returns the transform that runs stages as one: the object goes
// into the first stage, each stage's output is the next one's input, and
// the last stage's output is the chain's.
//
// The stages run concurrently, each in its own goroutine, and stream
// from one to the next through buffers of [StageBuffer] bytes, so a
// chain never holds a whole object. Every stage gets the object's Name,
// Owner and Origin and the job's Args; the first stage also gets its
// Path, Size and Version, the others, which read an intermediate stream,
// get Path "", Size -1 and Version "".
//
// The chain fails as its first failing stage fails, with an
// [*insitu.Error] of that stage's code whose message names it, as
// "stage 2 of 3 (gunzip): …" (the stage's String method when it has one,
// else its type), and which wraps the stage's error so errors.Is and
// errors.As see it. A panic in a stage is an [insitu.Internal] error
// naming the stage. Once a stage fails the chain starts no more writes to
// out, the other stages' reads and writes fail and their context is
// canceled, and Transform returns when every stage has returned: no
// goroutine outlives the call. A stage that returns [insitu.ErrSkip]
// skips the object: the chain returns that error as it is. A stage that
// returns without reading all of its input is not a failure; the stage
// before it sees its writes fail and that error is ignored. When ctx is
// done the chain returns ctx.Err().
//
// With no stages the chain copies its input unchanged. Chain panics if a
// stage is nil.
func Chain(stages ...insitu.Transform) insitu.Transform {
	for i, s := range stages {
		if s == nil {
			panic(fmt.Sprintf("transform.Chain: stage %d of %d is nil", i+1, len(stages)))
		}
	}
	return &chain{stages: slices.Clone(stages)}
}

type chain struct{ stages []insitu.Transform }

// String lists the stages, as "chain(md5 | gzip)".
func (c *chain) String() string {
	s := "chain("
	for i, st := range c.stages {
		if i > 0 {
			s += " | "
		}
		s += stageName(st)
	}
	return s + ")"
}

// stageName is s's String() when it has one, else its type.
func stageName(s insitu.Transform) string {
	if str, ok := s.(fmt.Stringer); ok {
		return str.String()
	}
	return fmt.Sprintf("%T", s)
}

// Transform runs the stages over in, writing the last one's output to out.
func (c *chain) Transform(ctx context.Context, in *insitu.Input, out io.Writer) error {
	n := len(c.stages)
	if n == 0 {
		return insitu.Identity.Transform(ctx, in, out)
	}
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	r := &run{cancel: cancel}
	// Stage i reads inputs[i] and writes to pipe i (i < n-1) or to out.
	inputs := make([]io.Reader, n)
	r.readers = make([]*io.PipeReader, n) // readers[i]: stage i's input pipe, i > 0
	r.writers = make([]*io.PipeWriter, n) // writers[i]: stage i's output pipe, i < n-1
	inputs[0] = in.Body
	for i := range n - 1 {
		pr, pw := io.Pipe()
		r.writers[i], r.readers[i+1] = pw, pr
		inputs[i+1] = pr
	}
	gate := &gateWriter{w: out, closed: &r.failed}

	var wg sync.WaitGroup
	for i, s := range c.stages {
		sin := &insitu.Input{Object: in.Object, Args: in.Args, Body: inputs[i]}
		if i > 0 {
			sin.Path, sin.Size, sin.Version = "", -1, ""
		}
		wg.Go(func() { r.stage(ctx, i, n, s, sin, gate) })
	}
	wg.Wait()

	if r.err == nil {
		return nil
	}
	if err := parent.Err(); err != nil {
		return err
	}
	return r.err
}

// run is the state of one call of a chain.
type run struct {
	cancel  context.CancelFunc
	readers []*io.PipeReader
	writers []*io.PipeWriter

	failed atomic.Bool // a stage failed: out takes no more writes
	mu     sync.Mutex
	err    error // the first failure, named after its stage
}

// stage runs stage i of n, s, over sin, then closes its pipes: its output
// with EOF when it succeeded, its input so that the stage before it stops
// writing.
func (r *run) stage(ctx context.Context, i, n int, s insitu.Transform, sin *insitu.Input, last io.Writer) {
	var (
		w   = last
		bw  *bufio.Writer
		err error
	)
	if i < n-1 {
		bw = bufio.NewWriterSize(r.writers[i], StageBuffer)
		w = bw
	}
	var pc panics.Catcher
	pc.Try(func() { err = s.Transform(ctx, sin, w) })
	if rec := pc.Recovered(); rec != nil {
		err = &insitu.Error{Code: insitu.Internal,
			Msg: fmt.Sprintf("stage %d of %d (%s) panicked", i+1, n, stageName(s)), Err: rec.AsError()}
	} else if err != nil && !errors.Is(err, insitu.ErrSkip) {
		err = &insitu.Error{Code: insitu.CodeOf(err), Msg: fmt.Sprintf("stage %d of %d (%s)", i+1, n, stageName(s)), Err: err}
	}
	if err == nil && bw != nil {
		err = bw.Flush()
	}
	if err != nil && !errors.Is(err, errDownstreamDone) {
		r.fail(err)
	}
	if pw := r.writers[i]; pw != nil {
		if err == nil {
			_ = pw.Close()
		} else {
			_ = pw.CloseWithError(errAborted)
		}
	}
	if pr := r.readers[i]; pr != nil {
		_ = pr.CloseWithError(errDownstreamDone)
	}
}

// fail records err if it is the first failure, and then stops every
// stage: out takes no more writes, every pipe fails, the context ends.
// The errors the other stages see from then on are consequences, never
// recorded.
func (r *run) fail(err error) {
	r.mu.Lock()
	first := r.err == nil
	if first {
		r.err = err
	}
	r.mu.Unlock()
	if !first {
		return
	}
	r.failed.Store(true)
	r.cancel()
	for _, pr := range r.readers {
		if pr != nil {
			_ = pr.CloseWithError(errAborted)
		}
	}
	for _, pw := range r.writers {
		if pw != nil {
			_ = pw.CloseWithError(errAborted)
		}
	}
}

// gateWriter is the chain's out: it starts no write once the chain has
// failed.
type gateWriter struct {
	w      io.Writer
	closed *atomic.Bool
}

func (g *gateWriter) Write(p []byte) (int, error) {
	if g.closed.Load() {
		return 0, errAborted
	}
	return g.w.Write(p)
}
