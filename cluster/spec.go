package cluster

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/insitu-data/insitu/pipeline"
	"github.com/insitu-data/insitu/transport"

	"github.com/insitu-data/insitu"
)

// JobSpec describes a job that runs on every node of a cluster: each node
// transforms the objects of Bucket (under Prefix) that it owns, with a
// transform registered on it by name (Transform) or with the transform
// server next to it (Server), and puts each output straight to the node
// that owns the output's name in DstBucket. It is the body of
// POST /v1/jobs; see [Run].
type JobSpec struct {
	// ID names the job on every node; Run sets it when empty.
	ID string `json:"id,omitempty"`
	// Bucket and Prefix select the input objects.
	Bucket string `json:"bucket"`
	Prefix string `json:"prefix,omitempty"`
	// DstBucket receives the outputs. It must differ from Bucket: a job
	// that wrote into the bucket it lists could read its own outputs.
	DstBucket string `json:"dst_bucket"`
	// Transform is the name of a transform every node knows: an
	// in-process builtin (node.Options.Transforms, "embedded" mode) or a
	// transform server registered by name at run time
	// ([RegisterTransform]), which the job reaches as its registration
	// says. Exactly one of Transform and Server is set.
	Transform string `json:"transform,omitempty"`
	// Server, when set, runs the job through the transform server next to
	// each node ("sidecar" mode): the server at the TransformURL of the
	// node's own entry in the cluster map, reached over the transport and
	// with the options it names. Exactly one of Transform and Server is
	// set.
	Server *ServerSpec `json:"server,omitempty"`
	// Rename, when set, renames each output: the extension From is
	// replaced by To (see [pipeline.ReplaceExt]).
	Rename *RenameExt `json:"rename,omitempty"`
	// Args reach the transform unchanged.
	Args string `json:"args,omitempty"`
	// Workers, SkipExisting, SkipUnchanged, DryRun, ContinueOnError,
	// Retries and Timeout are the runner's [pipeline.Options] of the same
	// names, per node. Every output a node's job puts records its origin
	// (the node's store keeps it with the bytes), so that a rerun with
	// SkipUnchanged makes again exactly the outputs whose input, transform
	// (TransformID) or args changed.
	Workers         int      `json:"workers,omitempty"`
	SkipExisting    bool     `json:"skip_existing,omitempty"`
	SkipUnchanged   bool     `json:"skip_unchanged,omitempty"`
	DryRun          bool     `json:"dry_run,omitempty"`
	ContinueOnError bool     `json:"continue_on_error,omitempty"`
	Retries         int      `json:"retries,omitempty"`
	Timeout         Duration `json:"timeout,omitempty"`
	// TransformID names the transform, and the version of its behaviour,
	// in the origins the job records ([pipeline.Options.TransformID]); at
	// most 256 bytes of UTF-8. Change it when the transform's behaviour
	// changes, so that SkipUnchanged makes its outputs again. Default: the
	// name in Transform, or "transform-server" for a job with a Server
	// (whose transform insitu cannot name: skip_unchanged requires
	// TransformID for those).
	TransformID string `json:"transform_id,omitempty"`
	// BatchSize is the most objects a node hands its transform in one
	// call when the transform takes batches (an [insitu.BatchTransform],
	// such as ffmpeg's transcoders): [pipeline.BatchOptions].Size, with
	// its default; 1 turns batching off. Workers then bounds the batches
	// in flight on each node.
	BatchSize int `json:"batch_size,omitempty"`
}

// MaxBatchSize is the largest [JobSpec.BatchSize]: a batch of ffmpeg
// inputs holds a file descriptor per input in one process.
const MaxBatchSize = 256

// ServerTransformID is the default [JobSpec.TransformID] of a job that
// runs through a transform server.
const ServerTransformID = "transform-server"

// maxTransformID bounds JobSpec.TransformID.
const maxTransformID = 256

// ServerSpec says how a node reaches the transform server next to it in a
// job ([JobSpec.Server]).
type ServerSpec struct {
	// Mode is the transport, "ws", "hpush" or "hpull" in JSON:
	// [transport.WS] (the default, the zero Mode), a pooled WebSocket
	// stream that carries the bytes; [transport.HPush], one HTTP PUT per
	// object with the bytes; or [transport.HPull], one HTTP GET per object
	// that names the object's URL on the node, from which the server
	// fetches the bytes.
	Mode transport.Mode `json:"mode,omitzero"`
	// LocalFile sends the server the path of the input's file on the
	// node's disk instead of its bytes (the "fqn" mode of AIStore), for a
	// server that shares the node's disk and allows its store directory.
	LocalFile bool `json:"local_file,omitempty"`
	// DirectPut has the server put each output straight to the node that
	// owns the output's name and answer with its size and checksum; without
	// it the output comes back to the node, which puts it to its owner.
	DirectPut bool `json:"direct_put,omitempty"`
}

