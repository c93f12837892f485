package cluster

import (
	"fmt"
	"strings"

	"github.com/dustin/go-humanize"
	"github.com/insitu-data/insitu/pipeline"
)

// Report is the outcome of a job on a cluster: the nodes' reports summed
// (so Listed = Transformed + Skipped + Failed holds for the whole cluster),
// with the first [pipeline.DefaultMaxFailures] failures of all nodes once
// and the others counted in FailuresDropped, and a breakdown by node.
type Report struct {
	pipeline.Report
	// Nodes breaks the run down by node, sorted by node ID. A node's
	// report has no Failures (nor FailuresDropped): they are in the
	// Report's, once.
	Nodes []NodeReport `json:"nodes,omitempty"`
}

// NodeReport is one node's part of a job.
type NodeReport struct {
	Node   string          `json:"node"`
	Report pipeline.Report `json:"report"`
	// Err says why the node's part did not complete: the node refused the
	// job, failed, was unreachable, or was aborted. "" when it completed.
	Err string `json:"error,omitempty"`
}

// String summarizes the report as [pipeline.Report.String] does, then one
// line per node.
func (r Report) String() string {
	var b strings.Builder
	b.WriteString(r.Report.String())
	for _, n := range r.Nodes {
		fmt.Fprintf(&b, "  node %s: listed %d, transformed %d, skipped %d, failed %d, in %s, out %s",
			n.Node, n.Report.Listed, n.Report.Transformed, n.Report.Skipped, n.Report.Failed,
			humanize.Bytes(uint64(n.Report.BytesIn)), humanize.Bytes(uint64(n.Report.BytesOut)))
		if n.Err != "" {
			msg, _, cut := strings.Cut(n.Err, "\n")
			if cut {
				msg += " ..."
			}
			fmt.Fprintf(&b, ": %s", msg)
		}
		b.WriteByte('\n')
	}
	return b.String()
}
