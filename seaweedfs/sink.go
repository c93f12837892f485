package seaweedfs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/putcheck"
)

// SinkOptions configure [NewSink]. A nil *SinkOptions means the defaults.
type SinkOptions struct {
	// Pin returns the volume server ("host:port", as the master names it:
	// the Owner of objects it holds, an Addr of [Client.VolumeServers];
	// this holds for volume servers started without -id, which
	// SeaweedFS pins by) that must store the bytes of name, or "" to let
	// the master choose.
	// To keep an output on the volume server of its input, pin to the
	// input's Owner; a transform server next to a volume server pins
	// everything to it. Default nil: the master chooses.
	Pin func(name insitu.Name) string
	// ContentType returns the Content-Type to store with an object, or
	// "" for none. Default: from the key's extension
	// (mime.TypeByExtension), such as "audio/wav" for ".wav".
	ContentType func(insitu.Name) string
	// BufferSize is how much of its input a Put reads before it sends
	// anything: an object that fits goes in one request with its length,
	// and an input that starts late (a transform that writes its output
	// only when done) does not hold a request open meanwhile, which the
	// filer would drop after its -idleTimeout (10 s by default). The
	// memory a Put holds is at most BufferSize. Default
	// [DefaultBufferSize], 4 MiB, the filer's chunk size.
	BufferSize int
	// MaxChunkMB is the size of the chunks the filer cuts the sink's
	// objects into, in MiB (the filer's maxMB parameter, 1 to 2047): an
	// object up to this size is one chunk, on one volume server, which a
	// transform server next to it reads straight from it (see
	// [Placement.SourceURL]); a larger one is read through the filer. The
	// filer holds up to 4 chunks of an upload in memory at once. Default
	// 0: the filer's own (weed filer -maxMB, 4 by default).
	MaxChunkMB int
}

// DefaultBufferSize is the default [SinkOptions.BufferSize].
const DefaultBufferSize = 4 << 20

// Sink stores objects in a SeaweedFS cluster through its filer: the
// object {Bucket, Key} is the file Root/Bucket/Key. It is an
// [insitu.NearSink]: with pipeline.Options.DirectPut and a transform that
// puts its outputs itself (remote mode: transport.Placed over a
// [Placement]), each output goes from the transform server to the filer,
// pinned to the volume server that holds its input. Make one with
// [NewSink]. A Sink is safe for concurrent use.
type Sink struct {
	c    *Client
	opts SinkOptions
	bufs sync.Pool // *bytes.Buffer
}

// NewSink returns a sink that stores objects through c's filer.
//
// Put reads the first BufferSize bytes of its input, then sends them and
// streams the rest in one PUT to the filer, which cuts the bytes into
// chunks (4 MiB by default, or MaxChunkMB) and stores each on a volume
// server: the one that Pin names, or one the master picks. The filer adds
// the file to its namespace only once every chunk is stored and the body
// has ended whole (checked on this machine: a body cut short, with a
// Content-Length or chunked, leaves no file and an older file whole), so a
// Put is all or nothing: an input that fails, a size that is not the one
// given, or ctx ending before the body is sent leave nothing under the
// name. The filer drops a request whose body stalls for its -idleTimeout
// (10 s by default): an input that pauses that long after its first
// BufferSize bytes fails the Put with Unavailable (and stores nothing);
// raise the filer's -idleTimeout for transforms that pause longer. Before
// sending, Put checks that the name is not a directory of the filer: the
// filer would store the bytes inside it, under name/base(name). A key
// below an existing object is stored, and the filer keeps the object as a
// directory with its bytes, as SeaweedFS's S3 gateway does for "a" and
// "a/b"; a [Source] lists both.
//
// Names must have a bucket. Under Root "/buckets" a bucket the filer
// would create must be an S3 bucket name (3 to 63 lowercase letters,
// digits, '.' and '-', starting and ending with a letter or digit), which
// Put checks first; the filer also refuses path segments over 255 bytes.
// Both are InvalidArgument errors, as are invalid names.
//
// Errors: a pinned volume server that is not in the cluster, a filer that
// does not answer, 5xx answers and connections cut are Unavailable (the
// runner retries them); a filer URL that is not a filer's is
// InvalidArgument.
//
// A nil c is an InvalidArgument error.
func NewSink(c *Client, opts *SinkOptions) (*Sink, error) {
	if c == nil {
		return nil, insitu.Errorf(insitu.InvalidArgument, "seaweedfs.NewSink: nil client")
	}
	s := &Sink{c: c}
	if opts != nil {
		s.opts = *opts
	}
	if s.opts.ContentType == nil {
		s.opts.ContentType = func(n insitu.Name) string { return mime.TypeByExtension(path.Ext(n.Key)) }
	}
	if s.opts.MaxChunkMB < 0 || s.opts.MaxChunkMB > 2047 {
		return nil, insitu.Errorf(insitu.InvalidArgument, "seaweedfs.NewSink: MaxChunkMB is %d; it must be 1 to 2047, or 0 for the filer's own", s.opts.MaxChunkMB)
	}
	switch {
	case s.opts.BufferSize < 0:
		return nil, insitu.Errorf(insitu.InvalidArgument, "seaweedfs.NewSink: BufferSize is %d; it must be positive, or 0 for the default", s.opts.BufferSize)
	case s.opts.BufferSize == 0:
		s.opts.BufferSize = DefaultBufferSize
	}
	s.bufs.New = func() any { return new(bytes.Buffer) }
	return s, nil
}

