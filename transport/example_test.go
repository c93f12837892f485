package transport_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/transport"
)

// Serve a transform and call it over each transport.
func Example() {
	upper := insitu.TransformFunc(func(_ context.Context, in *insitu.Input, out io.Writer) error {
		b, err := io.ReadAll(in.Body)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(out, "%s %s", strings.ToUpper(string(b)), in.Args)
		return err
	})
	srv, err := transport.NewServer(upper, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	hs := httptest.NewServer(srv) // on 127.0.0.1
	defer hs.Close()

	ctx := context.Background()
	for _, mode := range []transport.Mode{transport.WS, transport.HPush} {
		c, err := transport.Dial(ctx, hs.URL, &transport.DialOptions{Mode: mode})
		if err != nil {
			fmt.Println(err)
			return
		}
		in := &insitu.Input{
			Object: insitu.Object{Name: insitu.Name{Bucket: "docs", Key: "hello.txt"}, Size: 5},
			Args:   "(via " + mode.String() + ")",
			Body:   strings.NewReader("hello"),
		}
		var out bytes.Buffer
		if err := c.Transform(ctx, in, &out); err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(out.String())
		c.Close()
	}
	// Output:
	// HELLO (via ws)
	// HELLO (via hpush)
}

// A transform's error reaches the client with its code and message.
func ExampleClient_Transform_error() {
	fail := insitu.TransformFunc(func(context.Context, *insitu.Input, io.Writer) error {
		return insitu.Errorf(insitu.InvalidArgument, "not a FLAC file")
	})
	srv, err := transport.NewServer(fail, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	c, err := transport.Dial(context.Background(), hs.URL, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	in := &insitu.Input{Object: insitu.Object{Name: insitu.Name{Bucket: "music", Key: "a.flac"}, Size: 3}, Body: strings.NewReader("abc")}
	err = c.Transform(context.Background(), in, io.Discard)
	fmt.Println(err)
	fmt.Println(insitu.CodeOf(err) == insitu.InvalidArgument)
	// Output:
	// music/a.flac: not a FLAC file (invalid_argument)
	// true
}

func ExampleModes() {
	for _, m := range transport.Modes() {
		fmt.Println(m)
	}
	// Output:
	// ws
	// hpush
	// hpull
}

// shout upper-cases its inputs, one at a time or in batches, and records
// the size of each batch it gets.
type shout struct {
	mu      sync.Mutex
	batches []int
}

func (s *shout) Transform(_ context.Context, in *insitu.Input, out io.Writer) error {
	b, err := io.ReadAll(in.Body)
	if err != nil {
		return err
	}
	_, err = out.Write(bytes.ToUpper(b))
	return err
}

func (s *shout) TransformBatch(_ context.Context, ins []*insitu.Input) ([]io.ReadCloser, error) {
	s.mu.Lock()
	s.batches = append(s.batches, len(ins))
	s.mu.Unlock()
	outs := make([]io.ReadCloser, len(ins))
	for i, in := range ins {
		b, err := io.ReadAll(in.Body)
		if err != nil {
			return nil, err
		}
		outs[i] = io.NopCloser(bytes.NewReader(bytes.ToUpper(b)))
	}
	return outs, nil
}

// A server whose transform is an insitu.BatchTransform groups the requests
// that arrive together: here three local files, asked for at once, go to
// one TransformBatch call, and each request gets its own output.
func ExampleServer_batch() {
	dir, err := os.MkdirTemp("", "batch")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	keys := []string{"a.txt", "b.txt", "c.txt"}
	for _, k := range keys {
		if err := os.WriteFile(filepath.Join(dir, k), []byte("hello from "+k), 0o644); err != nil {
			fmt.Println(err)
			return
		}
	}

	tr := &shout{}
	srv, err := transport.NewServer(tr, &transport.ServerOptions{
		Roots: []string{dir},
		// A batch goes when it holds 3 requests, or a second after its first.
		Batch: &transport.BatchOptions{Size: 3, Wait: time.Second},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer srv.Shutdown(context.Background())

	ctx := context.Background()
	c, err := transport.Dial(ctx, hs.URL, &transport.DialOptions{Mode: transport.HPull, LocalFile: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	outs := make([]string, len(keys))
	var wg sync.WaitGroup
	for i, k := range keys {
		wg.Go(func() {
			in := &insitu.Input{Object: insitu.Object{Name: insitu.Name{Bucket: "docs", Key: k}, Size: -1, Path: filepath.Join(dir, k)}}
			var out bytes.Buffer
			if err := c.Transform(ctx, in, &out); err != nil {
				outs[i] = err.Error()
				return
			}
			outs[i] = out.String()
		})
	}
	wg.Wait()
	for _, o := range outs {
		fmt.Println(o)
	}
	fmt.Println("batch calls:", tr.batches)
	// Output:
	// HELLO FROM A.TXT
	// HELLO FROM B.TXT
	// HELLO FROM C.TXT
	// batch calls: [3]
}
