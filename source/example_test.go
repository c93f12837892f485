package source_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/source"
)

// exampleTree makes a small directory of audio files for the examples.
func exampleTree() string {
	root, err := os.MkdirTemp("", "insitu-example-")
	if err != nil {
		panic(err)
	}
	for k, v := range map[string]string{
		"a/1.flac":   "flac one",
		"a/2.txt":    "notes",
		"a-b.flac":   "flac two",
		"b/c/3.flac": "flac three",
	} {
		p := filepath.Join(root, filepath.FromSlash(k))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(v), 0o644)
	}
	return root
}

// List the .flac files of a directory, in key order ("a-b" sorts before
// "a/1", as in S3).
func ExampleDir() {
	root := exampleTree()
	defer os.RemoveAll(root)

	src, err := source.Dir(root, &source.DirOptions{Bucket: "audio", Suffix: ".flac"})
	if err != nil {
		panic(err)
	}
	for obj, err := range src.Objects(context.Background()) {
		if err != nil {
			fmt.Println("error:", err)
			continue
		}
		fmt.Println(obj.Name, obj.Size)
	}
	// Output:
	// audio/a-b.flac 8
	// audio/a/1.flac 8
	// audio/b/c/3.flac 10
}

// Resume a listing after the last key processed.
func ExampleDirOptions_startAfter() {
	root := exampleTree()
	defer os.RemoveAll(root)

	src, err := source.Dir(root, &source.DirOptions{StartAfter: "a/1.flac"})
	if err != nil {
		panic(err)
	}
	for obj, err := range src.Objects(context.Background()) {
		if err == nil {
			fmt.Println(obj.Name)
		}
	}
	// Output:
	// a/2.txt
	// b/c/3.flac
}

// Open an object by name.
func ExampleDirSource_Open() {
	root := exampleTree()
	defer os.RemoveAll(root)

	src, err := source.Dir(root, nil)
	if err != nil {
		panic(err)
	}
	rc, err := src.Open(context.Background(), insitu.Object{Name: insitu.Name{Key: "a/2.txt"}})
	if err != nil {
		panic(err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	fmt.Printf("%s\n", b)
	// Output: notes
}

// A source over given names: a missing name is an error for that name.
func ExampleNames() {
	root := exampleTree()
	defer os.RemoveAll(root)

	dir, err := source.Dir(root, nil)
	if err != nil {
		panic(err)
	}
	src := source.Names(dir, insitu.Name{Key: "a/2.txt"}, insitu.Name{Key: "a/9.txt"})
	for obj, err := range src.Objects(context.Background()) {
		if err != nil {
			fmt.Println("error:", insitu.CodeOf(err))
			continue
		}
		fmt.Println(obj.Name, obj.Size)
	}
	// Output:
	// a/2.txt 5
	// error: not_found
}

func ExampleExpandTemplate() {
	keys, err := source.ExpandTemplate("shard-{a,b}-{0000..0020..10}.tar")
	if err != nil {
		panic(err)
	}
	for k := range keys {
		fmt.Println(k)
	}
	// Output:
	// shard-a-0000.tar
	// shard-a-0010.tar
	// shard-a-0020.tar
	// shard-b-0000.tar
	// shard-b-0010.tar
	// shard-b-0020.tar
}

func ExampleTemplate() {
	root := exampleTree()
	defer os.RemoveAll(root)

	dir, err := source.Dir(root, nil)
	if err != nil {
		panic(err)
	}
	src, err := source.Template(dir, "audio", "{a/1,a-b,b/c/3}.flac")
	if err != nil {
		panic(err)
	}
	for obj, err := range src.Objects(context.Background()) {
		if err == nil {
			fmt.Println(obj.Name, obj.Size)
		}
	}
	// Output:
	// audio/a/1.flac 8
	// audio/a-b.flac 8
	// audio/b/c/3.flac 10
}
