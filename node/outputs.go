package node

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/wire"
)

// DefaultOutputRecords is the number of output names a node remembers for
// the jobs that put to it when Options.OutputRecords is 0.
const DefaultOutputRecords = 1 << 20

// maxOutputJobs bounds the jobs whose outputs a node remembers at once.
const maxOutputJobs = maxFinishedJobs

// claim says which input of which job an output is made from.
type claim struct {
	job   string
	input insitu.Name
}

func (c claim) none() bool { return c.job == "" }

// outputTable remembers, per job, which input each output name came from
// (by the XXH64 of the output's name), so that an owner refuses a second,
// different input of the same job renamed to the same output. It holds at
// most limit names over at most maxOutputJobs jobs, dropping the jobs
// least recently put to first.
type outputTable struct {
	mu    sync.Mutex
	limit int
	total int
	tick  uint64
	jobs  map[string]*outputRecord
}

type outputRecord struct {
	// inputs maps the XXH64 of an output's name to where its input's
	// name is in names: chunk<<40 | offset<<16 | length. Names are packed
	// in pointer-free chunks, so a record costs about 45 bytes an output
	// (not 75 as a map of strings), and the garbage collector has nothing
	// in it to scan.
	inputs map[uint64]uint64
	names  [][]byte // chunks of nameChunk bytes
	used   uint64   // the table's tick at the last claim
	full   bool     // the job met the limit: its later outputs are not checked
}

// nameChunk is the size of an outputRecord's chunks of names; a name
// (at most a bucket, a slash and insitu.MaxKeyLen bytes) fits in one.
const nameChunk = 64 << 10

// name returns the name at ref.
func (r *outputRecord) name(ref uint64) []byte {
	c, off, n := ref>>40, ref>>16&(1<<24-1), ref&(1<<16-1)
	return r.names[c][off : off+n]
}

// add stores name and returns its ref.
func (r *outputRecord) add(name string) uint64 {
	last := len(r.names) - 1
	if last < 0 || len(r.names[last])+len(name) > cap(r.names[last]) {
		r.names = append(r.names, make([]byte, 0, max(nameChunk, len(name))))
		last++
	}
	off := len(r.names[last])
	r.names[last] = append(r.names[last], name...)
	return uint64(last)<<40 | uint64(off)<<16 | uint64(len(name))
}

// claim records that c.input makes out, and returns the name of another
// input of the job already recorded for out, if any. full is true the
// first time a job meets the table's limit.
func (t *outputTable) claim(c claim, out insitu.Name) (other string, full bool) {
	var d xxhash.Digest
	d.Reset()
	d.WriteString(out.Bucket)
	d.WriteString("/")
	d.WriteString(out.Key)
	h := d.Sum64()
	in := c.input.String()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.jobs == nil {
		t.jobs = map[string]*outputRecord{}
	}
	r := t.jobs[c.job]
	if r == nil {
		if len(t.jobs) >= maxOutputJobs {
			t.evict(nil)
		}
		r = &outputRecord{inputs: map[uint64]uint64{}}
		t.jobs[c.job] = r
	}
	t.tick++
	r.used = t.tick
	if ref, ok := r.inputs[h]; ok {
		if prev := r.name(ref); string(prev) != in {
			return string(prev), false
		}
		return "", false
	}
	if r.full {
		return "", false
	}
	for t.total >= t.limit {
		if !t.evict(r) {
			r.full = true
			return "", true
		}
	}
	if len(in) >= 1<<16 {
		// Longer than a ref holds; no valid name is (a bucket, a slash
		// and insitu.MaxKeyLen bytes): left unchecked rather than kept
		// wrong.
		return "", false
	}
	r.inputs[h] = r.add(in)
	t.total++
	return "", false
}

// evict drops the record of the job least recently put to, other than
// keep, and reports whether there was one.
func (t *outputTable) evict(keep *outputRecord) bool {
	var (
		oldest string
		min    uint64
		found  bool
	)
	for id, r := range t.jobs {
		if r != keep && (!found || r.used < min) {
			oldest, min, found = id, r.used, true
		}
	}
	if found {
		t.drop(oldest)
	}
	return found
}

