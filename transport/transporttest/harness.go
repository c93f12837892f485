// Package transporttest is the conformance kit of package transport, in
// two suites:
//
//   - [Run] checks a way of reaching a transform from Go — the WebSocket
//     stream, hpush, hpull, and the transform called in-process as the
//     reference — through the [insitu.Transform] it gives, started by a
//     [Harness] for each test.
//   - [RunServer] checks a transform server at a URL on the wire, with raw
//     HTTP calls and raw WebSocket frames as docs/PROTOCOL.md specifies
//     them, so that a server written in any language can prove it
//     conforms: it serves [Conformance], whose behaviour the suite knows.
//
// [InProcess] and [Server] make the harnesses of insitu's own
// implementations; a new way of reaching a transform fills in a Harness of
// its own and calls Run.
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
	// Timeout is the server's per-object timeout; 0 for the server's
	// default.
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

// Harness starts the implementation under test; [Run] takes one. It has
// the shape of the harnesses of packages sinktest and sourcetest: a
// struct of fields, the required ones documented so.
type Harness struct {
	// Name names the implementation in test names. Required.
	Name string
	// Start serves tr as cfg says and returns the endpoint that reaches
	// it; everything it starts stops when t ends. An error is the
	// client's refusal to connect (a wrong secret, say), which the suite
	// expects only where it says so; a failure to start anything else
	// fails t. Required.
	Start func(t *testing.T, tr insitu.Transform, cfg Config) (*Endpoint, error)
	// Remote says that the transform runs behind a server, so that
	// authentication, local-file confinement, a server's death and the
	// report of a panic apply.
	Remote bool
	// SendsBytes says that the client sends the input's bytes
	// (Input.Body) itself, so that it checks them: a nil Body, and a Body
	// that ends before Input.Size bytes or goes on after them, are
	// InvalidArgument errors, and a mismatch is never transformed as if
	// the input were whole.
	SendsBytes bool
}

// InProcess is the reference harness: the transform is called directly,
// with the per-object timeout applied by a context.
func InProcess() Harness {
	return Harness{
		Name: "inproc",
		Start: func(_ *testing.T, tr insitu.Transform, cfg Config) (*Endpoint, error) {
			f := insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
				if cfg.Timeout > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, cfg.Timeout)
					defer cancel()
				}
				return tr.Transform(ctx, in, out)
			})
			return &Endpoint{Client: f}, nil
		},
	}
}
