package transform_test

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/transform"
	"github.com/insitu-data/insitu/transform/compress"
	"github.com/insitu-data/insitu/transform/hash"
)

func Example() {
	ctx := context.Background()
	// Compress, decompress and hash each object in one streaming pass.
	md5OfRoundTrip := transform.Chain(compress.Zstd(nil), compress.Unzstd(nil), hash.MD5())
	in := &insitu.Input{Body: strings.NewReader("hello")}
	if err := md5OfRoundTrip.Transform(ctx, in, os.Stdout); err != nil {
		fmt.Println(err)
	}
	fmt.Println()

	// A failing stage is named in the error, which keeps its code.
	in = &insitu.Input{Body: strings.NewReader("hello")}
	err := transform.Chain(compress.Gunzip(nil), hash.MD5()).Transform(ctx, in, os.Stdout)
	fmt.Println(insitu.CodeOf(err))
	fmt.Println(err)
	// Output:
	// 5d41402abc4b2a76b9719d911017c592
	// invalid_argument
	// stage 1 of 2 (gunzip): gunzip: not a gzip stream: gzip: invalid header (invalid_argument)
}
