package main

import (
	"context"
	"io"
	"sync"

	"github.com/insitu-data/insitu"
)

// slots bounds how many ffmpeg processes the configurations other than the
// floor run at once, across the nodes, the transform servers and the
// baseline: they all share this machine's CPUs, as the floor's processes
// do, so that the table compares how the bytes move rather than how many
// processes crowd the CPUs (see -ffmpeg-slots).
//
// A slot is taken when the transform starts and given back at the first
// byte of its output, or when it returns: ffmpeg.WAV writes nothing before
// ffmpeg has exited (it stages the WAV in a file, checks it, then streams
// it), so the slot covers the ffmpeg run and not the streaming of the
// output, which overlaps with the next run.
type slots struct {
	t   insitu.Transform
	sem chan struct{}
}

func limit(t insitu.Transform, n int) insitu.Transform {
	if n <= 0 {
		return t
	}
	return &slots{t: t, sem: make(chan struct{}, n)}
}

func (s *slots) Transform(ctx context.Context, in *insitu.Input, out io.Writer) error {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	var once sync.Once
	release := func() { once.Do(func() { <-s.sem }) }
	defer release()
	return s.t.Transform(ctx, in, &releasingWriter{w: out, release: release})
}

// releasingWriter calls release before its first write.
type releasingWriter struct {
	w       io.Writer
	release func()
}

func (r *releasingWriter) Write(p []byte) (int, error) {
	r.release()
	return r.w.Write(p)
}

// batchSlots is slots for a transform that takes batches: a batch is one
// ffmpeg process, so it takes one slot, for the whole TransformBatch call
// (ffmpeg.WAV returns a batch's outputs only once its process has exited
// and each output is staged, so the outputs are stored outside the slot).
// An object transformed alone (a batch of one, or a failed batch's
// objects one by one) takes a slot as with limit.
type batchSlots struct {
	*slots
	b insitu.BatchTransform
}

// limitBatch is limit for a transform that takes batches; the result
// takes batches too.
func limitBatch(t insitu.BatchTransform, n int) insitu.BatchTransform {
	if n <= 0 {
		return t
	}
	return batchSlots{slots: &slots{t: t, sem: make(chan struct{}, n)}, b: t}
}

func (s batchSlots) TransformBatch(ctx context.Context, ins []*insitu.Input) ([]io.ReadCloser, error) {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-s.sem }()
	return s.b.TransformBatch(ctx, ins)
}
