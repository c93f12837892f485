package procio_test

import (
	"fmt"

	"github.com/insitu-data/insitu/internal/procio"
)

// A program's standard error, kept to its last bytes and told as one line.
func ExampleTail() {
	stderr := &procio.Tail{Max: 64}
	fmt.Fprint(stderr, "input.flac: Invalid data found\nwhen processing input\n")
	fmt.Println(stderr.OneLine("no message"))
	// Output: input.flac: Invalid data found; when processing input
}
