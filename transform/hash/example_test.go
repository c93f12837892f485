package hash_test

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/transform/hash"
)

func Example() {
	in := &insitu.Input{Args: "42", Body: strings.NewReader("hello")}
	if err := hash.XXH64().Transform(context.Background(), in, os.Stdout); err != nil {
		fmt.Println(err)
	}
	fmt.Println()
	in = &insitu.Input{Body: strings.NewReader("hello")}
	if err := hash.MD5().Transform(context.Background(), in, os.Stdout); err != nil {
		fmt.Println(err)
	}
	fmt.Println()
	// Output:
	// c3629e6318d53932
	// 5d41402abc4b2a76b9719d911017c592
}
