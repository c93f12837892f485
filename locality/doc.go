// Package locality knows where objects live: the versioned cluster [Map],
// rendezvous (HRW) placement of names onto nodes, the cluster [Secret] and
// the bearer tokens derived from it, and [Client], the one client of the
// storage-node API (objects, maps, and the JSON control calls of package
// cluster). It knows how to talk to a node, not how a node works: the node
// server is package node.
package locality
