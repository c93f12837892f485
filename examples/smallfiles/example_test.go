package main

import (
	"context"
	"fmt"
	"io"
	"os"
)

// One mode on a few files: the table goes to the writer given, the progress
// lines to the other.
func Example() {
	data, _ := os.MkdirTemp("", "smallfiles-example-")
	defer os.RemoveAll(data)
	code := run(context.Background(), []string{"-modes", "discard", "-n", "100", "-rounds", "1", "-data", data}, io.Discard, io.Discard)
	fmt.Println("exit status", code)
	// Output: exit status 0
}
