package sourcetest_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/source"
	"github.com/insitu-data/insitu/source/sourcetest"
)

// A source's own tests call Run with a harness that makes a source over
// given objects. In a _test.go file that is simply
//
//	func TestDirSource(t *testing.T) { sourcetest.Run(t, harness) }
//
// Here the suite runs through testing.RunTests, so that the example runs.
func Example() {
	harness := sourcetest.Harness{
		MakeSource: func(t *testing.T, objects map[string][]byte) insitu.Source {
			root := t.TempDir()
			for key, b := range objects {
				p := filepath.Join(root, filepath.FromSlash(key))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			src, err := source.Dir(root, nil)
			if err != nil {
				t.Fatal(err)
			}
			return src
		},
	}
	// Under go test -v the suite's own "=== RUN" lines would join this
	// example's output: run it quietly.
	if v := flag.Lookup("test.v"); v != nil {
		defer v.Value.Set(v.Value.String())
		v.Value.Set("false")
	}
	ok := testing.RunTests(func(_, _ string) (bool, error) { return true, nil }, []testing.InternalTest{
		{Name: "TestDirSource", F: func(t *testing.T) { sourcetest.Run(t, harness) }},
	})
	fmt.Println("source.Dir conforms:", ok)
	// Output: source.Dir conforms: true
}
