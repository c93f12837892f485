package pipeline

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/locality"
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
	ID    string   `json:"id"`
	Node  string   `json:"node"`
	State JobState `json:"state"`
	Stats Stats    `json:"stats"`
	// Report is set once the job has ended.
	Report *Report `json:"report,omitempty"`
	// Code and Message say why a failed or aborted job ended.
	Code    insitu.Code `json:"code,omitempty"`
	Message string      `json:"message,omitempty"`
}

// ClusterOptions configure [RunCluster]. A nil *ClusterOptions means all
// defaults; so does the zero value of each field.
type ClusterOptions struct {
	// Secret authenticates the coordinator to the nodes. Default: none.
	Secret locality.Secret
	// HTTPClient makes the control calls. Default: a client of its own
	// with keep-alive connections.
	HTTPClient *http.Client
	// Progress and ProgressInterval are as in [Options], with the stats of
	// all nodes summed. Default: a live line on stderr when it is a
	// terminal, every 500ms.
	Progress         func(Stats)
	ProgressInterval time.Duration
	// Lost is how long a node may stay unreachable during a job before its
	// part is given up as failed. Default: 5s.
	Lost time.Duration
	// Logger gets a record per node failure. Default: discard.
	Logger *slog.Logger
}

// RunCluster runs spec on every node of m: each node transforms its own
// objects, reading them from its local disk, and puts each output straight
// to the output's owner. No data flows through the caller, which sends
// control messages and aggregates progress into one Report with a
// per-node breakdown (Report.Nodes).
//
// A node that refuses the job, fails, or stays unreachable longer than
// ClusterOptions.Lost is named in Report.Nodes with the reason, its
// unfinished objects count as failed, and RunCluster returns an error
// naming it. Without ContinueOnError the first failure on any node aborts
// the job on every node. When ctx ends, the job is aborted on every node.
// A spec that is invalid is an [insitu.InvalidArgument] error before any
// node is called.
func RunCluster(ctx context.Context, m *locality.Map, spec JobSpec, opts *ClusterOptions) (Report, error) {
	start := time.Now()
	if m == nil || m.Len() == 0 {
		return Report{}, insitu.Errorf(insitu.InvalidArgument, "pipeline: no cluster map")
	}
	if err := spec.Validate(nil); err != nil {
		return Report{}, err
	}
	if spec.ID == "" {
		spec.ID = newJobID()
	}
	o := resolveClusterOptions(opts)
	c := &coordinator{spec: spec, o: o, start: start}
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
			c.abortAll()
			return c.report(), nj.err
		}
	}

	stop := startProgress(c.o.Progress, c.o.ProgressInterval, c.stats)
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
	cancel()
	if jctx.Err() != nil {
		c.abortAll()
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

func resolveClusterOptions(opts *ClusterOptions) ClusterOptions {
	var o ClusterOptions
	if opts != nil {
		o = *opts
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4, IdleConnTimeout: time.Minute}}
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
	spec  JobSpec
	o     ClusterOptions
	start time.Time
	nodes []*nodeJob
}

// nodeJob is the coordinator's view of the job on one node.
type nodeJob struct {
	node locality.Node

	mu     sync.Mutex
	status JobStatus // the latest status the node sent
	err    error     // why the node's part did not complete
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
	body, err := json.Marshal(c.spec)
	if err != nil {
		nj.setErr(err)
		return
	}
	var st JobStatus
	if err := c.call(ctx, nj.node, http.MethodPost, "/v1/jobs", body, &st); err != nil {
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
		err := c.call(ctx, nj.node, http.MethodGet, path, nil, &st)
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
			if sleep(ctx, min(c.o.ProgressInterval, c.o.Lost/10)) != nil {
				return
			}
		default:
			nj.setErr(nodeError(nj.node, "following the job", err))
			return
		}
	}
}

