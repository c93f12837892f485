// Package cluster runs jobs on a cluster of insitu storage nodes: [Run] is
// the coordinator. It sends one [JobSpec] to every node (POST /v1/jobs);
// each node transforms the objects it owns, reading them from its local
// disk, and puts each output straight to the node that owns the output's
// name. The coordinator only long-polls the nodes for their progress and
// sums their reports into one [Report] with a breakdown by node: no object
// data flows through it.
//
// The types here are also the wire format of the job endpoints
// (docs/PROTOCOL.md), which package node serves.
package cluster
