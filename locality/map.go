package locality

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"

	"github.com/cespare/xxhash/v2"
	"github.com/insitu-data/insitu"
)

// Node is one storage node of a cluster.
type Node struct {
	// ID names the node; it is unique within a [Map] and is what placement
	// hashes, so renaming a node moves its objects.
	ID string `json:"id"`
	// URL is the base URL of the node's API, such as "http://127.0.0.1:7001".
	URL string `json:"url"`
	// TransformURL is the base URL of the transform server next to the
	// node, or "" when it has none.
	TransformURL string `json:"transform_url,omitempty"`
}

// Map is a versioned, immutable list of the nodes of a cluster, and the
// placement of names onto them.
//
// The owner of a name is chosen by rendezvous (highest random weight)
// hashing: every node gets the weight
//
//	mix(xxhash64(node ID) ^ xxhash64(bucket + "/" + key))
//
// where mix is the splitmix64 finalizer, and the node with the highest
// weight owns the name; a tie goes to the smaller ID. Every process that
// holds the same nodes and placement computes the same owners, and adding
// a node to N others moves only about 1/(N+1) of the names, all onto the
// new node.
// A map whose [Placement] is [ByKey] hashes xxhash64(key) instead.
//
// A Map is safe for concurrent use. The zero Map has no nodes and version 0;
// its Owner is the zero Node. Make maps with [NewMap].
type Map struct {
	version   int64
	placement Placement
	nodes     []Node   // sorted by ID
	hashes    []uint64 // xxhash64 of each node's ID
}

// Placement is what a map's rendezvous hashing weighs a name by.
type Placement string

const (
	// ByName places a name by its bucket and key together,
	// "bucket/key": a bucket's objects and another's spread
	// independently. The default.
	ByName Placement = ""
	// ByKey places a name by its key alone: a key has the same owner in
	// every bucket. A job that writes each output under its input's key
	// into another bucket (a copy, a transform that keeps the names)
	// then stores every output on the node that holds its input, and
	// nothing crosses between nodes; one that renames its outputs gains
	// nothing from it.
	ByKey Placement = "key"
)

// check returns an [insitu.InvalidArgument] error for a placement this
// package does not know.
func (p Placement) check() error {
	if p != ByName && p != ByKey {
		return insitu.Errorf(insitu.InvalidArgument, "locality: unknown placement %q: want %q or %q (by name, the default)", string(p), string(ByKey), string(ByName))
	}
	return nil
}

// MaxMapVersion is the largest map version: 2^53 − 1, the largest integer
// every JSON decoder reads exactly, and far from overflowing the next
// version.
const MaxMapVersion int64 = 1<<53 - 1

// MaxMapStep is the most a map's version may exceed the version it
// replaces by (see [Map.Succeeds]): a map that jumps further, such as one
// of version MaxMapVersion meant to be never replaced, is refused.
const MaxMapStep int64 = 1 << 20

// NewMap returns the map with the given version and nodes. It refuses, with
// an [insitu.InvalidArgument] error: a version below 0 or above
// [MaxMapVersion], no nodes, an empty or duplicate ID, and a URL or
// TransformURL that is not an absolute http or https URL (TransformURL may
// be empty).
func NewMap(version int64, nodes ...Node) (*Map, error) {
	return newMap(version, ByName, nodes)
}

