// Package agent runs insitu jobs next to the volume servers of a SeaweedFS
// cluster, the way insitu's own storage nodes run them next to their
// disks: an Agent beside each volume server serves the job endpoints of
// the node API (POST /v1/jobs, GET and DELETE /v1/jobs/{id}), so that
// cluster.Run drives a job over SeaweedFS exactly as over insitu's nodes,
// sending only control messages.
//
// Each agent runs its part of a job on the objects its volume server
// holds (the Owner that seaweedfs.Source lists), reads them from that
// volume server, transforms them in-process (JobSpec.Transform, from
// Options.Transforms) or through the transform server next to it over any
// transport (JobSpec.Server: ws, hpush or hpull), and stores each output
// pinned to the same volume server. With hpush, the bytes travel between
// the agent and the transform server next to it, not through the caller:
// the mode that remote mode (transport.Placed) cannot make local on
// SeaweedFS, since a needle has no file path to send instead.
//
// The agents' URLs are the node URLs of the map that cluster.Run is given:
// seaweedfs.TopologyOptions.NodeURL maps each volume server to its agent.
package agent

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"iter"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/cluster"
	"github.com/insitu-data/insitu/internal/wire"
	"github.com/insitu-data/insitu/locality"
	"github.com/insitu-data/insitu/pipeline"
	"github.com/insitu-data/insitu/seaweedfs"
	"github.com/insitu-data/insitu/transport"
)

// Options configure an [Agent]. Server is required; a nil *Options is an
// error.
type Options struct {
	// Server is the volume server the agent is next to ("host:port", as
	// the master names it: the Owner of the objects it holds). Required.
	Server string
	// Secret checks the coordinator's tokens (the cluster secret, as
	// insitu's nodes hold it): every endpoint requires an administrative
	// token of it. Default: the zero Secret, no authentication.
	Secret locality.Secret
	// Transforms are the in-process transforms a job may name
	// (JobSpec.Transform). Default: none.
	Transforms map[string]insitu.Transform
	// TransformURL is the base URL of the transform server next to the
	// volume server, for jobs with a Server. Default: none (such jobs are
	// refused with InvalidArgument).
	TransformURL string
	// TransformSecret is that transform server's secret. Default: none.
	TransformSecret locality.Secret
	// Placement gives each object's bytes for ws and hpull jobs, which the
	// transform server fetches itself (seaweedfs.Placement.SourceURL),
	// and assigns the objects that no volume server holds (empty ones,
	// those kept in the filer) to one agent: the owner of their name in
	// its map. Give every agent the same placement. Default: none (ws then
	// sends the bytes; hpull is refused; objects no volume server holds
	// are done by no agent).
	Placement *seaweedfs.Placement
	// Sink stores the outputs; each is pinned to Server. Default: a
	// seaweedfs.Sink of the client's.
	Sink *seaweedfs.SinkOptions
	// Logger receives the agent's log records. Default: none.
	Logger *slog.Logger
}

// MaxJobs is the most jobs an agent runs at once; one more is refused with
// Unavailable (503), as a node does.
const MaxJobs = 16

// maxSpec bounds a job spec's body.
const maxSpec = 1 << 20

// Agent runs the jobs of one volume server. Serve its Handler; Close
// aborts its jobs. It is safe for concurrent use.
type Agent struct {
	c    *seaweedfs.Client
	opts Options
	log  *slog.Logger

	mu     sync.Mutex
	jobs   map[string]*job
	order  []string // the jobs' ids, oldest first
	closed bool
}

type job struct {
	spec    cluster.JobSpec
	run     *pipeline.Job
	aborted atomic.Bool
}

// MaxEndedJobs is how many ended jobs an agent remembers, as a node does.
const MaxEndedJobs = 256

// forgetEnded drops the oldest ended jobs past MaxEndedJobs. a.mu is held.
func (a *Agent) forgetEnded() {
	ended := 0
	for _, id := range a.order {
		if j := a.jobs[id]; j != nil && isDone(j) {
			ended++
		}
	}
	keep := a.order[:0]
	for _, id := range a.order {
		j := a.jobs[id]
		if j == nil {
			continue
		}
		if ended > MaxEndedJobs && isDone(j) {
			delete(a.jobs, id)
			ended--
			continue
		}
		keep = append(keep, id)
	}
	a.order = keep
}

func isDone(j *job) bool {
	select {
	case <-j.run.Done():
		return true
	default:
		return false
	}
}

// New returns the agent of c's volume server opts.Server. A nil c, nil
// opts or an empty Server is an InvalidArgument error.
func New(c *seaweedfs.Client, opts *Options) (*Agent, error) {
	if c == nil || opts == nil || opts.Server == "" {
		return nil, insitu.Errorf(insitu.InvalidArgument, "agent.New: a client and Options.Server are required")
	}
	a := &Agent{c: c, opts: *opts, log: opts.Logger, jobs: map[string]*job{}}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	return a, nil
}

