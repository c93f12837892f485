package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/ticker"
	"github.com/insitu-data/insitu/locality"
	"github.com/insitu-data/insitu/pipeline"
)

// JobState is the state of a job on one node.
type JobState string

// The states of a job on a node. Every state but JobRunning is final.
const (
	JobRunning JobState = "running"
	JobDone    JobState = "done"    // the run ended; see the report for failures
	JobFailed  JobState = "failed"  // the run stopped at a failure (ContinueOnError off)
	JobAborted JobState = "aborted" // DELETE /v1/jobs/{id}, or the node is shutting down
)

// JobStatus is a node's account of a job: the body of the replies to
// POST /v1/jobs and GET|DELETE /v1/jobs/{id}.
type JobStatus struct {
	ID    string         `json:"id"`
	Node  string         `json:"node"`
	State JobState       `json:"state"`
	Stats pipeline.Stats `json:"stats"`
	// Report is set once the job has ended.
	Report *pipeline.Report `json:"report,omitempty"`
	// Code and Message say why a failed or aborted job ended.
	Code    insitu.Code `json:"code,omitempty"`
	Message string      `json:"message,omitempty"`
}

// Options configure [Run]. A nil *Options means all defaults; so does the
// zero value of each field.
type Options struct {
	// Progress, when set, is called every ProgressInterval with the stats
	// of all nodes summed, and once more at the end with Final set, from
	// one goroutine (see [pipeline.Options.Progress];
	// [pipeline.TerminalProgress] and [pipeline.LogProgress] draw them).
	// A node whose part was given up counts as in the report, so the final
	// stats agree with it. Default: nil, no progress.
	Progress func(pipeline.Stats)
	// ProgressInterval is also how long a node is asked to wait for news
	// before it answers a poll. Default: 500ms.
	ProgressInterval time.Duration
	// Lost is how long a node may stay unreachable during a job before its
	// part is given up as failed; it also bounds the calls that abort the
	// job on every node after ctx ended. Default: 5s.
	Lost time.Duration
	// Logger gets a record per node failure. Default: discard.
	Logger *slog.Logger
}

// Run runs spec on every node of the client's map: each node transforms
// its own objects, reading them from its local disk, and puts each output
// straight to the output's owner. No data flows through the caller, which
// sends control messages and aggregates progress into one Report with a
// per-node breakdown (Report.Nodes).
//
// A node that refuses the job, fails, stays unreachable longer than
// Options.Lost, or cannot be reached to abort the job is named in
// Report.Nodes with the reason, its unfinished objects count as failed,
// and Run returns an error naming it (or ctx's error, when ctx ended). A
// node that does not start the job is asked for its listing instead, so
// that the objects it owns count as failed too and Listed = Transformed +
// Skipped + Failed holds for the whole cluster (Report.Nodes says when a
// node could not even be listed). Without ContinueOnError the first
// failure on any node aborts the job on every node. When ctx ends, the job
// is aborted on every node. Report.Failures keeps the first
// [pipeline.DefaultMaxFailures] failures of all nodes (each node's report
// keeps its own first ones) and counts the others in FailuresDropped. A
// spec that is invalid is an [insitu.InvalidArgument] error before any
// node is called.
//
// The client's map and secret reach the nodes; its map is read once, at
// the start.
func Run(ctx context.Context, client *locality.Client, spec JobSpec, opts *Options) (Report, error) {
	start := time.Now()
	if client == nil {
		return Report{}, insitu.Errorf(insitu.InvalidArgument, "cluster: no client")
	}
	m := client.Map()
	if err := spec.Validate(nil); err != nil {
		return Report{}, err
	}
	if spec.ID == "" {
		spec.ID = newJobID()
	}
	o := resolveOptions(opts)
	c := &coordinator{spec: spec, o: o, start: start, client: client}
	for _, n := range m.Nodes() {
		c.nodes = append(c.nodes, &nodeJob{node: n})
	}

	// Start the job everywhere; if any node refuses the spec itself, abort
	// the others: the spec is wrong, not the node.
	var wg sync.WaitGroup
	for _, nj := range c.nodes {
		wg.Go(func() { c.startOn(ctx, nj) })
	}
	wg.Wait()
	for _, nj := range c.nodes {
		if insitu.CodeOf(nj.err) == insitu.InvalidArgument {
			c.abortAll(ctx)
			c.countUnstarted(ctx)
			return c.report(), nj.err
		}
	}
	c.countUnstarted(ctx)

	var stop func()
	if p := c.o.Progress; p != nil {
		stop = ticker.Start(c.o.ProgressInterval, func(final bool) {
			s := c.stats()
			s.Final = final
			p(s)
		})
	} else {
		stop = func() {}
	}
	jctx, cancel := context.WithCancel(ctx)
	for _, nj := range c.nodes {
		if nj.err != nil {
			continue
		}
		wg.Go(func() {
			c.follow(jctx, nj)
			if nj.failed() && !spec.ContinueOnError {
				cancel()
			}
		})
	}
	wg.Wait()
	aborted := jctx.Err() != nil // a failure, or ctx: before cancel sets it
	cancel()
	if aborted {
		c.abortAll(ctx)
	}
	stop()

	rep := c.report()
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	for _, nj := range c.nodes {
		if nj.err != nil {
			return rep, nj.err
		}
	}
	if !spec.ContinueOnError && len(rep.Failures) > 0 {
		// The failure that stopped the run, not an object canceled because
		// of it on another node.
		f := rep.Failures[0]
		for _, c := range rep.Failures {
			if c.Code != insitu.Canceled {
				f = c
				break
			}
		}
		return rep, &insitu.Error{Code: f.Code, Name: f.Name, Msg: f.Message}
	}
	return rep, nil
}

