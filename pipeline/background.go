package pipeline

import (
	"context"
	"sync"

	"github.com/insitu-data/insitu"
)

// A Job is a run started in the background by [Start]: it can be watched
// and aborted. Its methods are safe for concurrent use.
type Job struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	stats  Stats
	report Report
	err    error
}

// Start begins Run(ctx, src, t, dst, opts) in a new goroutine and returns
// at once. opts.Progress, if set, is still called; Job.Stats follows the
// run either way.
func Start(ctx context.Context, src insitu.Source, t insitu.Transform, dst insitu.Sink, opts *Options) *Job {
	ctx, cancel := context.WithCancel(ctx)
	j := &Job{cancel: cancel, done: make(chan struct{})}
	var o Options
	if opts != nil {
		o = *opts
	}
	user := o.Progress
	o.Progress = func(s Stats) {
		j.mu.Lock()
		j.stats = s
		j.mu.Unlock()
		if user != nil {
			user(s)
		}
	}
	go func() {
		defer close(j.done)
		defer cancel()
		rep, err := Run(ctx, src, t, dst, &o)
		j.mu.Lock()
		j.report, j.err = rep, err
		j.mu.Unlock()
	}()
	return j
}

// Stats returns the latest live stats (updated every ProgressInterval).
func (j *Job) Stats() Stats {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.stats
}

// Done is closed when the run has ended.
func (j *Job) Done() <-chan struct{} { return j.done }

// Abort cancels the run; Wait then returns context.Canceled. It does not
// wait for the run to end.
func (j *Job) Abort() { j.cancel() }

// Wait waits for the run to end, or for ctx, and returns what Run returned.
func (j *Job) Wait(ctx context.Context) (Report, error) {
	select {
	case <-j.done:
	case <-ctx.Done():
		return Report{}, ctx.Err()
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.report, j.err
}
