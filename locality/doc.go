// Package locality knows where objects live: the versioned cluster [Map],
// rendezvous (HRW) placement of names onto nodes, the cluster [Secret] and
// the bearer tokens derived from it, and a small client of the storage-node
// API. It knows how to talk to a node, not how a node works: the node
// server is package locality/node.
package locality
