package node

import (
	"fmt"

	"github.com/insitu-data/insitu"

	"github.com/insitu-data/insitu/transport"
)

// SidecarClients returns the node's pooled transform-server clients, keyed
// by "mode url local-file", for the external tests.
func SidecarClients(n *Node) map[string]*transport.Client {
	p := &n.jobs.sidecars
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]*transport.Client{}
	for k, sc := range p.clients {
		out[fmt.Sprintf("%s %s %v", k.mode, k.url, k.localFile)] = sc.c
	}
	return out
}

// JobSink returns the sink through which a job of n with the given ID
// puts its outputs, for the external tests (sinktest).
func JobSink(n *Node, job string) (insitu.Sink, error) { return n.newJobSink(job, 0) }
