package nodetest_test

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/node/nodetest"
)

func ExampleStart() {
	ctx := context.Background()
	c, err := nodetest.Start(ctx, 3, nil)
	if err != nil {
		panic(err)
	}
	defer c.Close()

	// Each object goes straight to the node that owns its name.
	client := c.Client()
	for _, key := range []string{"a.flac", "b.flac", "dir/track-01.flac"} {
		res, err := client.Put(ctx, insitu.Name{Bucket: "audio", Key: key}, strings.NewReader("bytes of "+key), -1)
		if err != nil {
			panic(err)
		}
		fmt.Printf("%s: %d bytes on %s\n", key, res.Size, res.Owner)
	}

	rc, obj, err := client.Get(ctx, insitu.Name{Bucket: "audio", Key: "b.flac"})
	if err != nil {
		panic(err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	fmt.Printf("read %q from %s\n", b, obj.Owner)

	// Each node lists what it stores.
	for _, n := range c.Nodes() {
		page, err := n.List(ctx, "audio", nil)
		if err != nil {
			panic(err)
		}
		for _, o := range page.Objects {
			fmt.Println(n.ID(), "holds", o.Name.Key)
		}
	}
	// Output:
	// a.flac: 15 bytes on n2
	// b.flac: 15 bytes on n1
	// dir/track-01.flac: 26 bytes on n3
	// read "bytes of b.flac" from n1
	// n1 holds b.flac
	// n2 holds a.flac
	// n3 holds dir/track-01.flac
}
