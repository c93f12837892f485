package compress_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/transform/compress"
)

func Example() {
	ctx := context.Background()
	var packed, unpacked bytes.Buffer
	text := strings.Repeat("in situ, in place. ", 100)
	if err := compress.Zstd(nil).Transform(ctx, &insitu.Input{Body: strings.NewReader(text)}, &packed); err != nil {
		fmt.Println(err)
		return
	}
	size := packed.Len()
	if err := compress.Unzstd(nil).Transform(ctx, &insitu.Input{Body: &packed}, &unpacked); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(size < len(text), unpacked.String() == text)

	// Input that is not gzip fails with InvalidArgument.
	err := compress.Gunzip(nil).Transform(ctx, &insitu.Input{Body: strings.NewReader(text)}, &unpacked)
	fmt.Println(insitu.CodeOf(err), err)
	// Output:
	// true true
	// invalid_argument gunzip: not a gzip stream: gzip: invalid header (invalid_argument)
}
