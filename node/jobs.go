package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/cluster"
	"github.com/insitu-data/insitu/internal/atomicfile"
	"github.com/insitu-data/insitu/internal/wire"
	"github.com/insitu-data/insitu/locality"
	"github.com/insitu-data/insitu/pipeline"
	"github.com/insitu-data/insitu/sink"
)

// Limits of the jobs API.
const (
	maxJobBody       = 1 << 20          // the JSON of a job spec
	maxJobWait       = 60 * time.Second // the longest ?wait= of GET /v1/jobs/{id}
	maxFinishedJobs  = 256              // finished jobs kept for their status
	jobProgressEvery = 250 * time.Millisecond
)

// DefaultMaxJobs is how many jobs a node runs at once: a job started when
// that many are running is refused with [insitu.Unavailable] (HTTP 503),
// which a client tries again later.
const DefaultMaxJobs = 16

// MaxJobFailures is how many failures a node's job keeps in its report
// (the first ones); the others are counted in FailuresDropped. With the
// statuses of the last 256 finished jobs kept, it bounds what a node's
// job table holds.
const MaxJobFailures = 100

// jobTable holds the node's jobs, running and recently finished.
type jobTable struct {
	mu       sync.Mutex
	byID     map[string]*nodeJob
	finished []string // IDs of finished jobs, oldest first
	running  int      // jobs started and not yet retired
	limit    int      // the most running jobs; 0: DefaultMaxJobs
	sidecars sidecarPool
}

func (t *jobTable) init() { t.byID = map[string]*nodeJob{} }

// max returns the most jobs the node runs at once.
func (t *jobTable) max() int {
	if t.limit > 0 {
		return t.limit
	}
	return DefaultMaxJobs
}

// replace forgets the ended job j, whose ID a new run takes; the caller
// holds t.mu.
func (t *jobTable) replace(j *nodeJob) {
	delete(t.byID, j.spec.ID)
	if i := slices.Index(t.finished, j.spec.ID); i >= 0 {
		t.finished = slices.Delete(t.finished, i, i+1)
	}
}

// nodeJob is this node's part of one job.
type nodeJob struct {
	spec    cluster.JobSpec
	run     *pipeline.Job
	aborted atomic.Bool
	release func() // frees what the job held, once it has ended
}

