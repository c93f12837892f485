package seaweedfs_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"strings"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/pipeline"
	"github.com/insitu-data/insitu/seaweedfs"
	"github.com/insitu-data/insitu/seaweedfs/seaweedfstest"
)

// Names map to filer paths under the client's root, whose subdirectories
// are buckets: under the default root, those of SeaweedFS's S3 gateway.
func ExampleClient_Path() {
	c, err := seaweedfs.NewClient("http://127.0.0.1:8888", "http://127.0.0.1:9333", nil)
	if err != nil {
		log.Fatal(err)
	}
	p, err := c.Path(insitu.Name{Bucket: "audio", Key: "2024/clip.flac"})
	fmt.Println(p, err)
	name, err := c.Name("/buckets/audio/2024/clip.wav")
	fmt.Println(name, err)
	_, err = c.Name("/buckets/audio/a\x00b")
	fmt.Println(err)
	// Output:
	// /buckets/audio/2024/clip.flac <nil>
	// audio/2024/clip.wav <nil>
	// seaweedfs: filer path "/buckets/audio/a\x00b" is not a valid insitu name: key contains a NUL byte (invalid_argument)
}

// A pipeline over a SeaweedFS bucket: each output is put on the volume
// server that holds its input, and the topology gives the nodes that
// transform servers would run next to. (It needs weed, so go test only
// compiles it.)
func Example() {
	ctx := context.Background()
	cluster, err := seaweedfstest.StartProcess(ctx, nil) // or a cluster of your own
	if err != nil {
		log.Fatal(err)
	}
	defer cluster.Close()
	c, err := seaweedfs.NewClient(cluster.FilerURL, cluster.MasterURL, nil)
	if err != nil {
		log.Fatal(err)
	}
	sink, err := seaweedfs.NewSink(c, nil)
	if err != nil {
		log.Fatal(err)
	}
	for i, vs := range cluster.VolumeServers {
		name := insitu.Name{Bucket: "texts", Key: fmt.Sprintf("in/%d.txt", i)}
		if _, err := sink.PutOn(ctx, vs, name, strings.NewReader("hello"), 5); err != nil {
			log.Fatal(err)
		}
	}

	src, err := seaweedfs.NewSource(c, "texts", &seaweedfs.SourceOptions{Prefix: "in/"})
	if err != nil {
		log.Fatal(err)
	}
	owners := map[insitu.Name]string{} // input → its volume server
	for obj, err := range src.Objects(ctx) {
		if err != nil {
			log.Fatal(err)
		}
		owners[obj.Name] = obj.Owner
	}
	out := func(in insitu.Name) insitu.Name { return insitu.Name{Bucket: "upper", Key: in.Key} }
	local, err := seaweedfs.NewSink(c, &seaweedfs.SinkOptions{Pin: func(n insitu.Name) string {
		return owners[insitu.Name{Bucket: "texts", Key: n.Key}] // the output's input's owner
	}})
	if err != nil {
		log.Fatal(err)
	}
	upper := insitu.TransformFunc(func(_ context.Context, in *insitu.Input, w io.Writer) error {
		b, err := io.ReadAll(in.Body)
		if err != nil {
			return err
		}
		_, err = w.Write([]byte(strings.ToUpper(string(b))))
		return err
	})
	rep, err := pipeline.Run(ctx, src, upper, local, &pipeline.Options{
		Rename: func(n insitu.Name) (insitu.Name, error) { return out(n), nil },
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("transformed:", rep.Transformed)

	topo, err := seaweedfs.NewTopology(c, &seaweedfs.TopologyOptions{
		TransformURL: func(addr string) string { return "" }, // where the transform server next to addr listens
	})
	if err != nil {
		log.Fatal(err)
	}
	m, err := topo.Map(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("nodes:", m.Len())
	// With weed installed, this prints
	//	transformed: 3
	//	nodes: 3
}