func newMap(version int64, placement Placement, nodes []Node) (*Map, error) {
	if err := placement.check(); err != nil {
		return nil, err
	}
	if version < 0 || version > MaxMapVersion {
		return nil, insitu.Errorf(insitu.InvalidArgument, "locality: map version %d is outside 0..%d", version, MaxMapVersion)
	}
	if len(nodes) == 0 {
		return nil, insitu.Errorf(insitu.InvalidArgument, "locality: a map needs at least one node")
	}
	sorted := slices.Clone(nodes)
	slices.SortFunc(sorted, func(a, b Node) int { return strings.Compare(a.ID, b.ID) })
	m := &Map{version: version, placement: placement, nodes: sorted, hashes: make([]uint64, len(sorted))}
	for i, n := range sorted {
		if n.ID == "" {
			return nil, insitu.Errorf(insitu.InvalidArgument, "locality: a node has an empty ID")
		}
		if i > 0 && sorted[i-1].ID == n.ID {
			return nil, insitu.Errorf(insitu.InvalidArgument, "locality: node ID %q appears twice", n.ID)
		}
		if err := checkURL(n.URL); err != nil {
			return nil, insitu.Errorf(insitu.InvalidArgument, "locality: node %q: URL: %w", n.ID, err)
		}
		if n.TransformURL != "" {
			if err := checkURL(n.TransformURL); err != nil {
				return nil, insitu.Errorf(insitu.InvalidArgument, "locality: node %q: transform URL: %w", n.ID, err)
			}
		}
		m.hashes[i] = xxhash.Sum64String(n.ID)
	}
	return m, nil
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q is not an http or https URL", s)
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", s)
	}
	return nil
}

// Version returns the map's version. A larger version is a newer map.
func (m *Map) Version() int64 { return m.version }

// Placement returns what the map places names by.
func (m *Map) Placement() Placement { return m.placement }

// WithPlacement returns a new map, one version newer, with the same nodes
// placing names by p. A placement this package does not know is an
// [insitu.InvalidArgument] error. On a cluster that holds objects, the
// names whose owner it changes (with three nodes, about two in three) stay
// where they are until a rebalance moves them, as after a change of nodes
// (node.Node.Rebalance).
func (m *Map) WithPlacement(p Placement) (*Map, error) {
	return newMap(m.version+1, p, m.nodes)
}

// Len returns the number of nodes.
func (m *Map) Len() int { return len(m.nodes) }

// Nodes returns a copy of the nodes, sorted by ID.
func (m *Map) Nodes() []Node { return slices.Clone(m.nodes) }

// Node returns the node with the given ID, and whether there is one.
func (m *Map) Node(id string) (Node, bool) {
	i, ok := slices.BinarySearchFunc(m.nodes, id, func(n Node, id string) int { return strings.Compare(n.ID, id) })
	if !ok {
		return Node{}, false
	}
	return m.nodes[i], true
}

// Owner returns the node that owns name: the one with the highest
// rendezvous weight (see [Map]). It does not allocate. It returns the zero
// Node when the map has no nodes.
func (m *Map) Owner(name insitu.Name) Node {
	if len(m.nodes) == 0 {
		return Node{}
	}
	return m.nodes[m.ownerIndex(m.nameHash(name))]
}

// Owns reports whether the node with the given ID owns name.
func (m *Map) Owns(id string, name insitu.Name) bool {
	return len(m.nodes) > 0 && m.nodes[m.ownerIndex(m.nameHash(name))].ID == id
}

func (m *Map) ownerIndex(h uint64) int {
	best, bestW := 0, mix(m.hashes[0]^h)
	for i := 1; i < len(m.hashes); i++ {
		// Nodes are sorted by ID, so a strict > keeps the smaller ID on a tie.
		if w := mix(m.hashes[i] ^ h); w > bestW {
			best, bestW = i, w
		}
	}
	return best
}

// nameHash returns xxhash64(bucket + "/" + key) without building the
// string, or xxhash64(key) when the map places by key.
func (m *Map) nameHash(name insitu.Name) uint64 {
	if m.placement == ByKey {
		return xxhash.Sum64String(name.Key)
	}
	var d xxhash.Digest
	d.Reset()
	d.WriteString(name.Bucket)
	d.WriteString("/")
	d.WriteString(name.Key)
	return d.Sum64()
}

