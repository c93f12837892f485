package exec_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/transform/exec"
)

// Run tr over an object: without {input} the body streams to tr's standard
// input, and its standard output is the output.
func ExampleNew() {
	upper, err := exec.New([]string{"tr", "a-z", "A-Z"}, nil)
	if err != nil {
		fmt.Println(err) // names the program when it is not installed
		return
	}
	in := &insitu.Input{Object: insitu.Object{Name: insitu.Name{Key: "greeting.txt"}}, Body: strings.NewReader("hello, insitu\n")}
	var out bytes.Buffer
	if err := upper.Transform(context.Background(), in, &out); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(out.String())
	// Output:
	// HELLO, INSITU
}

// A job's args reach the program as separate arguments, each checked by
// the allow-list: they can never add an option or name a file.
func ExampleDefaultAllowArg() {
	for _, arg := range []string{"hello", "-rf", "/etc/passwd", "../x"} {
		fmt.Println(arg, "->", exec.DefaultAllowArg(arg))
	}
	// Output:
	// hello -> <nil>
	// -rf -> argument "-rf" starts with '-': job args cannot add options
	// /etc/passwd -> argument "/etc/passwd" contains a path separator: job args cannot name files
	// ../x -> argument "../x" contains a path separator: job args cannot name files
}