// StartJob starts this node's part of a job: every object of spec.Bucket
// (under spec.Prefix) that the node owns under its current map, read from
// its file in the node's store, through the transform registered under
// spec.Transform, each output put straight to its owner (locally, without
// HTTP, when that is this node). It returns once the job has started; ctx
// bounds the start only (the dial of a transform server, below), and the
// job runs until it ends, is aborted ([Node.AbortJob]) or the node shuts
// down ([Node.Shutdown]).
//
// An invalid spec, an unknown transform, or an ID in use by a different
// spec (running, or ended and still known) is an [insitu.InvalidArgument]
// error. Starting the spec of a running job again returns that job (a
// retry of a start whose answer was lost); starting the spec of a job
// that has ended (done, failed or aborted) starts a new run under its ID,
// which replaces the old run's status: with SkipExisting, that resumes an
// aborted job. A node that runs DefaultMaxJobs jobs already, or that is
// shutting down, refuses with [insitu.Unavailable]. A job's report keeps
// its first MaxJobFailures failures.
//
// A job reads only what the node owns, through the store's root: a copy
// the node holds but no longer owns, left behind by a map change, is
// skipped (not listed, not counted; it stays on disk, invisible to jobs
// and to the object API); symbolic links and special files in the store
// are not objects and are not listed; an input swapped for a link once
// listed fails with [insitu.PermissionDenied], and so does one whose
// Input.Path (the local file handed to the transform) is no longer a
// regular file of the store when the transform is called. A transform
// that opens Input.Path itself opens it after that check, so a swap in
// between is for it (or the transform server) to refuse.
//
// Two inputs renamed to the same output name would leave one output only:
// the second input of the job that reaches the output's owner fails with
// InvalidArgument, naming both inputs. To tell, each put of an output
// carries the job's ID and the input's name (the headers Insitu-Job and
// Insitu-Input of the node API), and the owner remembers, per job, which
// input each output name came from (see Options.OutputRecords). Outputs
// that a transform server puts itself (DirectPut, below) are checked only
// when their owner is this node.
//
// A spec with a Server instead of a Transform runs through the transform
// server next to the node ("sidecar" mode): the one at the TransformURL of
// the node's own entry in its map, reached with a [transport.Client] that
// the node keeps for that server and mode and shares between jobs. With
// "ws" and "hpush" the node sends each input's bytes; with "hpull" it
// sends the input's URL on this node and the server fetches the bytes;
// with LocalFile it sends only the input's path in the node's store. With
// DirectPut the server puts each output straight to the output's owner;
// without, the output comes back to the node, which puts it there. A node
// whose map entry has no TransformURL refuses such a spec with
// InvalidArgument; a server that cannot be reached fails the start with
// [insitu.Unavailable].
func (n *Node) StartJob(ctx context.Context, spec cluster.JobSpec) (cluster.JobStatus, error) {
	if err := n.enter(); err != nil {
		return cluster.JobStatus{}, err
	}
	defer n.leave()
	if spec.ID == "" {
		return cluster.JobStatus{}, insitu.Errorf(insitu.InvalidArgument, "job spec: no id")
	}
	var chain readChain
	if spec.Transform != "" && spec.Server == nil {
		// A name, or a chain "a,b,c" of names, of transforms the node knows.
		var err error
		if chain, err = n.parseReadChain(spec.Transform, ""); err != nil {
			return cluster.JobStatus{}, insitu.Errorf(insitu.InvalidArgument, "job spec: transform: %s", wire.Body(err).Message)
		}
	}
	if err := spec.Validate(nil); err != nil { // the transform is checked above
		return cluster.JobStatus{}, err
	}
	src, err := n.newJobSource(spec.Bucket, spec.Prefix)
	if err != nil {
		return cluster.JobStatus{}, err
	}
	// The transform server is dialed (the first time only: the client is
	// pooled) before the job table is locked, so that a slow dial holds up
	// no other job.
	var (
		t        insitu.Transform
		releaseT func()
		embedded = spec.Server == nil
	)
	if spec.Server != nil {
		t, releaseT, err = n.sidecarTransform(ctx, spec.Server)
	} else {
		t, embedded, releaseT, err = n.jobChain(ctx, chain)
	}
	if err != nil {
		return cluster.JobStatus{}, err
	}
	n.jobs.mu.Lock()
	defer n.jobs.mu.Unlock()
	old := n.jobs.byID[spec.ID] // an ended run that the new one replaces
	if old != nil {
		if !reflect.DeepEqual(old.spec, spec) {
			releaseT()
			return cluster.JobStatus{}, insitu.Errorf(insitu.InvalidArgument,
				"job spec: id %q is in use by another job (running, or ended and still known); choose another id", spec.ID)
		}
		select {
		case <-old.run.Done():
		default:
			releaseT()
			return n.status(old), nil
		}
	}
	if n.jobs.running >= n.jobs.max() {
		releaseT()
		return cluster.JobStatus{}, insitu.Errorf(insitu.Unavailable,
			"node %s runs %d jobs already, its limit; try again once one has ended", n.id, n.jobs.running)
	}
	dst, err := n.newJobSink(spec.ID, tokenTTL(time.Duration(spec.Timeout)))
	if err != nil {
		releaseT()
		return cluster.JobStatus{}, err
	}
	opts := spec.Options()
	if spec.SkipUnchanged {
		dst.unchanged = &insitu.Origin{Transform: opts.TransformID, Args: insitu.ArgsDigest(opts.Args)}
	}
	if old != nil {
		// The old run's status and output records go.
		n.jobs.replace(old)
		n.outputs.forget(spec.ID)
	}
	opts.ProgressInterval = jobProgressEvery
	opts.CountFirst = true // so a lost node's unfinished objects are known
	opts.MaxFailures = MaxJobFailures
	opts.Logger = n.log.With("job", spec.ID)
	t = n.confine(t, embedded)
	j := &nodeJob{spec: spec, release: releaseT}
	if !spec.DryRun {
		rename := opts.Rename
		opts.Rename = func(in insitu.Name) (insitu.Name, error) {
			out, err := rename(in)
			if err != nil {
				return out, err
			}
			return out, dst.renamed(in, out)
		}
	}
	// The job lives past ctx, which bounds the start only, but not past
	// the node: Shutdown aborts it and waits for it.
	j.run = pipeline.Start(context.WithoutCancel(ctx), src, t, dst, opts)
	n.jobs.byID[spec.ID] = j
	n.jobs.running++
	n.life.add()
	go n.retire(j)
	if n.life.isClosing() {
		// Shutdown began while the job was starting, after it aborted the
		// jobs it found.
		j.aborted.Store(true)
		j.run.Abort()
	}
	if spec.Server != nil {
		n.log.Info("job started", "job", spec.ID, "bucket", spec.Bucket, "prefix", spec.Prefix,
			"server", spec.Server.Mode.String(), "local_file", spec.Server.LocalFile, "direct_put", spec.Server.DirectPut)
	} else {
		n.log.Info("job started", "job", spec.ID, "bucket", spec.Bucket, "prefix", spec.Prefix, "transform", spec.Transform)
	}
	return n.status(j), nil
}

