package sinktest_test

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/sink"
	"github.com/insitu-data/insitu/sink/sinktest"
)

// A sink's own tests call Run with a harness that makes fresh sinks and
// reads back what they stored. In a _test.go file that is simply
//
//	func TestDirSink(t *testing.T) { sinktest.Run(t, harness) }
//
// Here the suite runs through testing.RunTests, so that the example runs.
func Example() {
	harness := sinktest.Harness{
		MakeSink: func(t *testing.T) insitu.Sink {
			s, err := sink.Dir(t.TempDir(), &sink.DirOptions{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		Read: func(t *testing.T, s insitu.Sink, name insitu.Name) ([]byte, error) {
			b, err := os.ReadFile(filepath.Join(s.(*sink.DirSink).Root(), filepath.FromSlash(name.Key)))
			if errors.Is(err, fs.ErrNotExist) {
				return nil, &insitu.Error{Code: insitu.NotFound, Name: name}
			}
			return b, err
		},
	}
	// Under go test -v the suite's own "=== RUN" lines would join this
	// example's output: run it quietly.
	if v := flag.Lookup("test.v"); v != nil {
		defer v.Value.Set(v.Value.String())
		v.Value.Set("false")
	}
	ok := testing.RunTests(func(_, _ string) (bool, error) { return true, nil }, []testing.InternalTest{
		{Name: "TestDirSink", F: func(t *testing.T) { sinktest.Run(t, harness) }},
	})
	fmt.Println("sink.Dir conforms:", ok)
	// Output: sink.Dir conforms: true
}
