package putcheck_test

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/putcheck"
)

// A Put wraps its input in a Reader, copies from it to where the object
// goes, and returns the Reader's result only when the copy ends with no
// error; otherwise it discards what it wrote.
func Example() {
	ctx := context.Background()
	name := insitu.Name{Bucket: "out", Key: "a.txt"}
	for _, tc := range []struct {
		body string
		size int64
	}{{"hello", 5}, {"hello", -1}, {"hello", 4}, {"hello", 6}} {
		c, err := putcheck.New(ctx, name, strings.NewReader(tc.body), tc.size, 0)
		if err != nil {
			fmt.Println(err)
			continue
		}
		var stored strings.Builder
		if _, err := io.Copy(&stored, c); err != nil {
			fmt.Println(err)
			continue
		}
		res := c.Result()
		fmt.Println(res.Size, res.Checksum, stored.String())
	}
	// Output:
	// 5 26c7827d889f6da3 hello
	// 5 26c7827d889f6da3 hello
	// out/a.txt: the input is longer than its size 4 (invalid_argument)
	// out/a.txt: the input is 5 bytes, shorter than its size 6 (invalid_argument)
}