// retire waits for a job to end, releases what it held and keeps its
// status among the last maxFinishedJobs.
func (n *Node) retire(j *nodeJob) {
	defer n.leave()
	<-j.run.Done()
	j.release()
	st := n.status(j)
	n.log.Info("job ended", "job", j.spec.ID, "state", st.State, "transformed", st.Stats.Transformed, "failed", st.Stats.Failed)
	n.jobs.mu.Lock()
	defer n.jobs.mu.Unlock()
	n.jobs.running--
	if n.jobs.byID[j.spec.ID] != j {
		return // a new run under its ID has replaced it already
	}
	n.jobs.finished = append(n.jobs.finished, j.spec.ID)
	for len(n.jobs.finished) > maxFinishedJobs {
		delete(n.jobs.byID, n.jobs.finished[0])
		n.outputs.forget(n.jobs.finished[0])
		n.jobs.finished = n.jobs.finished[1:]
	}
}

// JobStatus returns the status of the job id; a job the node does not
// know is NotFound. wait > 0 waits up to that long (or until ctx ends) for
// a running job to end first.
func (n *Node) JobStatus(ctx context.Context, id string, wait time.Duration) (cluster.JobStatus, error) {
	j, err := n.job(id)
	if err != nil {
		return cluster.JobStatus{}, err
	}
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-j.run.Done():
		case <-t.C:
		case <-ctx.Done():
		}
	}
	return n.status(j), nil
}

// AbortJob aborts the job id, waits until it has stopped (or ctx ends) and
// returns its status. Aborting a job touches no other job; outputs already
// stored stay, and none is left half-written.
func (n *Node) AbortJob(ctx context.Context, id string) (cluster.JobStatus, error) {
	j, err := n.job(id)
	if err != nil {
		return cluster.JobStatus{}, err
	}
	select {
	case <-j.run.Done():
	default:
		j.aborted.Store(true)
		j.run.Abort()
		select {
		case <-j.run.Done():
		case <-ctx.Done():
		}
	}
	return n.status(j), nil
}

func (n *Node) job(id string) (*nodeJob, error) {
	n.jobs.mu.Lock()
	defer n.jobs.mu.Unlock()
	j, ok := n.jobs.byID[id]
	if !ok {
		return nil, insitu.Errorf(insitu.NotFound, "no job %q on node %s", id, n.id)
	}
	return j, nil
}

func (n *Node) status(j *nodeJob) cluster.JobStatus {
	st := cluster.JobStatus{ID: j.spec.ID, Node: n.id, State: cluster.JobRunning, Stats: j.run.Stats()}
	select {
	case <-j.run.Done():
	default:
		return st
	}
	rep, err := j.run.Wait(context.Background())
	// The node's paths stay on the node: a transform's error may name the
	// input's file (Input.Path).
	rep.Failures = slices.Clone(rep.Failures)
	for i := range rep.Failures {
		rep.Failures[i].Message = n.scrub(rep.Failures[i].Message)
	}
	st.Report = &rep
	st.Stats = j.run.Stats() // the run's final stats, Final set
	switch {
	case j.aborted.Load():
		st.State = cluster.JobAborted
		st.Code, st.Message = insitu.Canceled, "aborted"
	case err != nil:
		st.State = cluster.JobFailed
		st.Code, st.Message = insitu.CodeOf(err), n.scrub(err.Error())
	default:
		st.State = cluster.JobDone
	}
	return st
}