// drop forgets the outputs of job; the caller holds t.mu.
func (t *outputTable) drop(job string) {
	if r := t.jobs[job]; r != nil {
		t.total -= len(r.inputs)
		delete(t.jobs, job)
	}
}

func (t *outputTable) forget(job string) {
	t.mu.Lock()
	t.drop(job)
	t.mu.Unlock()
}

// claimOutput checks, for a put of the output out made by a job from an
// input (c), that no other input of the job was put or is being put under
// out: a rename that gives two inputs the same output would lose one of
// them. A second input is an InvalidArgument error that names both.
func (n *Node) claimOutput(c claim, out insitu.Name) error {
	if c.none() {
		return nil
	}
	other, full := n.outputs.claim(c, out)
	if full {
		n.log.Warn("job has more outputs on this node than it remembers; later outputs are not checked for two inputs renamed to one name",
			"job", c.job, "limit", n.outputs.limit)
	}
	if other != "" {
		return renameClash(c.job, out, other, c.input.String())
	}
	return nil
}

// renameClash is the error of a second input of a job renamed to out.
func renameClash(job string, out insitu.Name, first, second string) error {
	return &insitu.Error{Code: insitu.InvalidArgument, Name: out,
		Msg: fmt.Sprintf("%s is already the output of %s in job %s, so %s cannot be renamed to it: two inputs cannot be renamed to one output name", out, first, job, second)}
}

// claimOf reads the job and input headers of a PUT; none is no claim.
func claimOf(h http.Header) (claim, error) {
	job, in := h.Get(wire.Job), h.Get(wire.Input)
	if job == "" && in == "" {
		return claim{}, nil
	}
	if job == "" || in == "" {
		return claim{}, insitu.Errorf(insitu.InvalidArgument, "headers %s and %s go together; got only one", wire.Job, wire.Input)
	}
	if len(job) > 64 {
		return claim{}, insitu.Errorf(insitu.InvalidArgument, "header %s: a job ID has at most 64 bytes", wire.Job)
	}
	s, err := url.PathUnescape(in)
	if err != nil {
		return claim{}, insitu.Errorf(insitu.InvalidArgument, "header %s: %v", wire.Input, err)
	}
	bucket, key, _ := strings.Cut(s, "/")
	name := insitu.Name{Bucket: bucket, Key: key}
	if err := name.Validate(); err != nil || bucket == "" {
		return claim{}, insitu.Errorf(insitu.InvalidArgument, "header %s: %q is not an object name (bucket/key)", wire.Input, s)
	}
	return claim{job: job, input: name}, nil
}

// claimKey carries a claim in the context of a put, for claimTransport.
type claimKey struct{}

// claimTransport sets the job and input headers on the PUTs whose context
// carries a claim: the job sink's puts to other nodes go through the one
// node client (locality.Client), which knows nothing of jobs.
type claimTransport struct{ base http.RoundTripper }

func (t claimTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c, ok := req.Context().Value(claimKey{}).(claim)
	if !ok || c.none() || req.Method != http.MethodPut {
		return t.base.RoundTrip(req)
	}
	r := req.Clone(req.Context())
	r.Header.Set(wire.Job, c.job)
	r.Header.Set(wire.Input, url.PathEscape(c.input.String()))
	return t.base.RoundTrip(r)
}

// CloseIdleConnections closes the idle connections of the base transport.
func (t claimTransport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// newJobHTTPClient returns the HTTP client of the node's jobs' puts to
// other nodes: locality.Client's default transport settings (small puts
// on the caller's goroutine: wire.InlineTransport), the claim headers, and
// bounds on a peer (the node's ProgressTimeout): on its answer once the
// request is sent, on each read of the answer and on each write of the
// request, so that a frozen peer, or one that never reads, cannot hold a
// job's worker.
func newJobHTTPClient(dial, answerWithin time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = wire.DeadlineDialer(dial, answerWithin, answerWithin)
	tr.MaxIdleConnsPerHost = 64
	tr.ExpectContinueTimeout = time.Second
	tr.ResponseHeaderTimeout = answerWithin
	return &http.Client{Transport: claimTransport{base: wire.NewInlineTransport(tr, dial, answerWithin, answerWithin)}}
}

func withClaim(ctx context.Context, c claim) context.Context {
	return context.WithValue(ctx, claimKey{}, c)
}
