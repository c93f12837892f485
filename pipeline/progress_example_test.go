package pipeline_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/pipeline"
	"github.com/insitu-data/insitu/sink"
	"github.com/insitu-data/insitu/source"
)

// A live line on a terminal: each call redraws it, the final call ends it.
// (Here into a buffer, to show the bytes a terminal gets.)
func ExampleTerminalProgress() {
	var term bytes.Buffer
	progress := pipeline.TerminalProgress(&term)
	progress(pipeline.Stats{Listed: 10, ListingDone: true, Transformed: 4, BytesIn: 4e6, BytesOut: 8e6, Elapsed: 2 * time.Second})
	progress(pipeline.Stats{Listed: 10, ListingDone: true, Transformed: 10, BytesIn: 1e7, BytesOut: 2e7, Elapsed: 5 * time.Second, Final: true})
	fmt.Printf("%q\n", term.String())
	// Output:
	// "\r4/10 objects  2.0 obj/s  in 2.0 MB/s  out 4.0 MB/s  ETA 3s\x1b[K\r10/10 objects  2.0 obj/s  in 2.0 MB/s  out 4.0 MB/s\x1b[K\n"
}

// A line per call for a log or a pipe, the last one marked; a CLI picks
// this one when its output is not a terminal, with a longer interval.
func ExampleLogProgress() {
	progress := pipeline.LogProgress(os.Stdout)
	progress(pipeline.Stats{Listed: 7, Transformed: 4, BytesIn: 4e6, BytesOut: 8e6, Elapsed: 2 * time.Second})
	progress(pipeline.Stats{Listed: 10, ListingDone: true, Transformed: 9, Failed: 1, BytesIn: 1e7, BytesOut: 2e7, Elapsed: 5 * time.Second, Final: true})
	// Output:
	// progress at 2s: 4/7+ objects  2.0 obj/s  in 2.0 MB/s  out 4.0 MB/s
	// progress at 5s (final): 10/10 objects  2.0 obj/s  in 2.0 MB/s  out 4.0 MB/s  failed 1
}

// What a command-line tool gives as its progress: a live line when its
// stderr is a terminal, else a line every 5 seconds of the run and the
// final one (here stdout, which go test makes a pipe).
func ExampleAutoProgress() {
	progress := pipeline.AutoProgress(os.Stdout, 5*time.Second)
	for sec := 1; sec <= 12; sec++ {
		progress(pipeline.Stats{Listed: 12, ListingDone: true, Transformed: int64(sec), Elapsed: time.Duration(sec) * time.Second, Final: sec == 12})
	}
	// Output:
	// progress at 1s: 1/12 objects  1.0 obj/s  in 0 B/s  out 0 B/s  ETA 11s
	// progress at 6s: 6/12 objects  1.0 obj/s  in 0 B/s  out 0 B/s  ETA 6s
	// progress at 11s: 11/12 objects  1.0 obj/s  in 0 B/s  out 0 B/s  ETA 1s
	// progress at 12s (final): 12/12 objects  1.0 obj/s  in 0 B/s  out 0 B/s
}

// Every failure of a run, as JSON lines, as it happens: here on stdout,
// usually in a file the caller creates (and closes after the run).
func ExampleFailureLog() {
	in, _ := os.MkdirTemp("", "insitu-example-in")
	defer os.RemoveAll(in)
	for _, name := range []string{"a.txt", "b.bin", "c.txt", "d.bin"} {
		os.WriteFile(filepath.Join(in, name), []byte(name), 0o644)
	}
	onlyText := insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		if !strings.HasSuffix(in.Name.Key, ".txt") {
			return insitu.Errorf(insitu.InvalidArgument, "not a .txt file")
		}
		_, err := io.Copy(out, in.Body)
		return err
	})

	src, err := source.Dir(in, &source.DirOptions{Bucket: "docs"})
	if err != nil {
		log.Fatal(err)
	}
	failures := pipeline.NewFailureLog(os.Stdout)
	rep, err := pipeline.Run(context.Background(), src, onlyText, sink.Discard(),
		&pipeline.Options{ContinueOnError: true, OnFailure: failures.Add, Workers: 1})
	if err == nil {
		err = failures.Err()
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("transformed %d, failed %d\n", rep.Transformed, rep.Failed)
	// Output:
	// {"name":{"bucket":"docs","key":"b.bin"},"code":"invalid_argument","message":"not a .txt file"}
	// {"name":{"bucket":"docs","key":"d.bin"},"code":"invalid_argument","message":"not a .txt file"}
	// transformed 2, failed 2
}