// jobSink puts a job's outputs: on this node's store directly when it owns
// the name, else straight to the owner over HTTP. Each put of an output
// carries the job's ID and the input the output is made from, which the
// owner checks (see claimOutput); inputs holds them from the input's
// rename until the output's put has ended for good.
type jobSink struct {
	n      *Node
	job    string
	client *locality.Client
	remote *sink.ClusterSink

	mu     sync.Mutex
	inputs map[insitu.Name]insitu.Name // output → input

	// unchanged, set for a job with SkipUnchanged, is the origin its
	// outputs record but for the input and its version: Stat uses it to
	// tell whether the runner skips an output that exists.
	unchanged *insitu.Origin
}

// tokenTTL is the lifetime of the object tokens a job with the given
// per-object timeout hands out: the default, or the timeout and a margin
// when that is longer (at most locality.MaxTokenTTL).
func tokenTTL(timeout time.Duration) time.Duration {
	return min(max(locality.DefaultTokenTTL, timeout+5*time.Minute), locality.MaxTokenTTL)
}

// newJobSink returns the sink of the job with the given ID. Its puts to
// other nodes go through a client of the node's map and secret, on the
// node's HTTP client of the jobs' puts (so that they carry the claims,
// and the node's Shutdown closes their connections). The tokens its
// destinations carry (for a transform server's direct put) live for ttl.
func (n *Node) newJobSink(job string, ttl time.Duration) (*jobSink, error) {
	client, err := locality.NewClient(n.Map(), &locality.ClientOptions{Secret: n.secret, HTTPClient: n.hc, TokenTTL: ttl})
	if err != nil {
		return nil, err
	}
	remote, err := sink.Cluster(client)
	if err != nil {
		return nil, err
	}
	return &jobSink{n: n, job: job, client: client, remote: remote, inputs: map[insitu.Name]insitu.Name{}}, nil
}

// renamed notes that the job renamed the input in to out. A second input
// renamed to an output that another input is being put under is refused
// here already, with the error of the owner's check.
func (s *jobSink) renamed(in, out insitu.Name) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if prev, ok := s.inputs[out]; ok && prev != in {
		return renameClash(s.job, out, prev.String(), in.String())
	}
	s.inputs[out] = in
	return nil
}

// claim returns the claim of a put of out: the job and its input, if out
// came from a rename of the job.
func (s *jobSink) claim(out insitu.Name) claim {
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.inputs[out]
	if !ok {
		return claim{}
	}
	return claim{job: s.job, input: in}
}

// settle forgets out's input once its put has ended for good: the runner
// tries again after an Unavailable error only.
func (s *jobSink) settle(out insitu.Name, err error) {
	if insitu.CodeOf(err) != insitu.Unavailable {
		s.forget(out)
	}
}

func (s *jobSink) forget(out insitu.Name) {
	s.mu.Lock()
	delete(s.inputs, out)
	s.mu.Unlock()
}

func (s *jobSink) local(name insitu.Name) bool { return s.n.Map().Owns(s.n.id, name) }

func (s *jobSink) Put(ctx context.Context, name insitu.Name, r io.Reader, size int64) (insitu.PutResult, error) {
	return s.put(ctx, name, r, size, nil)
}

// PutOrigin is Put, recording origin with the output on its owner.
func (s *jobSink) PutOrigin(ctx context.Context, name insitu.Name, r io.Reader, size int64, origin insitu.Origin) (insitu.PutResult, error) {
	return s.put(ctx, name, r, size, &origin)
}

