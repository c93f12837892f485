package transport_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"

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