// RenameExt is a serializable rename rule: the extension From becomes To.
type RenameExt struct {
	From string `json:"from_ext"`
	To   string `json:"to_ext"`
}

// Validate checks the spec before anything runs; known reports whether a
// transform name is registered (nil: any name is). Every problem is an
// [insitu.InvalidArgument] error that says what is wrong.
func (s *JobSpec) Validate(known func(transform string) bool) error {
	bad := func(format string, args ...any) error {
		return insitu.Errorf(insitu.InvalidArgument, "job spec: "+format, args...)
	}
	if err := insitu.ValidateBucket(s.Bucket); err != nil {
		return bad("bucket: %w", err)
	}
	if err := insitu.ValidateBucket(s.DstBucket); err != nil {
		return bad("dst_bucket: %w", err)
	}
	if s.DstBucket == s.Bucket {
		return bad("dst_bucket is the source bucket %q; a job that writes into the bucket it lists could read its own outputs", s.Bucket)
	}
	if s.ID != "" && !validID(s.ID) {
		return bad("id %q: use 1 to 64 letters, digits, '-' and '_'", s.ID)
	}
	switch {
	case s.Transform == "" && s.Server == nil:
		return bad("no transform named: set transform (in-process on each node) or server (the transform server next to each node)")
	case s.Transform != "" && s.Server != nil:
		return bad("both transform %q and server are set; a job runs one or the other", s.Transform)
	case s.Server != nil && !slices.Contains(transport.Modes(), s.Server.Mode):
		return bad("server: unknown mode %v (want ws, hpush or hpull)", s.Server.Mode)
	case s.Transform != "" && known != nil && !known(s.Transform):
		return bad("unknown transform %q", s.Transform)
	case s.Workers < 0:
		return bad("workers is %d; it must be positive, or 0 for the default", s.Workers)
	case s.Timeout < 0:
		return bad("timeout is %v; it must be positive, or 0 for none", time.Duration(s.Timeout))
	case s.BatchSize < 0 || s.BatchSize > MaxBatchSize:
		return bad("batch_size is %d; want 1 to %d, or 0 for the default", s.BatchSize, MaxBatchSize)
	case s.SkipExisting && s.SkipUnchanged:
		return bad("skip_existing and skip_unchanged are both set; set one")
	case s.SkipUnchanged && s.Server != nil && s.TransformID == "":
		return bad("skip_unchanged with a server needs transform_id: insitu cannot tell what a transform server runs, so a changed one's outputs would be kept")
	case len(s.TransformID) > maxTransformID || !utf8.ValidString(s.TransformID):
		return bad("transform_id: at most %d bytes of UTF-8", maxTransformID)
	}
	if r := s.Rename; r != nil {
		for _, ext := range []string{r.From, r.To} {
			if ext == "" || strings.ContainsAny(ext, "/\x00") || !strings.HasPrefix(ext, ".") {
				return bad("rename: extension %q must start with '.' and have no '/' or NUL", ext)
			}
		}
	}
	return nil
}

// Options returns the runner options the spec asks for.
func (s *JobSpec) Options() *pipeline.Options {
	o := &pipeline.Options{
		Workers:         s.Workers,
		Args:            s.Args,
		SkipExisting:    s.SkipExisting,
		SkipUnchanged:   s.SkipUnchanged,
		TransformID:     s.TransformID,
		DryRun:          s.DryRun,
		ContinueOnError: s.ContinueOnError,
		Retries:         s.Retries,
		Timeout:         time.Duration(s.Timeout),
		DirectPut:       s.Server != nil && s.Server.DirectPut,
	}
	if s.BatchSize != 0 {
		o.Batch = &pipeline.BatchOptions{Size: s.BatchSize}
	}
	switch {
	case o.TransformID != "":
	case s.Server != nil:
		o.TransformID = ServerTransformID
	default:
		o.TransformID = s.Transform
	}
	dst := s.DstBucket
	rename := func(n insitu.Name) (insitu.Name, error) { return n, nil }
	if s.Rename != nil {
		rename = pipeline.ReplaceExt(s.Rename.From, s.Rename.To)
	}
	o.Rename = func(n insitu.Name) (insitu.Name, error) {
		out, err := rename(n)
		out.Bucket = dst
		return out, err
	}
	return o
}

func validID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for _, c := range []byte(id) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Duration is a time.Duration that JSON encodes as a string such as "1m30s".
type Duration time.Duration

// MarshalJSON encodes d as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON accepts a Go duration string, or a number of nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n int64
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("duration %s: want a string such as \"30s\"", b)
		}
		*d = Duration(n)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}
