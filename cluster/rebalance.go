package cluster

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/locality"
)

// MaxRebalanceNames bounds the names a [RebalanceReport] lists in
// Conflicts, and the messages in Errors.
const MaxRebalanceNames = 100

// RebalanceReport is what a rebalance did on one node: the body of the
// answer to POST /v1/rebalance (docs/PROTOCOL.md), and, summed, what
// [Rebalance] returns for a cluster.
//
// A node's copy of an object it does not own under its current map (left
// behind by a map change: written while the object's owner was out of the
// map, say) is invisible: the node's API and jobs serve and process only
// what it owns. A rebalance makes such copies visible again, without ever
// overwriting anything: each is put to its owner only if the owner has
// nothing under the name (If-None-Match: *), then removed here. A copy
// whose owner has the name already is kept and listed as a conflict: the
// owner's copy is the one the cluster serves; compare the two and delete
// one (with an administrative DELETE to the node that holds it).
type RebalanceReport struct {
	// Node is the node's ID ("" in a cluster's sum).
	Node string `json:"node,omitempty"`
	// Scanned counts the copies found that the node does not own.
	Scanned int64 `json:"scanned"`
	// Moved counts those put to their owner and removed here.
	Moved int64 `json:"moved"`
	// Kept counts those kept because their owner has the name already.
	Kept int64 `json:"kept"`
	// Failed counts those that could not be moved (an owner that did not
	// answer, say): they stay here, and the next rebalance tries again.
	Failed int64 `json:"failed"`
	// More is true when the node stopped before it had looked at every
	// copy (a call's time is bounded): call again with Next.
	More bool `json:"more,omitempty"`
	// Next is where the next call goes on (POST /v1/rebalance?after=),
	// when More is set.
	Next string `json:"next,omitempty"`
	// Conflicts names the copies kept, at most MaxRebalanceNames.
	Conflicts []insitu.Name `json:"conflicts,omitempty"`
	// Errors holds the failures' messages, at most MaxRebalanceNames.
	Errors []string `json:"errors,omitempty"`
}

// Add adds o's counts and lists to r's (the lists up to their bound).
func (r *RebalanceReport) Add(o RebalanceReport) {
	r.Scanned += o.Scanned
	r.Moved += o.Moved
	r.Kept += o.Kept
	r.Failed += o.Failed
	r.More = r.More || o.More
	r.Conflicts = append(r.Conflicts, o.Conflicts[:min(len(o.Conflicts), MaxRebalanceNames-len(r.Conflicts))]...)
	r.Errors = append(r.Errors, o.Errors[:min(len(o.Errors), MaxRebalanceNames-len(r.Errors))]...)
}

// String summarizes the report on one line, with its conflicts and
// errors after it.
func (r RebalanceReport) String() string {
	var b strings.Builder
	if r.Node != "" {
		fmt.Fprintf(&b, "node %s: ", r.Node)
	}
	fmt.Fprintf(&b, "%d copies not owned: %d moved to their owner, %d kept (the owner has one), %d failed", r.Scanned, r.Moved, r.Kept, r.Failed)
	for _, n := range r.Conflicts {
		fmt.Fprintf(&b, "\n  conflict: %s", n)
	}
	for _, e := range r.Errors {
		fmt.Fprintf(&b, "\n  error: %s", e)
	}
	return b.String()
}

// Rebalance has every node of c's map move the copies it does not own to
// their owners (see [RebalanceReport]), calling each node again while it
// has more, and returns the sum and the report of each node. Run it after
// a map change has settled: once every node has the newest map (a node's
// rebalance follows its own map). A node that cannot be reached fails
// the call with its error, after the others have done theirs.
func Rebalance(ctx context.Context, c *locality.Client) (RebalanceReport, []RebalanceReport, error) {
	if c == nil {
		return RebalanceReport{}, nil, insitu.Errorf(insitu.InvalidArgument, "cluster.Rebalance: nil client")
	}
	nodes := c.Map().Nodes()
	reps := make([]RebalanceReport, len(nodes))
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, nd := range nodes {
		wg.Go(func() {
			reps[i].Node = nd.ID
			after := ""
			for {
				var r RebalanceReport
				if err := c.Call(ctx, nd, http.MethodPost, "/v1/rebalance?after="+url.QueryEscape(after), nil, &r); err != nil {
					errs[i] = err // it names the node
					return
				}
				more, next := r.More, r.Next
				r.More, r.Next = false, ""
				reps[i].Add(r)
				if !more {
					return
				}
				if next <= after {
					errs[i] = insitu.Errorf(insitu.Internal, "node %s: rebalance made no progress past %q", nd.ID, after)
					return
				}
				after = next
			}
		})
	}
	wg.Wait()
	var sum RebalanceReport
	var first error
	for i := range reps {
		sum.Add(reps[i])
		if first == nil {
			first = errs[i]
		}
	}
	return sum, reps, first
}
