package seaweedfs

import (
	"context"
	"slices"
	"sync"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/locality"
)

// VolumeServer is a volume server of the cluster, as the master lists it.
type VolumeServer struct {
	// Addr is its "host:port", its ID in the master's topology: the Owner
	// of the objects it holds, and a node ID of [Topology.Map].
	Addr string
	// PublicURL is the address it tells clients to use (usually Addr).
	PublicURL string
	// DataCenter and Rack place it in the cluster.
	DataCenter, Rack string
	// Volumes is the number of volumes it holds, Max the most it may.
	Volumes, Max int64
}

// VolumeServers returns the volume servers the master lists now, sorted
// by Addr (from the master's /dir/status). A master that does not answer
// is Unavailable; a URL that is not a master's is InvalidArgument.
func (c *Client) VolumeServers(ctx context.Context) ([]VolumeServer, error) {
	var st struct {
		Topology *struct {
			DataCenters []struct {
				ID    string `json:"Id"`
				Racks []struct {
					ID        string `json:"Id"`
					DataNodes []struct {
						URL       string `json:"Url"`
						PublicURL string `json:"PublicUrl"`
						Volumes   int64
						Max       int64
					}
				}
			}
		}
	}
	what := "the master's /dir/status"
	if err := c.getJSON(ctx, c.master+"/dir/status", nil, what, insitu.Name{}, &st); err != nil {
		return nil, c.checkMaster(err, insitu.Name{}, what)
	}
	if st.Topology == nil {
		return nil, c.notAMaster(insitu.Name{}, what, nil)
	}
	var out []VolumeServer
	for _, dc := range st.Topology.DataCenters {
		for _, r := range dc.Racks {
			for _, n := range r.DataNodes {
				out = append(out, VolumeServer{Addr: n.URL, PublicURL: n.PublicURL, DataCenter: dc.ID, Rack: r.ID, Volumes: n.Volumes, Max: n.Max})
			}
		}
	}
	slices.SortFunc(out, func(a, b VolumeServer) int {
		switch {
		case a.Addr < b.Addr:
			return -1
		case a.Addr > b.Addr:
			return 1
		}
		return 0
	})
	return out, nil
}

// TopologyOptions configure [NewTopology]. A nil *TopologyOptions means
// the defaults.
type TopologyOptions struct {
	// NodeURL returns the URL of the node of the volume server addr in
	// the map. Default: "http://" + addr, the volume server itself.
	NodeURL func(addr string) string
	// TransformURL returns the base URL of the transform server next to
	// the volume server addr, or "" when it has none. Default: none.
	TransformURL func(addr string) string
}

// Topology is the volume servers of a cluster as a [locality.Map], read
// from the master each time [Topology.Map] is called. Make one with
// [NewTopology]. A Topology is safe for concurrent use.
type Topology struct {
	c    *Client
	opts TopologyOptions

	mu   sync.Mutex
	last *locality.Map
}

// NewTopology returns the topology of c's cluster. A nil c is an
// InvalidArgument error.
func NewTopology(c *Client, opts *TopologyOptions) (*Topology, error) {
	if c == nil {
		return nil, insitu.Errorf(insitu.InvalidArgument, "seaweedfs.NewTopology: nil client")
	}
	t := &Topology{c: c}
	if opts != nil {
		t.opts = *opts
	}
	if t.opts.NodeURL == nil {
		t.opts.NodeURL = func(addr string) string { return "http://" + addr }
	}
	if t.opts.TransformURL == nil {
		t.opts.TransformURL = func(string) string { return "" }
	}
	return t, nil
}

// Map reads the volume servers from the master and returns them as a
// map: one node per volume server, its ID the server's Addr (the Owner of
// the objects it holds), its URL and TransformURL from the options. When
// the nodes are the same as at the last call, it returns the same map;
// when a server came or went (or a URL changed), a new map whose version
// is one more (the first map has version 1), so a map held elsewhere can
// tell it is older. Objects stay where SeaweedFS put them: the map's own
// rendezvous placement (Map.Owner) is not where they are; use the Owner
// of each listed object.
//
// A master that lists no volume server is Unavailable; errors of the
// master are those of [Client.VolumeServers]; a URL the options make that
// is not an http or https URL is InvalidArgument.
func (t *Topology) Map(ctx context.Context) (*locality.Map, error) {
	servers, err := t.c.VolumeServers(ctx)
	if err != nil {
		return nil, err
	}
	if len(servers) == 0 {
		return nil, insitu.Errorf(insitu.Unavailable, "seaweedfs: the master %s lists no volume server", t.c.master)
	}
	nodes := make([]locality.Node, len(servers))
	for i, s := range servers {
		nodes[i] = locality.Node{ID: s.Addr, URL: t.opts.NodeURL(s.Addr), TransformURL: t.opts.TransformURL(s.Addr)}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	version := int64(1)
	if t.last != nil {
		if slices.Equal(t.last.Nodes(), nodes) {
			return t.last, nil
		}
		version = t.last.Version() + 1
	}
	m, err := locality.NewMap(version, nodes...)
	if err != nil {
		return nil, err
	}
	t.last = m
	return m, nil
}
