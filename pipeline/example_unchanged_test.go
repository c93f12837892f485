package pipeline_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/pipeline"
	"github.com/insitu-data/insitu/sink"
	"github.com/insitu-data/insitu/source"
)

// Bring outputs up to date: each output records where it came from (the
// input's version, the transform ID, the args), so a rerun with
// SkipUnchanged makes again only the outputs whose input changed.
func ExampleOptions_skipUnchanged() {
	in, _ := os.MkdirTemp("", "insitu-example-in")
	out, _ := os.MkdirTemp("", "insitu-example-out")
	defer os.RemoveAll(in)
	defer os.RemoveAll(out)
	for _, name := range []string{"a.txt", "b.txt", "c.txt"} {
		os.WriteFile(filepath.Join(in, name), []byte("hello from "+name+"\n"), 0o644)
	}
	upper := insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		b, err := io.ReadAll(in.Body) // tiny files; real transforms stream
		if err != nil {
			return err
		}
		_, err = out.Write(bytes.ToUpper(b))
		return err
	})
	src, err := source.Dir(in, nil)
	if err != nil {
		log.Fatal(err)
	}
	dst, err := sink.Dir(out, nil)
	if err != nil {
		log.Fatal(err)
	}
	// Name the transform, and change the name when what it does changes.
	opts := &pipeline.Options{SkipUnchanged: true, TransformID: "upper/1"}
	run := func(what string) {
		rep, err := pipeline.Run(context.Background(), src, upper, dst, opts)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s: transformed %d, skipped %d\n", what, rep.Transformed, rep.Skipped)
	}
	run("first run")
	run("rerun")
	os.WriteFile(filepath.Join(in, "b.txt"), []byte("b was edited\n"), 0o644)
	run("after editing b.txt")
	b, _ := os.ReadFile(filepath.Join(out, "b.txt"))
	fmt.Print(string(b))
	opts.TransformID = "upper/2"
	run("with a new transform")
	// Output:
	// first run: transformed 3, skipped 0
	// rerun: transformed 0, skipped 3
	// after editing b.txt: transformed 1, skipped 2
	// B WAS EDITED
	// with a new transform: transformed 3, skipped 0
}
