package agent_test

import (
	"context"
	"fmt"
	"net/http"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/cluster"
	"github.com/insitu-data/insitu/locality"
	"github.com/insitu-data/insitu/seaweedfs"
	"github.com/insitu-data/insitu/seaweedfs/agent"
	"github.com/insitu-data/insitu/transport"
)

// An agent next to each volume server, and a coordinator that runs a job
// through them with cluster.Run: hpush from each agent to the transform
// server beside it, outputs kept on the input's volume server. (It needs
// a running SeaweedFS cluster, so it is compiled, not run.)
func Example() {
	ctx := context.Background()
	secret := locality.Secret("the cluster secret, from a file")
	client, err := seaweedfs.NewClient("http://127.0.0.1:8888", "http://127.0.0.1:9333", nil)
	if err != nil {
		panic(err)
	}
	// On the host of volume server 127.0.0.1:8080, beside its transform
	// server at :7080, which holds secret.TransformSecret("127.0.0.1:8080"):
	a, err := agent.New(client, &agent.Options{
		Server:          "127.0.0.1:8080",
		Secret:          secret,
		Transforms:      map[string]insitu.Transform{"copy": insitu.Identity},
		TransformURL:    "http://127.0.0.1:7080",
		TransformSecret: secret.TransformSecret("127.0.0.1:8080"),
	})
	if err != nil {
		panic(err)
	}
	go http.ListenAndServe("127.0.0.1:6080", a.Handler())

	// The coordinator: the volume servers as nodes, each at its agent.
	agents := map[string]string{
		"127.0.0.1:8080": "http://127.0.0.1:6080",
		"127.0.0.1:8081": "http://127.0.0.1:6081",
		"127.0.0.1:8082": "http://127.0.0.1:6082",
	}
	topo, err := seaweedfs.NewTopology(client, &seaweedfs.TopologyOptions{
		NodeURL: func(vs string) string { return agents[vs] },
	})
	if err != nil {
		panic(err)
	}
	m, err := topo.Map(ctx)
	if err != nil {
		panic(err)
	}
	lc, err := locality.NewClient(m, &locality.ClientOptions{Secret: secret})
	if err != nil {
		panic(err)
	}
	rep, err := cluster.Run(ctx, lc, cluster.JobSpec{ID: "wav", Bucket: "music", DstBucket: "wavs",
		Server: &cluster.ServerSpec{Mode: transport.HPush}}, nil)
	fmt.Println(rep, err)
}
