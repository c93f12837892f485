// Package transporttest is the conformance kit of package transport: one
// suite, [Run], that every way of reaching a transform passes — the
// WebSocket stream, hpush, hpull, and the transform called in-process as
// the reference.
//
// A [Harness] starts the implementation under test for each test of the
// suite. [InProcess] and [Server] are the harnesses of insitu's own
// implementations; a new transport writes its own Harness and calls Run.
package transporttest

import (
	"context"
	"io"
	"net/url"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/locality"
)

// Config is what a test asks of the server and client it starts.
type Config struct {
	// Timeout is the server's per-object timeout; 0 for none.
	Timeout time.Duration
	// Roots are the server's allowed roots for local-file input.
	Roots []string
	// Secret is the server's secret; ClientSecret the client's.
	Secret, ClientSecret locality.Secret
	// LocalFile makes the client send Input.Path instead of the bytes.
	LocalFile bool
	// AllowPut is the server's policy for direct-put destinations; nil
	// for the default.
	AllowPut func(u *url.URL) bool
}

// Endpoint is a transform reached through the implementation under test.
type Endpoint struct {
	// Client sends an object to the transform and returns its output.
	Client insitu.Transform
	// TransformTo transforms an object and has the server put the output
	// to dst (as [insitu.DirectTransform] does); nil when the
	// implementation cannot put directly.
	TransformTo func(ctx context.Context, in *insitu.Input, dst insitu.Destination) (insitu.PutResult, error)
	// Kill stops the server at once, dropping its connections; nil when
	// nothing can be killed (in-process).
	Kill func()
	// Restart starts the server again on the same address after Kill.
	Restart func()
}

// Harness starts the implementation under test.
type Harness interface {
	// Name names the implementation in test names.
	Name() string
	// Remote reports whether the transform runs behind a server, so that
	// authentication, local-file confinement and server death apply.
	Remote() bool
	// Start serves tr as cfg says and returns the endpoint that reaches
	// it. Everything it starts stops when t ends.
	Start(t testing.TB, tr insitu.Transform, cfg Config) *Endpoint
}

// InProcess is the reference harness: the transform is called directly,
// with the per-object timeout applied by a context.
func InProcess() Harness { return inProcess{} }

type inProcess struct{}

func (inProcess) Name() string { return "inproc" }
func (inProcess) Remote() bool { return false }

func (inProcess) Start(t testing.TB, tr insitu.Transform, cfg Config) *Endpoint {
	f := insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		if cfg.Timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, cfg.Timeout)
			defer cancel()
		}
		return tr.Transform(ctx, in, out)
	})
	return &Endpoint{Client: f}
}