// Client returns the sink's client.
func (s *Sink) Client() *Client { return s.c }

// Put stores the bytes of r under name, on the volume server that
// SinkOptions.Pin names for it; see [NewSink]. The result has the size
// and the XXH64 checksum of the bytes, and as Owner the pinned volume
// server ("" when not pinned).
func (s *Sink) Put(ctx context.Context, name insitu.Name, r io.Reader, size int64) (insitu.PutResult, error) {
	server := ""
	if s.opts.Pin != nil {
		if err := name.Validate(); err != nil {
			return insitu.PutResult{}, err
		}
		server = s.opts.Pin(name)
	}
	return s.PutOn(ctx, server, name, r, size)
}

// PutOn stores the bytes of r under name on the volume server server
// ("host:port", as the master names it), or where the master chooses when
// server is "". It is [Sink.Put] with the pin given by the caller, such as
// a transform server that keeps outputs on the volume server next to it.
// A server that is not a "host:port" is InvalidArgument; one that is not
// in the cluster now is Unavailable.
func (s *Sink) PutOn(ctx context.Context, server string, name insitu.Name, r io.Reader, size int64) (insitu.PutResult, error) {
	p, err := s.path(name)
	if err != nil {
		return insitu.PutResult{}, err
	}
	if err := checkServer(name, server); err != nil {
		return insitu.PutResult{}, err
	}
	in, err := putcheck.New(ctx, name, r, size, 0)
	if err != nil {
		return insitu.PutResult{}, err
	}
	if err := s.checkNotDir(ctx, p, name); err != nil {
		return insitu.PutResult{}, err
	}
	if err := s.upload(ctx, p, name, server, in, size); err != nil {
		return insitu.PutResult{}, err
	}
	res := in.Result()
	res.Owner = server
	return res, nil
}

// checkServer checks that server, a volume server to pin to, is "" or a
// host:port.
func checkServer(name insitu.Name, server string) error {
	if server == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(server)
	if n, perr := strconv.ParseUint(port, 10, 16); err != nil || perr != nil || n == 0 || host == "" || strings.ContainsAny(server, "/?#@ ") {
		return &insitu.Error{Code: insitu.InvalidArgument, Name: name,
			Msg: fmt.Sprintf("volume server %q is not a host:port", server)}
	}
	return nil
}

// checkNotDir refuses a name whose filer path p is a directory: the filer
// stores a PUT to a directory inside it, under name/base(name).
func (s *Sink) checkNotDir(ctx context.Context, p string, name insitu.Name) error {
	switch e, err := s.c.metadata(ctx, p, name); {
	case errors.Is(err, insitu.NotFound):
	case err != nil:
		return err
	case e.isDir():
		return &insitu.Error{Code: insitu.InvalidArgument, Name: name,
			Msg: fmt.Sprintf("the filer path %s is a directory: the filer would store the bytes inside it", p)}
	}
	return nil
}

