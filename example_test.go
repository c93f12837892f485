package insitu_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/insitu-data/insitu"
)

// A transform is a function from one object's bytes to one output.
func ExampleTransformFunc() {
	upper := insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		if strings.HasSuffix(in.Name.Key, ".skip") {
			return insitu.ErrSkip
		}
		b, err := io.ReadAll(in.Body) // small example objects; real transforms stream
		if err != nil {
			return err
		}
		_, err = out.Write(bytes.ToUpper(b))
		return err
	})
	in := &insitu.Input{
		Object: insitu.Object{Name: insitu.Name{Bucket: "docs", Key: "hello.txt"}, Size: 5},
		Body:   strings.NewReader("hello"),
	}
	var out bytes.Buffer
	if err := upper.Transform(context.Background(), in, &out); err != nil {
		fmt.Println("error:", err)
	}
	fmt.Println(out.String())
	// Output: HELLO
}

// Errors carry a code that errors.Is can test.
func ExampleCodeOf() {
	err := insitu.Name{Bucket: "audio", Key: "../etc/passwd"}.Validate()
	fmt.Println(errors.Is(err, insitu.InvalidArgument), insitu.CodeOf(err))
	fmt.Println(err)
	// Output:
	// true invalid_argument
	// audio/../etc/passwd: key has a ".." path segment (invalid_argument)
}