// abortAll asks every node to abort the job, with a context of its own so
// that it works after the caller's ended.
func (c *coordinator) abortAll() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, nj := range c.nodes {
		wg.Go(func() {
			var st JobStatus
			if err := c.call(ctx, nj.node, http.MethodDelete, "/v1/jobs/"+url.PathEscape(c.spec.ID), nil, &st); err == nil {
				nj.set(st)
			}
		})
	}
	wg.Wait()
}

func (c *coordinator) stats() Stats {
	s := Stats{ListingDone: true, Final: true}
	for _, nj := range c.nodes {
		nj.mu.Lock()
		s = s.add(nj.status.Stats)
		nj.mu.Unlock()
	}
	s.Elapsed = time.Since(c.start)
	return s
}

// report sums the nodes' reports. A node that did not complete counts its
// unfinished objects as failed, so the counts still add up.
func (c *coordinator) report() Report {
	var rep Report
	for _, nj := range c.nodes {
		nj.mu.Lock()
		st, err := nj.status, nj.err
		nj.mu.Unlock()
		var nr Report
		if st.Report != nil {
			nr = *st.Report
		} else {
			s := st.Stats
			nr = Report{Listed: s.Listed, Transformed: s.Transformed, Skipped: s.Skipped, Failed: s.Failed,
				BytesIn: s.BytesIn, BytesOut: s.BytesOut, Elapsed: s.Elapsed}
		}
		if err != nil {
			// The node's part did not complete: every object it counted or
			// listed and did not finish failed with it.
			nr.Listed = max(nr.Listed, st.Stats.Total)
			if unfinished := nr.Listed - nr.Transformed - nr.Skipped - nr.Failed; unfinished > 0 {
				nr.Failed += unfinished
			}
		}
		node := NodeReport{Node: nj.node.ID, Report: nr}
		if err != nil {
			node.Err = err.Error()
		}
		rep.Listed += nr.Listed
		rep.Transformed += nr.Transformed
		rep.Skipped += nr.Skipped
		rep.Failed += nr.Failed
		rep.BytesIn += nr.BytesIn
		rep.BytesOut += nr.BytesOut
		rep.Failures = append(rep.Failures, nr.Failures...)
		node.Report.Failures = nil // listed once, at the top
		rep.Nodes = append(rep.Nodes, node)
	}
	slices.SortFunc(rep.Nodes, func(a, b NodeReport) int { return strings.Compare(a.Node, b.Node) })
	rep.Elapsed = time.Since(c.start)
	return rep
}

// call makes one authenticated control call and decodes the JSON reply
// into out, or the JSON error into an *insitu.Error.
func (c *coordinator) call(ctx context.Context, n locality.Node, method, path string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, n.URL+path, bytes.NewReader(body))
	if err != nil {
		return insitu.Errorf(insitu.InvalidArgument, "%w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	c.o.Secret.Authorize(req)
	resp, err := c.o.HTTPClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return insitu.Errorf(insitu.Unavailable, "%w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return decodeHTTPError(resp)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(out); err != nil {
		return insitu.Errorf(insitu.Unavailable, "decoding the reply: %w", err)
	}
	return nil
}

// decodeHTTPError turns a node's {"code","message"} reply into an
// *insitu.Error.
func decodeHTTPError(resp *http.Response) error {
	var e locality.ErrorBody
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(b, &e) != nil || e.Message == "" {
		e.Message = fmt.Sprintf("HTTP %s: %s", resp.Status, bytes.TrimSpace(b))
	}
	if e.Code == insitu.Unknown {
		e.Code = locality.CodeOfStatus(resp.StatusCode)
	}
	return &insitu.Error{Code: e.Code, Msg: e.Message}
}

func nodeError(n locality.Node, what string, err error) error {
	return &insitu.Error{Code: insitu.CodeOf(err), Msg: fmt.Sprintf("node %s: %s", n.ID, what), Err: err}
}

func newJobID() string {
	var b [8]byte
	rand.Read(b[:])
	return "job-" + hex.EncodeToString(b[:])
}