// Destination returns where a transform server puts name itself (direct
// put, [insitu.DirectSink]): the filer URL of its path, with dataNode=
// the volume server [SinkOptions.Pin] names for it (none when it names
// none or is not set: the master chooses) and maxMB= MaxChunkMB when set,
// and no token. The filer answers such a PUT with {"name","size"}, and
// stores it all or nothing, as [Sink.Put]; as for Put, it drops a PUT
// whose body stalls for its -idleTimeout (10 s by default), so a transform
// that pauses that long once its output has begun fails the object. The
// name is checked as Put checks it, and its path must not be a directory
// of the filer (a request to the filer).
func (s *Sink) Destination(ctx context.Context, name insitu.Name) (insitu.Destination, error) {
	return s.destination(ctx, name, s.pin(name))
}

// DestinationNear is [Sink.Destination] pinned to near.Owner, the volume
// server that holds name's input ([insitu.NearSink]), when
// [SinkOptions.Pin] names no server for name: the output stays on the
// volume server of its input, next to the transform server that made it
// in remote mode. With neither, the master chooses.
func (s *Sink) DestinationNear(ctx context.Context, name insitu.Name, near insitu.Object) (insitu.Destination, error) {
	server := s.pin(name)
	if server == "" {
		server = near.Owner
	}
	return s.destination(ctx, name, server)
}

// pin returns the volume server Pin names for name, or "".
func (s *Sink) pin(name insitu.Name) string {
	if s.opts.Pin == nil || name.Validate() != nil {
		return ""
	}
	return s.opts.Pin(name)
}

func (s *Sink) destination(ctx context.Context, name insitu.Name, server string) (insitu.Destination, error) {
	p, err := s.path(name)
	if err != nil {
		return insitu.Destination{}, err
	}
	if err := checkServer(name, server); err != nil {
		return insitu.Destination{}, err
	}
	if err := s.checkNotDir(ctx, p, name); err != nil {
		return insitu.Destination{}, err
	}
	return insitu.Destination{Name: name, URL: s.c.filerURL(p, s.query(server))}, nil
}

// query returns the query of a filer PUT: the pin and the chunk size.
func (s *Sink) query(server string) url.Values {
	q := url.Values{}
	if server != "" {
		q.Set("dataNode", server)
	}
	if s.opts.MaxChunkMB > 0 {
		q.Set("maxMB", strconv.Itoa(s.opts.MaxChunkMB))
	}
	return q
}

// path returns the filer path of name, after the checks of the filer.
func (s *Sink) path(name insitu.Name) (string, error) {
	p, err := s.c.Path(name)
	if err != nil {
		return "", err
	}
	if s.c.root == DefaultRoot {
		if msg := s3BucketProblem(name.Bucket); msg != "" {
			return "", &insitu.Error{Code: insitu.InvalidArgument, Name: name,
				Msg: fmt.Sprintf("bucket %q under %s: %s (the filer takes only S3 bucket names there)", name.Bucket, DefaultRoot, msg)}
		}
	}
	if s.c.root == "" && strings.HasPrefix(name.Bucket, "etc") {
		return "", &insitu.Error{Code: insitu.InvalidArgument, Name: name,
			Msg: "the filer keeps files under /etc in its own store, not on volume servers"}
	}
	for seg := range strings.SplitSeq(name.Bucket+"/"+name.Key, "/") {
		if len(seg) > maxFilerName {
			return "", &insitu.Error{Code: insitu.InvalidArgument, Name: name,
				Msg: fmt.Sprintf("a path segment is %d bytes, over the filer's limit of %d", len(seg), maxFilerName)}
		}
	}
	return p, nil
}

// maxFilerName is the filer's default limit on a name in a directory
// (filer.options.max_file_name_length).
const maxFilerName = 255

// s3BucketProblem returns why b is not a bucket name the filer takes under
// /buckets (SeaweedFS's VerifyS3BucketName), or "".
func s3BucketProblem(b string) string {
	switch {
	case len(b) < 3 || len(b) > 63:
		return "an S3 bucket name has 3 to 63 characters"
	case b == "filemeta":
		return "the name is reserved"
	case strings.HasPrefix(b, "xn--") || strings.HasSuffix(b, "-s3alias"):
		return `an S3 bucket name does not start with "xn--" nor end with "-s3alias"`
	case net.ParseIP(b) != nil:
		return "an S3 bucket name is not an IP address"
	case strings.Contains(b, ".."):
		return "an S3 bucket name has no two adjacent periods"
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '-') {
			return "an S3 bucket name has only lowercase letters, digits, '.' and '-'"
		}
	}
	if first, last := b[0], b[len(b)-1]; first == '.' || first == '-' || last == '.' || last == '-' {
		return "an S3 bucket name starts and ends with a letter or digit"
	}
	return ""
}