// Handler returns the agent's HTTP handler: POST /v1/jobs (a
// cluster.JobSpec; 201 with the job's status), GET /v1/jobs/{id}?wait=
// (its status, waiting up to wait, at most 60 s, for it to end) and
// DELETE /v1/jobs/{id} (abort it; its final status), as
// docs/PROTOCOL.md gives them for a node, and GET /v1/health.
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "server": a.opts.Server})
	})
	mux.HandleFunc("POST /v1/jobs", a.authed(a.serveStart))
	mux.HandleFunc("GET /v1/jobs/{id}", a.authed(a.serveStatus))
	mux.HandleFunc("DELETE /v1/jobs/{id}", a.authed(a.serveAbort))
	return mux
}

func (a *Agent) authed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !a.opts.Secret.Verify(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="insitu"`)
			wire.WriteBody(w, http.StatusUnauthorized, wire.Body(insitu.Errorf(insitu.PermissionDenied, "a valid administrative token is required")))
			return
		}
		h(w, r)
	}
}

func (a *Agent) serveStart(w http.ResponseWriter, r *http.Request) {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxSpec))
	dec.DisallowUnknownFields()
	var spec cluster.JobSpec
	if err := dec.Decode(&spec); err != nil {
		a.writeError(w, insitu.Errorf(insitu.InvalidArgument, "job spec: %v", err))
		return
	}
	if _, err := dec.Token(); err != io.EOF {
		a.writeError(w, insitu.Errorf(insitu.InvalidArgument, "job spec: more after the JSON value"))
		return
	}
	st, err := a.Start(r.Context(), spec)
	if err != nil {
		a.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, st)
}

func (a *Agent) serveStatus(w http.ResponseWriter, r *http.Request) {
	var wait time.Duration
	if v := r.URL.Query().Get("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			a.writeError(w, insitu.Errorf(insitu.InvalidArgument, "wait %q: want a duration", v))
			return
		}
		wait = min(d, 60*time.Second)
	}
	st, err := a.Status(r.Context(), r.PathValue("id"), wait)
	if err != nil {
		a.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (a *Agent) serveAbort(w http.ResponseWriter, r *http.Request) {
	st, err := a.Abort(r.Context(), r.PathValue("id"))
	if err != nil {
		a.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// Start starts the agent's part of spec: the objects of spec.Bucket on
// its volume server. Posting the spec of a running job again returns that
// job; the spec of an ended one starts a new run under its id; another
// spec under a known id is InvalidArgument.
func (a *Agent) Start(ctx context.Context, spec cluster.JobSpec) (cluster.JobStatus, error) {
	known := func(name string) bool { _, ok := a.opts.Transforms[name]; return ok }
	if spec.ID == "" {
		return cluster.JobStatus{}, insitu.Errorf(insitu.InvalidArgument, "job spec: id is empty")
	}
	if err := spec.Validate(known); err != nil {
		return cluster.JobStatus{}, err
	}
	// The transform server is dialed before the job table is locked, so
	// that a slow dial holds up no status or abort.
	t, closeT, err := a.transform(ctx, &spec)
	if err != nil {
		return cluster.JobStatus{}, err
	}
	started := false
	defer func() {
		if !started {
			closeT()
		}
	}()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return cluster.JobStatus{}, insitu.Errorf(insitu.Unavailable, "the agent is closed")
	}
	if old := a.jobs[spec.ID]; old != nil {
		select {
		case <-old.run.Done():
		default:
			if specJSON(old.spec) != specJSON(spec) {
				return cluster.JobStatus{}, insitu.Errorf(insitu.InvalidArgument, "job spec: id %q is in use by another job", spec.ID)
			}
			return a.status(old), nil
		}
		if specJSON(old.spec) != specJSON(spec) {
			return cluster.JobStatus{}, insitu.Errorf(insitu.InvalidArgument, "job spec: id %q is in use by another job", spec.ID)
		}
	}
	running := 0
	for _, j := range a.jobs {
		select {
		case <-j.run.Done():
		default:
			running++
		}
	}
	if running >= MaxJobs {
		return cluster.JobStatus{}, insitu.Errorf(insitu.Unavailable, "the agent of %s runs %d jobs already; try again later", a.opts.Server, running)
	}
	a.forgetEnded()
	src, err := seaweedfs.NewSource(a.c, spec.Bucket, &seaweedfs.SourceOptions{Prefix: spec.Prefix})
	if err != nil {
		return cluster.JobStatus{}, err
	}
	sopts := seaweedfs.SinkOptions{}
	if a.opts.Sink != nil {
		sopts = *a.opts.Sink
	}
	server := a.opts.Server
	sopts.Pin = func(insitu.Name) string { return server }
	dst, err := seaweedfs.NewSink(a.c, &sopts)
	if err != nil {
		return cluster.JobStatus{}, err
	}
	po := spec.Options()
	po.Logger = a.log.With("job", spec.ID)
	po.CountFirst = true
	j := &job{spec: spec}
	j.run = pipeline.Start(context.WithoutCancel(ctx), ownedSource{Source: src, server: server, place: a.opts.Placement}, t, dst, po)
	started = true
	go func() { <-j.run.Done(); closeT() }()
	a.jobs[spec.ID] = j
	a.order = append(slices.DeleteFunc(a.order, func(id string) bool { return id == spec.ID }), spec.ID)
	return a.status(j), nil
}

// transform returns the transform of spec: an in-process one, or a client
// of the transform server next to the volume server, and what closes it.
func (a *Agent) transform(ctx context.Context, spec *cluster.JobSpec) (insitu.Transform, func(), error) {
	if spec.Server == nil {
		return a.opts.Transforms[spec.Transform], func() {}, nil
	}
	switch {
	case a.opts.TransformURL == "":
		return nil, nil, insitu.Errorf(insitu.InvalidArgument, "job spec: server: the agent of %s has no transform server", a.opts.Server)
	case spec.Server.LocalFile:
		return nil, nil, insitu.Errorf(insitu.InvalidArgument, "job spec: server: local_file: a SeaweedFS object has no local file")
	case spec.Server.Mode == transport.HPull && a.opts.Placement == nil:
		return nil, nil, insitu.Errorf(insitu.InvalidArgument, "job spec: server: hpull needs the agent's Placement")
	}
	o := &transport.DialOptions{Mode: spec.Server.Mode, Secret: a.opts.TransformSecret, Logger: a.log}
	if p := a.opts.Placement; p != nil && spec.Server.Mode != transport.HPush {
		o.SourceURL = func(obj insitu.Object) (string, string, error) {
			return p.SourceURL(context.Background(), obj) // bounded by the client's timeouts
		}
	}
	c, err := transport.Dial(ctx, a.opts.TransformURL, o)
	if err != nil {
		return nil, nil, err
	}
	return c, func() { c.Close() }, nil
}

// ownedSource lists only the objects whose bytes are on server, and
// those held by no volume server (empty, or kept in the filer) that the
// placement's map gives to server, so that one agent does each.
type ownedSource struct {
	*seaweedfs.Source
	server string
	place  *seaweedfs.Placement
}

func (s ownedSource) mine(obj insitu.Object) bool {
	if obj.Owner != "" {
		return obj.Owner == s.server
	}
	if s.place == nil {
		return false
	}
	m := s.place.Map()
	return m.Len() > 0 && m.Owner(obj.Name).ID == s.server
}

func (s ownedSource) Objects(ctx context.Context) iter.Seq2[insitu.Object, error] {
	return func(yield func(insitu.Object, error) bool) {
		for obj, err := range s.Source.Objects(ctx) {
			if err == nil && !s.mine(obj) {
				continue
			}
			if !yield(obj, err) {
				return
			}
		}
	}
}

// Status returns the status of job id, waiting up to wait for it to end.
func (a *Agent) Status(ctx context.Context, id string, wait time.Duration) (cluster.JobStatus, error) {
	j, err := a.job(id)
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
	return a.status(j), nil
}

// Abort aborts job id and waits for it to stop (or ctx to end).
func (a *Agent) Abort(ctx context.Context, id string) (cluster.JobStatus, error) {
	j, err := a.job(id)
	if err != nil {
		return cluster.JobStatus{}, err
	}
	select {
	case <-j.run.Done():
	default:
		j.aborted.Store(true)
		j.run.Abort()
	}
	select {
	case <-j.run.Done():
	case <-ctx.Done():
	}
	return a.status(j), nil
}

// Close aborts every job and waits for them to stop, or ctx to end.
func (a *Agent) Close(ctx context.Context) error {
	a.mu.Lock()
	a.closed = true
	jobs := make([]*job, 0, len(a.jobs))
	for _, j := range a.jobs {
		jobs = append(jobs, j)
	}
	a.mu.Unlock()
	for _, j := range jobs {
		j.aborted.Store(true)
		j.run.Abort()
	}
	for _, j := range jobs {
		select {
		case <-j.run.Done():
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (a *Agent) job(id string) (*job, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	j := a.jobs[id]
	if j == nil {
		return nil, insitu.Errorf(insitu.NotFound, "no job %q", id)
	}
	return j, nil
}

func (a *Agent) status(j *job) cluster.JobStatus {
	st := cluster.JobStatus{ID: j.spec.ID, Node: a.opts.Server, State: cluster.JobRunning, Stats: j.run.Stats()}
	select {
	case <-j.run.Done():
	default:
		return st
	}
	rep, err := j.run.Wait(context.Background())
	st.Report = &rep
	st.Stats = j.run.Stats()
	switch {
	case j.aborted.Load():
		st.State, st.Code, st.Message = cluster.JobAborted, insitu.Canceled, "aborted"
	case err != nil:
		st.State, st.Code, st.Message = cluster.JobFailed, insitu.CodeOf(err), err.Error()
	default:
		st.State = cluster.JobDone
	}
	return st
}

func (a *Agent) writeError(w http.ResponseWriter, err error) {
	if !errors.Is(err, insitu.InvalidArgument) && !errors.Is(err, insitu.NotFound) {
		a.log.Warn("request failed", "err", err)
	}
	wire.WriteError(w, err)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// specJSON is the spec's canonical text, to compare two specs.
func specJSON(s cluster.JobSpec) string {
	var b strings.Builder
	json.NewEncoder(&b).Encode(s)
	return b.String()
}
