package cluster_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"strings"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/cluster"
	"github.com/insitu-data/insitu/node/nodetest"
)

// A job on a cluster of three storage nodes (an embedded one, started on
// 127.0.0.1 for the example): every node upper-cases the .txt objects it
// owns, reading them from its own disk, and puts each output, renamed to
// .md, straight to the node that owns the output's name.
func ExampleRun() {
	ctx := context.Background()
	upper := insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		b, err := io.ReadAll(in.Body) // tiny objects; real transforms stream
		if err != nil {
			return err
		}
		_, err = io.WriteString(out, strings.ToUpper(string(b)))
		return err
	})
	c, err := nodetest.Start(ctx, 3, &nodetest.Options{Transforms: map[string]insitu.Transform{"upper": upper}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	for i := range 6 {
		name := insitu.Name{Bucket: "docs", Key: fmt.Sprintf("note-%d.txt", i)}
		if _, err := c.Put(ctx, name, strings.NewReader(fmt.Sprintf("note %d", i)), -1); err != nil {
			log.Fatal(err)
		}
	}

	rep, err := cluster.Run(ctx, c.Client(), cluster.JobSpec{
		Bucket: "docs", DstBucket: "upper", Transform: "upper",
		Rename: &cluster.RenameExt{From: ".txt", To: ".md"},
	}, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listed %d, transformed %d, failed %d, nodes %d\n", rep.Listed, rep.Transformed, rep.Failed, len(rep.Nodes))
	rc, _, err := c.Client().Get(ctx, insitu.Name{Bucket: "upper", Key: "note-4.md"})
	if err != nil {
		log.Fatal(err)
	}
	defer rc.Close()
	io.Copy(os.Stdout, rc)
	fmt.Println()
	// Output:
	// listed 6, transformed 6, failed 0, nodes 3
	// NOTE 4
}
