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

// Convert every .txt file of a folder to upper case, as .md files in
// another folder: Source → Transform → Sink.
func ExampleRun() {
	in, _ := os.MkdirTemp("", "insitu-example-in")
	out, _ := os.MkdirTemp("", "insitu-example-out")
	defer os.RemoveAll(in)
	defer os.RemoveAll(out)
	os.WriteFile(filepath.Join(in, "a.txt"), []byte("hello\n"), 0o644)
	os.MkdirAll(filepath.Join(in, "notes"), 0o755)
	os.WriteFile(filepath.Join(in, "notes", "b.txt"), []byte("world\n"), 0o644)

	upper := insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		b, err := io.ReadAll(in.Body) // tiny files; real transforms stream
		if err != nil {
			return err
		}
		_, err = out.Write(bytes.ToUpper(b))
		return err
	})
	src, err := source.Dir(in, &source.DirOptions{Suffix: ".txt"})
	if err != nil {
		log.Fatal(err)
	}
	dst, err := sink.Dir(out, nil)
	if err != nil {
		log.Fatal(err)
	}
	rep, err := pipeline.Run(context.Background(),
		src,
		upper,
		dst,
		&pipeline.Options{Rename: pipeline.ReplaceExt(".txt", ".md"), Workers: 2})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listed %d, transformed %d, failed %d, bytes out %d\n", rep.Listed, rep.Transformed, rep.Failed, rep.BytesOut)
	b, _ := os.ReadFile(filepath.Join(out, "notes", "b.md"))
	fmt.Print(string(b))
	// Output:
	// listed 2, transformed 2, failed 0, bytes out 12
	// WORLD
}