// mix is the splitmix64 finalizer.
func mix(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// With returns a new map, one version newer, with n added, or with n in
// place of the node of the same ID.
func (m *Map) With(n Node) (*Map, error) {
	nodes := make([]Node, 0, len(m.nodes)+1)
	for _, old := range m.nodes {
		if old.ID != n.ID {
			nodes = append(nodes, old)
		}
	}
	return newMap(m.version+1, m.placement, append(nodes, n))
}

// Without returns a new map, one version newer, without the node of the
// given ID. Removing a node the map does not have, or its last node, is an
// [insitu.InvalidArgument] error.
func (m *Map) Without(id string) (*Map, error) {
	if _, ok := m.Node(id); !ok {
		return nil, insitu.Errorf(insitu.InvalidArgument, "locality: the map has no node %q", id)
	}
	nodes := make([]Node, 0, len(m.nodes))
	for _, n := range m.nodes {
		if n.ID != id {
			nodes = append(nodes, n)
		}
	}
	return newMap(m.version+1, m.placement, nodes)
}

// Newer reports whether m is newer than other; every map is newer than nil.
func (m *Map) Newer(other *Map) bool { return other == nil || m.version > other.version }

// Succeeds reports, as an [insitu.InvalidArgument] error, why m may not
// replace prev: it is not newer, or its version is more than [MaxMapStep]
// past prev's. Any map may replace nil. Nodes and clients install a map
// only when it succeeds theirs, so a map cannot jump to a version that
// later maps could never pass.
func (m *Map) Succeeds(prev *Map) error {
	switch {
	case prev == nil:
		return nil
	case m.version <= prev.version:
		return insitu.Errorf(insitu.InvalidArgument, "locality: map version %d is not newer than %d", m.version, prev.version)
	case m.version-prev.version > MaxMapStep:
		return insitu.Errorf(insitu.InvalidArgument, "locality: map version %d jumps more than %d past %d", m.version, MaxMapStep, prev.version)
	}
	return nil
}

// String returns a short description such as "map v3 [n1 n2 n3]", or
// "map v4 by key [n1 n2 n3]" for a map that places by key.
func (m *Map) String() string {
	ids := make([]string, len(m.nodes))
	for i, n := range m.nodes {
		ids[i] = n.ID
	}
	by := ""
	if m.placement != ByName {
		by = " by " + string(m.placement)
	}
	return fmt.Sprintf("map v%d%s [%s]", m.version, by, strings.Join(ids, " "))
}

// mapJSON is the wire form of a Map.
type mapJSON struct {
	Version   int64     `json:"version"`
	Placement Placement `json:"placement,omitempty"`
	Nodes     []Node    `json:"nodes"`
}

// MarshalJSON encodes the map as {"version":N,"nodes":[...]}, nodes sorted
// by ID, with "placement":"key" after the version for a map that places by
// key.
func (m *Map) MarshalJSON() ([]byte, error) {
	nodes := m.nodes
	if nodes == nil {
		nodes = []Node{}
	}
	return json.Marshal(mapJSON{Version: m.version, Placement: m.placement, Nodes: nodes})
}

// UnmarshalJSON decodes the form MarshalJSON writes, validating it as
// [NewMap] does. A field it does not know, in the map or in a node, is an
// [insitu.InvalidArgument] error rather than ignored: a later map form may
// add what changes placement (which names a node owns), and a process
// that would ignore it would place names where the others do not. It is
// meant for decoding into a fresh Map; a Map already shared with other
// goroutines must not be decoded into.
func (m *Map) UnmarshalJSON(b []byte) error {
	var w mapJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return insitu.Errorf(insitu.InvalidArgument, "locality: decoding a map: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return insitu.Errorf(insitu.InvalidArgument, "locality: decoding a map: data after the map")
	}
	nm, err := newMap(w.Version, w.Placement, w.Nodes)
	if err != nil {
		return err
	}
	*m = *nm
	return nil
}

// ParseMap decodes a map from its JSON form (see [Map.MarshalJSON]).
func ParseMap(b []byte) (*Map, error) {
	m := new(Map)
	if err := m.UnmarshalJSON(b); err != nil {
		return nil, err
	}
	return m, nil
}
