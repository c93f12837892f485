package sink_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/sink"
	"github.com/insitu-data/insitu/source"
)

// Copy every object of one directory into another, all or nothing per
// object, with the XXH64 of each.
func ExampleDir() {
	in, _ := os.MkdirTemp("", "insitu-in-")
	out, _ := os.MkdirTemp("", "insitu-out-")
	defer os.RemoveAll(in)
	defer os.RemoveAll(out)
	os.MkdirAll(filepath.Join(in, "songs"), 0o755)
	os.WriteFile(filepath.Join(in, "songs", "a.txt"), []byte("hello"), 0o644)
	os.WriteFile(filepath.Join(in, "readme"), []byte("insitu"), 0o644)

	ctx := context.Background()
	src := source.Dir(in, nil)
	dst := sink.Dir(out, nil)
	for obj, err := range src.Objects(ctx) {
		if err != nil {
			fmt.Println("error:", err)
			continue
		}
		rc, err := src.Open(ctx, obj)
		if err != nil {
			fmt.Println("error:", err)
			continue
		}
		res, err := dst.Put(ctx, obj.Name, rc, obj.Size)
		rc.Close()
		if err != nil {
			fmt.Println("error:", err)
			continue
		}
		fmt.Println(res.Name, res.Size, res.Checksum)
	}
	b, _ := os.ReadFile(filepath.Join(out, "songs", "a.txt"))
	fmt.Printf("%s\n", b)
	// Output:
	// readme 6 582119c4873023e1
	// songs/a.txt 5 26c7827d889f6da3
	// hello
}

// A size that does not match the input is refused, and nothing is stored.
func ExampleDirSink_Put_sizeMismatch() {
	out, _ := os.MkdirTemp("", "insitu-out-")
	defer os.RemoveAll(out)

	dst := sink.Dir(out, nil)
	_, err := dst.Put(context.Background(), insitu.Name{Key: "k"}, strings.NewReader("12345"), 4)
	fmt.Println(insitu.CodeOf(err))
	_, err = dst.Stat(context.Background(), insitu.Name{Key: "k"})
	fmt.Println(insitu.CodeOf(err))
	// Output:
	// invalid_argument
	// not_found
}

// Discard counts the bytes and stores nothing: a dry run.
func ExampleDiscard() {
	res, err := sink.Discard().Put(context.Background(), insitu.Name{Key: "k"}, strings.NewReader("some bytes"), -1)
	fmt.Println(res.Size, err)
	// Output: 10 <nil>
}