// defaultProgressInterval is Options.ProgressInterval's default.
const defaultProgressInterval = 500 * time.Millisecond

func resolveOptions(opts *Options) Options {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.ProgressInterval <= 0 {
		o.ProgressInterval = defaultProgressInterval
	}
	if o.Lost <= 0 {
		o.Lost = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

type coordinator struct {
	spec   JobSpec
	o      Options
	start  time.Time
	client *locality.Client
	nodes  []*nodeJob
}

// nodeJob is the coordinator's view of the job on one node.
type nodeJob struct {
	node locality.Node

	mu        sync.Mutex
	status    JobStatus // the latest status the node sent
	err       error     // why the node's part did not complete
	unstarted int64     // objects the node owns, when it did not start the job
	uncounted error     // why those could not be counted
}

func (nj *nodeJob) set(st JobStatus) {
	nj.mu.Lock()
	nj.status = st
	nj.mu.Unlock()
}

func (nj *nodeJob) failed() bool {
	nj.mu.Lock()
	defer nj.mu.Unlock()
	return nj.err != nil || nj.status.State == JobFailed || nj.status.Stats.Failed > 0
}

func (nj *nodeJob) setErr(err error) {
	nj.mu.Lock()
	nj.err = err
	nj.mu.Unlock()
}

func (c *coordinator) startOn(ctx context.Context, nj *nodeJob) {
	var st JobStatus
	if err := c.client.Call(ctx, nj.node, http.MethodPost, "/v1/jobs", c.spec, &st); err != nil {
		nj.setErr(nodeError(nj.node, "starting the job", err))
		return
	}
	nj.set(st)
}

// follow long-polls the node until its job ends, the node is lost, or ctx
// ends.
func (c *coordinator) follow(ctx context.Context, nj *nodeJob) {
	path := "/v1/jobs/" + url.PathEscape(c.spec.ID) + "?wait=" + url.QueryEscape(c.o.ProgressInterval.String())
	var lostSince time.Time
	for ctx.Err() == nil {
		var st JobStatus
		err := c.client.Call(ctx, nj.node, http.MethodGet, path, nil, &st)
		switch {
		case err == nil:
			lostSince = time.Time{}
			nj.set(st)
			if st.State != JobRunning {
				if st.State == JobAborted {
					nj.setErr(nodeError(nj.node, "job aborted", &insitu.Error{Code: st.Code, Msg: st.Message}))
				}
				return
			}
		case ctx.Err() != nil:
			return
		case insitu.CodeOf(err) == insitu.Unavailable:
			if lostSince.IsZero() {
				lostSince = time.Now()
			}
			if time.Since(lostSince) >= c.o.Lost {
				nj.setErr(nodeError(nj.node, "node lost", err))
				c.o.Logger.Warn("node lost", "node", nj.node.ID, "job", c.spec.ID, "error", err)
				return
			}
			if ticker.Sleep(ctx, min(c.o.ProgressInterval, c.o.Lost/10)) != nil {
				return
			}
		default:
			nj.setErr(nodeError(nj.node, "following the job", err))
			return
		}
	}
}

// abortAll asks every node to abort the job. It outlives ctx (the job must
// stop on the nodes when the caller's context ended) but not Options.Lost.
// A node that took the job and does not confirm that its part has ended
// is given up, so that its unfinished objects count as failed.
func (c *coordinator) abortAll(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.o.Lost)
	defer cancel()
	var wg sync.WaitGroup
	for _, nj := range c.nodes {
		nj.mu.Lock()
		done := nj.err != nil || nj.status.ID == "" || nj.status.State != JobRunning
		nj.mu.Unlock()
		if done { // not started, given up, or ended: nothing to abort
			continue
		}
		wg.Go(func() {
			var st JobStatus
			err := c.client.Call(ctx, nj.node, http.MethodDelete, "/v1/jobs/"+url.PathEscape(c.spec.ID), nil, &st)
			nj.mu.Lock()
			defer nj.mu.Unlock()
			switch {
			case nj.err != nil || nj.status.ID == "": // not started, or given up already
			case err != nil:
				nj.err = nodeError(nj.node, "aborting the job", err)
			case st.State == JobRunning: // the abort did not end it in time
				nj.status = st
				nj.err = nodeError(nj.node, "aborting the job", insitu.Errorf(insitu.DeadlineExceeded, "the job was still running"))
			default:
				nj.status = st
			}
		})
	}
	wg.Wait()
}

// countUnstarted lists, on every node that did not start the job, the
// objects of the job that the node owns, so that they count as failed.
func (c *coordinator) countUnstarted(ctx context.Context) {
	var wg sync.WaitGroup
	for _, nj := range c.nodes {
		if nj.err == nil || nj.status.ID != "" {
			continue
		}
		wg.Go(func() {
			var n int64
			var err error
			lctx, cancel := context.WithTimeout(ctx, c.o.Lost)
			defer cancel()
			for obj, lerr := range c.client.ListAll(lctx, nj.node, c.spec.Bucket, &locality.ListOptions{Prefix: c.spec.Prefix}) {
				if lerr != nil {
					err = lerr
					break
				}
				if obj.Owner == nj.node.ID {
					n++
				}
			}
			nj.mu.Lock()
			nj.unstarted, nj.uncounted = n, err
			nj.mu.Unlock()
		})
	}
	wg.Wait()
}

// stats sums the nodes' live stats. A node whose part was given up counts
// as its report does (see part), so that the final stats agree with the
// report.
func (c *coordinator) stats() pipeline.Stats {
	s := pipeline.Stats{ListingDone: true, Final: true}
	for _, nj := range c.nodes {
		nj.mu.Lock()
		ns := nj.status.Stats
		if nj.err != nil {
			nr := nj.part()
			ns = pipeline.Stats{Listed: nr.Listed, Total: nr.Listed, Transformed: nr.Transformed, Skipped: nr.Skipped,
				Failed: nr.Failed, BytesIn: nr.BytesIn, BytesOut: nr.BytesOut, Elapsed: nr.Elapsed, ListingDone: true, Final: true}
		}
		nj.mu.Unlock()
		s = s.Add(ns)
	}
	s.Elapsed = time.Since(c.start)
	return s
}

// part returns the node's part of the job: its report once its job has
// ended, else a report made of its latest stats. When the node's part did
// not complete (nj.err), every object it counted, listed or owns (when it
// did not start the job) and did not finish failed with it, so that the
// counts add up. The caller holds nj.mu.
func (nj *nodeJob) part() pipeline.Report {
	st := nj.status
	var nr pipeline.Report
	if st.Report != nil {
		nr = *st.Report
	} else {
		s := st.Stats
		nr = pipeline.Report{Listed: s.Listed + nj.unstarted, Transformed: s.Transformed, Skipped: s.Skipped, Failed: s.Failed,
			BytesIn: s.BytesIn, BytesOut: s.BytesOut, Elapsed: s.Elapsed}
	}
	if nj.err != nil {
		nr.Listed = max(nr.Listed, st.Stats.Total)
		if unfinished := nr.Listed - nr.Transformed - nr.Skipped - nr.Failed; unfinished > 0 {
			nr.Failed += unfinished
		}
	}
	return nr
}

// report sums the nodes' reports. It keeps the first
// [pipeline.DefaultMaxFailures] failures, in the order of the nodes in the
// map, as each node's report keeps its first ones; the others are counted
// in FailuresDropped.
func (c *coordinator) report() Report {
	var rep Report
	for _, nj := range c.nodes {
		nj.mu.Lock()
		nr, err, uncounted := nj.part(), nj.err, nj.uncounted
		nj.mu.Unlock()
		node := NodeReport{Node: nj.node.ID, Report: nr}
		if err != nil {
			node.Err = err.Error()
			if uncounted != nil {
				node.Err += "; its objects could not be counted: " + uncounted.Error()
			}
		}
		rep.Listed += nr.Listed
		rep.Transformed += nr.Transformed
		rep.Skipped += nr.Skipped
		rep.Failed += nr.Failed
		rep.BytesIn += nr.BytesIn
		rep.BytesOut += nr.BytesOut
		keep := nr.Failures[:min(len(nr.Failures), max(pipeline.DefaultMaxFailures-len(rep.Failures), 0))]
		rep.Failures = append(rep.Failures, keep...)
		rep.FailuresDropped += nr.FailuresDropped + int64(len(nr.Failures)-len(keep))
		// The failures are listed once, at the top.
		node.Report.Failures, node.Report.FailuresDropped = nil, 0
		rep.Nodes = append(rep.Nodes, node)
	}
	slices.SortFunc(rep.Nodes, func(a, b NodeReport) int { return strings.Compare(a.Node, b.Node) })
	rep.Elapsed = time.Since(c.start)
	return rep
}

// nodeError says what failed on node n. The node client's errors already
// name the node, so err's text follows what without naming it again.
func nodeError(n locality.Node, what string, err error) error {
	msg := what
	if !strings.HasPrefix(err.Error(), "node "+n.ID+":") {
		msg = "node " + n.ID + ": " + what
	}
	return &insitu.Error{Code: insitu.CodeOf(err), Msg: msg, Err: err}
}

func newJobID() string {
	var b [8]byte
	rand.Read(b[:])
	return "job-" + hex.EncodeToString(b[:])
}