// put puts an output, with its origin when origin is not nil.
func (s *jobSink) put(ctx context.Context, name insitu.Name, r io.Reader, size int64, origin *insitu.Origin) (res insitu.PutResult, err error) {
	c := s.claim(name)
	if !c.none() {
		defer func() { s.settle(name, err) }()
	}
	if s.local(name) {
		if err := s.n.enter(); err != nil {
			return insitu.PutResult{}, err
		}
		defer s.n.leave()
		text := ""
		if origin != nil {
			text = originText(*origin)
		}
		return s.n.putOrigin(ctx, s.n.Map(), name, r, size, c, text)
	}
	if !c.none() {
		ctx = withClaim(ctx, c)
	}
	if origin != nil {
		return s.remote.PutOrigin(ctx, name, r, size, *origin)
	}
	return s.remote.Put(ctx, name, r, size)
}

func (s *jobSink) Stat(ctx context.Context, name insitu.Name) (obj insitu.Object, err error) {
	if c := s.claim(name); !c.none() {
		// SkipExisting: an output that exists is skipped, and one that
		// cannot be looked at fails; either way no put follows. With
		// SkipUnchanged, an output that exists is made again unless its
		// origin is the job's: its claim must then stay for the put.
		defer func() {
			if errors.Is(err, insitu.NotFound) || err == nil && s.redone(c.input, obj) {
				return
			}
			s.forget(name)
		}()
	}
	if s.local(name) {
		return s.n.Stat(ctx, name)
	}
	return s.remote.Stat(ctx, name)
}

// redone reports whether a job with SkipUnchanged makes out, which exists,
// again from the input in: whether out's recorded origin differs from the
// one the job records for in as it is in the store now. The runner
// decides with the version of in that its listing saw; if in changed
// since, the two may disagree, and then either a claim stays until the
// job ends or one output's put goes unclaimed (its owner does not check
// it against a second input renamed to the same name).
func (s *jobSink) redone(in insitu.Name, out insitu.Object) bool {
	if s.unchanged == nil {
		return false
	}
	fi, err := s.n.root.Lstat(filepath.FromSlash(relPath(in)))
	if err != nil || !fi.Mode().IsRegular() {
		return true
	}
	o := *s.unchanged
	o.Input, o.Version = in, atomicfile.Version(fi)
	text := originText(o)
	return text == "" || out.Origin != text
}

// Destination returns where a transform server puts out itself. The
// server's put carries no claim, so out is claimed first: here when the
// owner is this node, else by a claim call to the owner (POST
// /v1/jobs/{id}/claims). The claim then stands for the retries of the same
// input too.
func (s *jobSink) Destination(ctx context.Context, name insitu.Name) (insitu.Destination, error) {
	c := s.claim(name)
	if !c.none() {
		s.forget(name)
		if s.local(name) {
			if err := s.n.claimOutput(c, name); err != nil {
				return insitu.Destination{}, err
			}
		} else if err := s.claimRemote(ctx, c, name); err != nil {
			return insitu.Destination{}, err
		}
	}
	return s.remote.Destination(ctx, name)
}

// claimBody is the body of POST /v1/jobs/{id}/claims.
type claimBody struct {
	Input  insitu.Name `json:"input"`
	Output insitu.Name `json:"output"`
}

// claimRemote claims out for c's input on out's owner.
func (s *jobSink) claimRemote(ctx context.Context, c claim, out insitu.Name) error {
	owner := s.client.Map().Owner(out)
	err := s.client.Call(ctx, owner, http.MethodPost, "/v1/jobs/"+url.PathEscape(c.job)+"/claims", claimBody{Input: c.input, Output: out}, nil)
	if err != nil {
		return insitu.WithName(err, out)
	}
	return nil
}

