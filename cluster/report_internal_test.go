package cluster

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/locality"
	"github.com/insitu-data/insitu/pipeline"
)

// The report of the whole cluster keeps at most as many failures as a
// node's does, the first ones in the nodes' order, and counts the rest.
func TestReportCapsFailures(t *testing.T) {
	t.Parallel()
	failures := func(node string, n int) []pipeline.Failure {
		fs := make([]pipeline.Failure, n)
		for i := range fs {
			fs[i] = pipeline.Failure{Name: insitu.Name{Bucket: "b", Key: fmt.Sprintf("%s-%04d", node, i)}, Code: insitu.InvalidArgument, Message: "bad"}
		}
		return fs
	}
	max := pipeline.DefaultMaxFailures
	c := &coordinator{start: time.Now()}
	for i, kept := range []int{max, 600, 10} {
		id := fmt.Sprintf("n%d", i+1)
		dropped := int64(0)
		if kept == max {
			dropped = 250
		}
		rep := pipeline.Report{Listed: int64(kept) + dropped, Failed: int64(kept) + dropped, Failures: failures(id, kept), FailuresDropped: dropped}
		c.nodes = append(c.nodes, &nodeJob{node: locality.Node{ID: id},
			status: JobStatus{ID: "j", Node: id, State: JobDone, Report: &rep}})
	}
	rep := c.report()
	total := int64(max + 250 + 600 + 10)
	if rep.Failed != total || rep.Listed != total || len(rep.Failures) != max || rep.FailuresDropped != total-int64(max) {
		t.Fatalf("failed %d, kept %d, dropped %d; want %d, %d, %d", rep.Failed, len(rep.Failures), rep.FailuresDropped, total, max, total-int64(max))
	}
	if rep.Failures[0].Name.Key != "n1-0000" || rep.Failures[max-1].Name.Key != fmt.Sprintf("n1-%04d", max-1) {
		t.Errorf("kept %v ... %v, want n1's first failures", rep.Failures[0].Name, rep.Failures[max-1].Name)
	}
	for _, nr := range rep.Nodes {
		if nr.Report.Failures != nil || nr.Report.FailuresDropped != 0 {
			t.Errorf("node %s's report lists failures again", nr.Node)
		}
	}
	if s := rep.String(); !strings.Contains(s, fmt.Sprintf("... and %d more failures (%d of them not kept in the report)", total-20, total-int64(max))) {
		t.Errorf("report:\n%s", s)
	}
}

// A node that took the job and cannot be reached to abort it is given
// up: the objects it listed or counted and did not finish fail, so the
// counts still add up, and its report says why.
func TestAbortUnreachableNodeCountsItsObjects(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: every call is refused
	n := locality.Node{ID: "n1", URL: "http://" + addr}
	m, err := locality.NewMap(1, n)
	if err != nil {
		t.Fatal(err)
	}
	client, err := locality.NewClient(m, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	c := &coordinator{spec: JobSpec{ID: "j"}, o: resolveOptions(&Options{Lost: 2 * time.Second}), start: time.Now(), client: client}
	c.nodes = []*nodeJob{{node: n, status: JobStatus{ID: "j", Node: "n1", State: JobRunning,
		Stats: pipeline.Stats{Listed: 10, Total: 12, Transformed: 3, Failed: 1}}}}

	c.abortAll(t.Context())
	rep := c.report()
	if rep.Listed != 12 || rep.Transformed != 3 || rep.Failed != 9 {
		t.Fatalf("report listed %d, transformed %d, failed %d; want 12, 3, 9:\n%s", rep.Listed, rep.Transformed, rep.Failed, rep)
	}
	if e := rep.Nodes[0].Err; !strings.Contains(e, "aborting the job") || !strings.Contains(e, "unavailable") {
		t.Errorf("node error %q, want one that says the abort failed", e)
	}
	if s := c.stats(); s.Listed != rep.Listed || s.Failed != rep.Failed || !s.ListingDone {
		t.Errorf("stats %+v disagree with the report", s)
	}
}
