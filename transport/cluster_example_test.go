package transport_test

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/node/nodetest"
	"github.com/insitu-data/insitu/pipeline"
	"github.com/insitu-data/insitu/sink"
	"github.com/insitu-data/insitu/source"
	"github.com/insitu-data/insitu/transport"
)

// Remote mode over an embedded cluster with a transform server next to each
// node: the client sends each object's server a control message only; the
// server reads the object from its owner's disk (LocalPath) and puts the
// output straight to the output's owner.
func ExampleCluster() {
	ctx := context.Background()
	reverse := insitu.TransformFunc(func(_ context.Context, in *insitu.Input, out io.Writer) error {
		b, err := io.ReadAll(in.Body)
		if err != nil {
			return err
		}
		for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
			b[i], b[j] = b[j], b[i]
		}
		_, err = out.Write(b)
		return err
	})
	c, err := nodetest.Start(ctx, 3, &nodetest.Options{Sidecar: reverse})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	for _, key := range []string{"one", "two", "three"} {
		if _, err := c.Put(ctx, insitu.Name{Bucket: "words", Key: key}, strings.NewReader(key), -1); err != nil {
			panic(err)
		}
	}

	t, err := transport.Cluster(c.Client(), &transport.ClusterOptions{Mode: transport.WS, LocalPath: c.LocalPath})
	if err != nil {
		panic(err)
	}
	defer t.Close()
	src, err := source.Cluster(c.Client(), "words", nil)
	if err != nil {
		panic(err)
	}
	dst, err := sink.Cluster(c.Client())
	if err != nil {
		panic(err)
	}
	rep, err := pipeline.Run(ctx, src, t, dst, &pipeline.Options{
		DirectPut: true,
		Rename:    func(n insitu.Name) (insitu.Name, error) { return insitu.Name{Bucket: "drow", Key: n.Key}, nil },
		Progress:  func(pipeline.Stats) {},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println("transformed", rep.Transformed)
	for _, key := range []string{"one", "two", "three"} {
		rc, obj, err := c.Client().Get(ctx, insitu.Name{Bucket: "drow", Key: key})
		if err != nil {
			panic(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		fmt.Printf("%s → %s (on %s)\n", key, b, obj.Owner)
	}
	// Output:
	// transformed 3
	// one → eno (on n1)
	// two → owt (on n2)
	// three → eerht (on n2)
}