// serveClaim: POST /v1/jobs/{id}/claims claims an output of the job for
// one of its inputs ({"input":{bucket,key},"output":{bucket,key}}), before
// a transform server puts the output here itself: 204, or 400
// invalid_argument naming both inputs when another input of the job has
// the output, or 409 not_owner.
func (n *Node) serveClaim(w http.ResponseWriter, r *http.Request, m *locality.Map) {
	if r.Method != http.MethodPost {
		n.methodNotAllowed(w, r, "POST")
		return
	}
	job := r.PathValue("id")
	var b claimBody
	dec := json.NewDecoder(io.LimitReader(r.Body, maxClaimBody))
	dec.DisallowUnknownFields()
	if err := decodeOne(dec, &b); err != nil {
		n.writeError(w, r, insitu.Errorf(insitu.InvalidArgument, "claim: %v", err))
		return
	}
	switch {
	case job == "" || len(job) > 64:
		n.writeError(w, r, insitu.Errorf(insitu.InvalidArgument, "claim: a job ID has 1 to 64 bytes"))
		return
	case b.Input.Validate() != nil || b.Input.Bucket == "":
		n.writeError(w, r, insitu.Errorf(insitu.InvalidArgument, "claim: input %q is not an object name", b.Input))
		return
	case checkName(b.Output) != nil:
		n.writeError(w, r, checkName(b.Output))
		return
	}
	if err := n.own(m, b.Output); err != nil {
		n.writeError(w, r, err)
		return
	}
	if err := n.claimOutput(claim{job: job, input: b.Input}, b.Output); err != nil {
		n.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// maxClaimBody bounds the body of a claim: two names of at most 1,279
// bytes each, escaped.
const maxClaimBody = 16 << 10

// serveJobs: POST /v1/jobs starts a job; GET lists the jobs.
func (n *Node) serveJobs(w http.ResponseWriter, r *http.Request, _ *locality.Map) {
	switch r.Method {
	case http.MethodPost:
		var spec cluster.JobSpec
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxJobBody))
		dec.DisallowUnknownFields()
		if err := decodeOne(dec, &spec); err != nil {
			n.writeError(w, r, insitu.Errorf(insitu.InvalidArgument, "job spec: %w", err))
			return
		}
		st, err := n.StartJob(r.Context(), spec)
		if err != nil {
			n.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusCreated, st)
	case http.MethodGet:
		n.jobs.mu.Lock()
		jobs := slices.Collect(maps.Values(n.jobs.byID))
		n.jobs.mu.Unlock()
		out := make([]cluster.JobStatus, 0, len(jobs))
		for _, j := range jobs {
			out = append(out, n.status(j))
		}
		slices.SortFunc(out, func(a, b cluster.JobStatus) int { return strings.Compare(a.ID, b.ID) })
		writeJSON(w, http.StatusOK, out)
	default:
		n.methodNotAllowed(w, r, "GET, POST")
	}
}

// decodeOne decodes the one JSON value of a body into v: anything but
// white space after it is an error.
func decodeOne(dec *json.Decoder, v any) error {
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		if err == nil {
			err = errors.New("unexpected data after the JSON value")
		}
		return fmt.Errorf("after the JSON value: %w", err)
	}
	return nil
}

// serveJob: GET /v1/jobs/{id}?wait= reports; DELETE aborts.
func (n *Node) serveJob(w http.ResponseWriter, r *http.Request, _ *locality.Map) {
	id := r.PathValue("id")
	var st cluster.JobStatus
	var err error
	switch r.Method {
	case http.MethodGet:
		var wait time.Duration
		if v := r.URL.Query().Get("wait"); v != "" {
			if wait, err = time.ParseDuration(v); err != nil || wait < 0 {
				n.writeError(w, r, insitu.Errorf(insitu.InvalidArgument, "wait=%q: want a duration such as 500ms", v))
				return
			}
		}
		st, err = n.JobStatus(r.Context(), id, min(wait, maxJobWait))
	case http.MethodDelete:
		st, err = n.AbortJob(r.Context(), id)
	default:
		n.methodNotAllowed(w, r, "GET, DELETE")
		return
	}
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// jobChain returns the transform of a job that names a transform or a
// chain of them, whether its first stage runs in this process (a builtin,
// which then gets inputs as an embedded transform does), and the function
// that releases what the stages hold, when the job ends.
func (n *Node) jobChain(ctx context.Context, rc readChain) (insitu.Transform, bool, func(), error) {
	t, first, release, err := n.chainOf(ctx, rc)
	switch {
	case err == nil:
		return t, first.Mode == "", release, nil // a builtin first runs embedded
	case insitu.CodeOf(err) == insitu.Unavailable:
		return nil, false, nil, err // a server that does not answer now
	}
	return nil, false, nil, insitu.Errorf(insitu.InvalidArgument, "job spec: transform: %s", wire.Body(err).Message)
}