// upload PUTs the bytes of in to the filer path p, pinned to server when
// it is not "".
func (s *Sink) upload(ctx context.Context, p string, name insitu.Name, server string, in *putcheck.Reader, size int64) error {
	q := s.query(server)
	// The first BufferSize bytes before the request: see
	// SinkOptions.BufferSize.
	buf := s.bufs.Get().(*bytes.Buffer)
	buf.Reset()
	n, err := buf.ReadFrom(io.LimitReader(in, int64(s.opts.BufferSize)))
	if err != nil {
		return err // the input failed: nothing sent
	}
	ended := n < int64(s.opts.BufferSize) // in returned io.EOF
	if ended {
		size = n
	}
	w := newWatchdog(ctx, s.c.opts.IOTimeout)
	defer w.stop()
	var body io.Reader = http.NoBody // with Content-Length: 0
	switch {
	case ended && n > 0:
		body = bytes.NewReader(buf.Bytes())
	case !ended:
		body = io.MultiReader(bytes.NewReader(buf.Bytes()), &progressReader{r: in, w: w, io: s.c.opts.IOTimeout, answer: s.c.opts.Timeout})
	}
	req, err := http.NewRequestWithContext(w.ctx, http.MethodPut, s.c.filerURL(p, q), body)
	if err != nil {
		return &insitu.Error{Code: insitu.Internal, Name: name, Msg: "filer PUT", Err: err}
	}
	req.ContentLength = size // -1: chunked
	if ended {
		// Only the answer is left to wait for.
		w.progress(s.c.opts.Timeout)
	}
	ct := s.opts.ContentType(name)
	if ct == "" {
		ct = "application/octet-stream" // the filer stores none for this type
	}
	req.Header.Set("Content-Type", ct)
	what := "storing " + p + " through the filer"
	if server != "" {
		what += " on volume server " + server
	}
	resp, err := s.c.hc.Do(req)
	if ierr := in.Err(); ierr != nil {
		// The input failed (or ctx ended): the body was cut short, and
		// the filer stored nothing.
		if resp != nil {
			resp.Body.Close()
		}
		return ierr
	}
	if err != nil {
		return s.c.transportError(w.ctx, err, name, what)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		err := newStatusError(resp, name, what)
		var se *statusError
		if errors.As(err, &se) && !isFilerAnswer(se.server) {
			return s.c.notAFiler(name, what, se)
		}
		if server != "" && strings.Contains(se.body, "not found in topology") {
			return &insitu.Error{Code: insitu.Unavailable, Name: name,
				Msg: fmt.Sprintf("%s: the master does not list volume server %s (stopped, or not of this cluster)", what, server), Err: se}
		}
		return err
	}
	var res struct {
		Size  int64  `json:"size"`
		Error string `json:"error"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&res); err != nil {
		return s.c.transportError(w.ctx, err, name, what+": reading the answer")
	}
	if res.Error != "" || res.Size != in.Size() {
		return &insitu.Error{Code: insitu.Internal, Name: name,
			Msg: fmt.Sprintf("%s: the filer answered size %d and error %q for %d bytes sent", what, res.Size, res.Error, in.Size())}
	}
	// Only now is the buffer surely no longer read by the transport.
	if buf.Cap() <= 2*s.opts.BufferSize {
		s.bufs.Put(buf)
	}
	return nil
}

// progressReader tells a watchdog of each read of a request body, and
// gives the answer its own bound once the body has ended.
type progressReader struct {
	r          io.Reader
	w          *watchdog
	io, answer time.Duration
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if err == io.EOF {
		p.w.progress(p.answer)
	} else if n > 0 {
		p.w.progress(p.io)
	}
	return n, err
}

// Stat returns the stored object's description (Size and Owner), or a
// NotFound error for a missing object or a directory.
func (s *Sink) Stat(ctx context.Context, name insitu.Name) (insitu.Object, error) {
	return s.c.Stat(ctx, name)
}

var _ insitu.NearSink = (*Sink)(nil)
