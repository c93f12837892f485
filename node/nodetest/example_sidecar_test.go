package nodetest_test

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/cluster"
	"github.com/insitu-data/insitu/node/nodetest"
	"github.com/insitu-data/insitu/pipeline"
	"github.com/insitu-data/insitu/sink"
	"github.com/insitu-data/insitu/source"
	"github.com/insitu-data/insitu/transport"
)

// upper is the transform the examples' transform servers run.
var upper = insitu.TransformFunc(func(_ context.Context, in *insitu.Input, out io.Writer) error {
	b, err := io.ReadAll(in.Body)
	if err != nil {
		return err
	}
	_, err = io.WriteString(out, strings.ToUpper(string(b)))
	return err
})

// seedDocs puts three small objects into bucket docs, each on its owner.
func seedDocs(ctx context.Context, c *nodetest.Cluster) {
	for _, key := range []string{"a.txt", "b.txt", "notes/c.txt"} {
		if _, err := c.Put(ctx, insitu.Name{Bucket: "docs", Key: key}, strings.NewReader("hello from "+key), -1); err != nil {
			panic(err)
		}
	}
}

// printBucket prints every object of bucket with its owner.
func printBucket(ctx context.Context, c *nodetest.Cluster, bucket string) {
	src, err := source.Cluster(c.Client(), bucket, nil)
	if err != nil {
		panic(err)
	}
	for obj, err := range src.Objects(ctx) {
		if err != nil {
			panic(err)
		}
		rc, _, err := c.Client().Get(ctx, obj.Name)
		if err != nil {
			panic(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			panic(err)
		}
		fmt.Printf("%s on %s: %s\n", obj.Name, obj.Owner, b)
	}
}

// Sidecar mode: a transform server next to each node, and a job that
// every node runs through its own. Here the nodes pass the server each
// input's local path (the server shares their disk) and the server puts
// each output straight to its owner.
func ExampleStart_sidecar() {
	ctx := context.Background()
	c, err := nodetest.Start(ctx, 3, &nodetest.Options{Sidecar: upper})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	seedDocs(ctx, c)

	spec := cluster.JobSpec{
		Bucket: "docs", DstBucket: "shout",
		Server: &cluster.ServerSpec{Mode: transport.WS, LocalFile: true, DirectPut: true},
	}
	rep, err := cluster.Run(ctx, c.Client(), spec, &cluster.Options{Progress: func(pipeline.Stats) {}})
	if err != nil {
		panic(err)
	}
	fmt.Printf("transformed %d, failed %d\n", rep.Transformed, rep.Failed)
	printBucket(ctx, c, "shout")
	// Output:
	// transformed 3, failed 0
	// shout/a.txt on n1: HELLO FROM A.TXT
	// shout/b.txt on n2: HELLO FROM B.TXT
	// shout/notes/c.txt on n3: HELLO FROM NOTES/C.TXT
}

// Remote mode: a client drives the cluster's transform servers. For each
// object it sends only a control message to the server next to the
// object's owner, which fetches the bytes from the owner on loopback and
// puts the output straight to the output's owner: no payload passes
// through the client.
func ExampleStart_remote() {
	ctx := context.Background()
	c, err := nodetest.Start(ctx, 3, &nodetest.Options{Sidecar: upper})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	seedDocs(ctx, c)

	client := c.Client() // any locality.Client with the cluster's map and secret
	t, err := transport.Cluster(client, &transport.ClusterOptions{Mode: transport.HPull})
	if err != nil {
		panic(err)
	}
	defer t.Close()
	src, err := source.Cluster(client, "docs", nil)
	if err != nil {
		panic(err)
	}
	dst, err := sink.Cluster(client)
	if err != nil {
		panic(err)
	}
	rep, err := pipeline.Run(ctx, src, t, dst, &pipeline.Options{
		DirectPut: true,
		Rename:    func(n insitu.Name) (insitu.Name, error) { return insitu.Name{Bucket: "loud", Key: n.Key}, nil },
		Progress:  func(pipeline.Stats) {},
	})
	if err != nil {
		panic(err)
	}
	fmt.Printf("transformed %d, wrote %d bytes\n", rep.Transformed, rep.BytesOut)
	printBucket(ctx, c, "loud")
	// Output:
	// transformed 3, wrote 54 bytes
	// loud/a.txt on n2: HELLO FROM A.TXT
	// loud/b.txt on n3: HELLO FROM B.TXT
	// loud/notes/c.txt on n3: HELLO FROM NOTES/C.TXT
}
