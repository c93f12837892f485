package seaweedfs_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"strings"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/pipeline"
	"github.com/insitu-data/insitu/seaweedfs"
	"github.com/insitu-data/insitu/seaweedfs/seaweedfstest"
	"github.com/insitu-data/insitu/transport"
)

// Remote mode on SeaweedFS: a transform server next to each volume
// server; this process sends each object's server a control message
// only; the server fetches the object from its volume server and puts the
// output through the filer, pinned to that same volume server. (It needs
// weed, so go test only compiles it.)
func ExamplePlacement() {
	ctx := context.Background()
	cluster, err := seaweedfstest.StartProcess(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer cluster.Close()
	upper := insitu.TransformFunc(func(_ context.Context, in *insitu.Input, w io.Writer) error {
		b, err := io.ReadAll(in.Body)
		if err != nil {
			return err
		}
		_, err = w.Write([]byte(strings.ToUpper(string(b))))
		return err
	})
	// A transform server next to each volume server (here all in this
	// process, on 127.0.0.1).
	next := map[string]string{}
	for _, vs := range cluster.VolumeServers {
		srv, err := transport.NewServer(upper, nil)
		if err != nil {
			log.Fatal(err)
		}
		hs := httptest.NewServer(srv)
		defer hs.Close()
		next[vs] = hs.URL
	}

	c, err := seaweedfs.NewClient(cluster.FilerURL, cluster.MasterURL, nil)
	if err != nil {
		log.Fatal(err)
	}
	sink, err := seaweedfs.NewSink(c, nil)
	if err != nil {
		log.Fatal(err)
	}
	for i, vs := range cluster.VolumeServers {
		name := insitu.Name{Bucket: "texts", Key: fmt.Sprintf("%d.txt", i)}
		if _, err := sink.PutOn(ctx, vs, name, strings.NewReader("hello"), 5); err != nil {
			log.Fatal(err)
		}
	}
	topo, err := seaweedfs.NewTopology(c, &seaweedfs.TopologyOptions{
		TransformURL: func(addr string) string { return next[addr] },
	})
	if err != nil {
		log.Fatal(err)
	}
	place, err := seaweedfs.NewPlacement(ctx, topo, nil)
	if err != nil {
		log.Fatal(err)
	}
	t, err := transport.Placed(place, &transport.ClusterOptions{Mode: transport.HPull})
	if err != nil {
		log.Fatal(err)
	}
	defer t.Close()
	src, err := seaweedfs.NewSource(c, "texts", nil)
	if err != nil {
		log.Fatal(err)
	}
	rep, err := pipeline.Run(ctx, src, t, sink, &pipeline.Options{
		DirectPut: true, // the sink is an insitu.NearSink: each output stays on its input's volume server
		Rename:    func(n insitu.Name) (insitu.Name, error) { return insitu.Name{Bucket: "shouts", Key: n.Key}, nil },
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("transformed:", rep.Transformed)
	for i := range cluster.VolumeServers {
		obj, err := sink.Stat(ctx, insitu.Name{Bucket: "shouts", Key: fmt.Sprintf("%d.txt", i)})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(obj.Name, "on volume server", obj.Owner == cluster.VolumeServers[i])
	}
	// With weed installed, this prints
	//	transformed: 3
	//	shouts/0.txt on volume server true
	//	shouts/1.txt on volume server true
	//	shouts/2.txt on volume server true
}
