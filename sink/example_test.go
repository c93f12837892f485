package sink_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

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
	src, err := source.Dir(in, nil)
	if err != nil {
		log.Fatal(err)
	}
	dst, err := sink.Dir(out, nil)
	if err != nil {
		log.Fatal(err)
	}
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

	dst, err := sink.Dir(out, nil)
	if err != nil {
		log.Fatal(err)
	}
	_, err = dst.Put(context.Background(), insitu.Name{Key: "k"}, strings.NewReader("12345"), 4)
	fmt.Println(insitu.CodeOf(err))
	_, err = dst.Stat(context.Background(), insitu.Name{Key: "k"})
	fmt.Println(insitu.CodeOf(err))
	// Output:
	// invalid_argument
	// not_found
}

// Remove what Puts interrupted by a crash left behind: temporary files
// older than an hour, an age no Put of this program reaches, so that a
// Put running in another process keeps its file.
func ExampleDirSink_Sweep() {
	out, _ := os.MkdirTemp("", "insitu-out-")
	defer os.RemoveAll(out)
	ctx := context.Background()
	dst, err := sink.Dir(out, nil)
	if err != nil {
		log.Fatal(err)
	}
	dst.Put(ctx, insitu.Name{Key: "songs/a.wav"}, strings.NewReader("RIFF"), 4)

	// What a Put killed midway two days ago left next to its object.
	stale := filepath.Join(out, "songs", sink.TempPrefix+"4f1c9a0d2b7e83a6")
	os.WriteFile(stale, []byte("RI"), 0o644)
	twoDaysAgo := time.Now().Add(-48 * time.Hour)
	os.Chtimes(stale, twoDaysAgo, twoDaysAgo)

	n, err := dst.Sweep(ctx, time.Hour)
	fmt.Println("removed", n, err)
	src, err := source.Dir(out, nil)
	if err != nil {
		log.Fatal(err)
	}
	for obj, err := range src.Objects(ctx) {
		fmt.Println(obj.Name, obj.Size, err)
	}
	entries, _ := os.ReadDir(filepath.Join(out, "songs"))
	fmt.Println(len(entries), "file in songs/")
	// Output:
	// removed 1 <nil>
	// songs/a.wav 4 <nil>
	// 1 file in songs/
}

// Discard counts the bytes and stores nothing: a dry run.
func ExampleDiscard() {
	res, err := sink.Discard().Put(context.Background(), insitu.Name{Key: "k"}, strings.NewReader("some bytes"), -1)
	fmt.Println(res.Size, err)
	// Output: 10 <nil>
}
