package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/putcheck"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// S3 multipart limits.
const (
	minPartSize = 5 << 20
	maxPartSize = 5 << 30
	maxParts    = 10_000

	// DefaultPartSize is the default [SinkOptions.PartSize].
	DefaultPartSize = 16 << 20
)

// chunkSize is the unit in which a Put buffers its input: a part is a
// list of chunks, so a small object holds only what it needs.
const chunkSize = 256 << 10

// SinkOptions configure [NewSink]. A nil *SinkOptions means the defaults.
type SinkOptions struct {
	// Prefix is put before every key: name.Key is stored as Prefix+Key.
	// Default "".
	Prefix string
	// PartSize is the most a Put buffers, and the size of the parts of a
	// multipart upload: an object up to PartSize goes in one PUT, a larger
	// one in parts of PartSize. S3 allows 5 MiB to 5 GiB, and at most
	// 10,000 parts, so an object of unknown size can be up to 10,000 ×
	// PartSize (156 GiB by default); with a known size, parts grow to fit.
	// Default [DefaultPartSize], 16 MiB.
	PartSize int64
	// ContentType returns the Content-Type to store with an object, or ""
	// for the service's default (application/octet-stream). Default: from
	// the key's extension (mime.TypeByExtension), such as "audio/wav" for
	// ".wav".
	ContentType func(insitu.Name) string
	// AbortTimeout bounds the abort of a failed multipart upload, which
	// runs even when the Put's context has ended (so that no parts are
	// left behind). Default [DefaultAbortTimeout], 30s.
	AbortTimeout time.Duration
}

// DefaultAbortTimeout is the default of SinkOptions.AbortTimeout.
const DefaultAbortTimeout = 30 * time.Second

// Sink stores objects in a bucket of an S3-compatible service, reached
// through minio-go. Make one with [NewSink]. A Sink is safe for concurrent
// use.
type Sink struct {
	client *minio.Client
	core   minio.Core
	bucket string
	opts   SinkOptions
	chunks sync.Pool

	sweepPage int // uploads per listing of Sweep: 1000, the most S3 gives; less in tests
}

// NewSink returns a sink that stores the object name as
// bucket/Prefix+name.Key through client. The name's own bucket is
// validated but not used: a Sink is one bucket, as a migration from one bucket to another needs.
//
// Put streams r: it reads up to PartSize bytes; if r ends there, the
// object goes in one PUT, else in a multipart upload of PartSize parts,
// each read after the previous one is uploaded. So the memory a Put holds
// is at most PartSize (16 MiB by default), whatever the object's size and
// whether it is known; N concurrent Puts hold at most N × PartSize. A small
// object holds only its size, rounded up to 256 KiB.
//
// Visibility is S3's own: a single PUT or the completion of a multipart
// upload makes the whole object visible at once, and a reader never sees
// a partial one. If r fails, ctx ends, or the size is not the one given,
// nothing is sent (one PUT) or the upload is aborted (multipart), so
// nothing appears under the name and an older object there stays. (If ctx
// ends while the last request is in flight, after its body went out, the
// service may still complete it a moment later: the object is then whole.)
// An upload is aborted on every way out of a Put but its completion, a
// panic of r included. A Put that cannot abort (its process killed, the
// abort failed, which its error then says, or the answer that started the
// upload lost) leaves the incomplete upload behind: nothing shows under
// the name, but the service keeps its parts until [Sink.Sweep], called
// when asked, aborts it.
//
// Errors: an invalid name or a wrong size is InvalidArgument; a missing
// bucket NotFound; refused credentials PermissionDenied, with a message
// that says what to check; throttling, 5xx answers and broken connections
// Unavailable (retried by the runner); an object over the multipart limit
// TooLarge.
//
// A nil client, an invalid bucket name or a PartSize out of S3's range is
// an InvalidArgument error.
func NewSink(client *minio.Client, bucket string, opts *SinkOptions) (*Sink, error) {
	s := &Sink{client: client, core: minio.Core{Client: client}, bucket: bucket, sweepPage: 1000}
	if opts != nil {
		s.opts = *opts
	}
	if s.opts.PartSize == 0 {
		s.opts.PartSize = DefaultPartSize
	}
	if s.opts.AbortTimeout <= 0 {
		s.opts.AbortTimeout = DefaultAbortTimeout
	}
	if s.opts.ContentType == nil {
		s.opts.ContentType = contentTypeByExt
	}
	switch {
	case client == nil:
		return nil, insitu.Errorf(insitu.InvalidArgument, "s3.NewSink: nil client")
	case s.opts.PartSize < minPartSize || s.opts.PartSize > maxPartSize:
		return nil, insitu.Errorf(insitu.InvalidArgument, "s3.NewSink: PartSize is %d; S3 needs 5 MiB to 5 GiB", s.opts.PartSize)
	}
	if err := s3utils.CheckValidBucketName(bucket); err != nil {
		return nil, &insitu.Error{Code: insitu.InvalidArgument, Name: insitu.Name{Bucket: bucket}, Msg: "s3.NewSink: not a valid S3 bucket name", Err: err}
	}
	s.chunks.New = func() any { b := make([]byte, chunkSize); return &b }
	return s, nil
}

// Bucket returns the bucket the sink stores in.
func (s *Sink) Bucket() string { return s.bucket }

// contentTypeByExt is the default SinkOptions.ContentType.
func contentTypeByExt(n insitu.Name) string { return mime.TypeByExtension(path.Ext(n.Key)) }

// Put stores the bytes of r under name; see [NewSink] for how, and for the
// errors. The result has the size and the XXH64 checksum of the bytes
// stored, and the name as given.
func (s *Sink) Put(ctx context.Context, name insitu.Name, r io.Reader, size int64) (insitu.PutResult, error) {
	return s.put(ctx, name, r, size, "")
}

// OriginMetadata is the user metadata key under which [Sink.PutOrigin]
// records an output's origin: the request header x-amz-meta-insitu-origin.
const OriginMetadata = "Insitu-Origin"

// maxUserMetadata is S3's limit on an object's user metadata, in bytes.
// AWS counts each key and value; the key is counted here with its
// x-amz-meta- prefix, to stay clear of servers that count that too.
const maxUserMetadata = 2048

// PutOrigin is [Sink.Put], with origin's text ([insitu.Origin.String])
// stored as the object's user metadata [OriginMetadata], in the same PUT
// (or the same multipart upload) as the bytes, so that the object and its
// origin appear together; [Sink.Stat] reads it back. An origin over
// [insitu.MaxOriginLen], or one that would take the object's user
// metadata over S3's 2 KB (key and value counted, as AWS does), is not
// recorded: the bytes are stored, and SkipUnchanged makes them again.
func (s *Sink) PutOrigin(ctx context.Context, name insitu.Name, r io.Reader, size int64, origin insitu.Origin) (insitu.PutResult, error) {
	text := origin.String()
	if len(text) > insitu.MaxOriginLen || len("x-amz-meta-")+len(OriginMetadata)+len(text) > maxUserMetadata {
		text = ""
	}
	return s.put(ctx, name, r, size, text)
}

// put stores r under name, with the origin text as user metadata when it
// is not "".
func (s *Sink) put(ctx context.Context, name insitu.Name, r io.Reader, size int64, origin string) (insitu.PutResult, error) {
	key, err := s.key(name)
	if err != nil {
		return insitu.PutResult{}, err
	}
	in, err := putcheck.New(ctx, name, r, size, 0)
	if err != nil {
		return insitu.PutResult{}, err
	}
	partSize := s.opts.PartSize
	if size > partSize*maxParts {
		// Parts grow to fit a known size, rounded up to whole chunks.
		partSize = (size + maxParts - 1) / maxParts
		partSize = (partSize + chunkSize - 1) / chunkSize * chunkSize
		if partSize > maxPartSize {
			return insitu.PutResult{}, &insitu.Error{Code: insitu.TooLarge, Name: name, Msg: fmt.Sprintf("%d bytes is over S3's limit of 10,000 parts of 5 GiB", size)}
		}
	}
	u := upload{s: s, ctx: ctx, name: name, key: key, size: size, partSize: partSize, in: in, origin: origin}
	if err := u.run(); err != nil {
		// The chunks are left to the garbage collector, not the pool: after
		// a request that failed early, the HTTP transport may still be
		// reading them.
		return insitu.PutResult{}, err
	}
	u.buf.release(s)
	return in.Result(), nil
}

// Stat returns the stored object's description from a HEAD, or a
// NotFound error: its Size, and its Origin when [Sink.PutOrigin] recorded
// one (the user metadata [OriginMetadata], if it is an origin's text).
func (s *Sink) Stat(ctx context.Context, name insitu.Name) (insitu.Object, error) {
	key, err := s.key(name)
	if err != nil {
		return insitu.Object{}, err
	}
	if err := ctx.Err(); err != nil {
		return insitu.Object{}, err
	}
	info, err := s.client.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return insitu.Object{}, Wrap(ctx, err, name, "S3 HeadObject")
	}
	return insitu.Object{Name: name, Size: info.Size, Origin: originOf(info.UserMetadata)}, nil
}

// originOf returns the origin text in an object's user metadata, or "".
func originOf(md minio.StringMap) string {
	for k, v := range md {
		if strings.EqualFold(k, OriginMetadata) {
			if _, err := insitu.ParseOrigin(v); err == nil {
				return v
			}
		}
	}
	return ""
}

// key returns the S3 key of name, after checking it.
func (s *Sink) key(name insitu.Name) (string, error) {
	if err := name.Validate(); err != nil {
		return "", err
	}
	key := s.opts.Prefix + name.Key
	if err := (insitu.Name{Key: key}).Validate(); err != nil {
		return "", &insitu.Error{Code: insitu.InvalidArgument, Name: name, Msg: fmt.Sprintf("with the sink's prefix %q", s.opts.Prefix), Err: err}
	}
	return key, nil
}

// upload is one Put.
type upload struct {
	s        *Sink
	ctx      context.Context
	name     insitu.Name
	key      string
	size     int64 // as given; -1 when unknown
	partSize int64
	in       *putcheck.Reader // checks the size and ctx, and sums the bytes
	origin   string           // the origin's text to store as user metadata, or ""

	buf chunks // the part being read
	eof bool   // in has returned io.EOF
}

// run reads the first part; if that is all, it PUTs it, else it runs a
// multipart upload.
func (u *upload) run() error {
	if err := u.fill(); err != nil {
		return err
	}
	opts := minio.PutObjectOptions{ContentType: u.s.opts.ContentType(u.name)}
	if u.origin != "" {
		opts.UserMetadata = map[string]string{OriginMetadata: u.origin}
	}
	if u.eof {
		n := u.buf.len()
		sha := ""
		if n == 0 {
			// An empty body goes with its hash and Content-Length: 0, not
			// as a chunked streaming-signature body, which versitygw
			// leaves partly unread on the connection.
			sha, opts.DisableContentSha256 = emptySHA256, true
		}
		_, err := u.s.core.PutObject(u.ctx, u.s.bucket, u.key, u.buf.reader(), n, "", sha, opts)
		if err != nil {
			return Wrap(u.ctx, err, u.name, "S3 PutObject")
		}
		return nil
	}
	return u.multipart(opts)
}

// multipart uploads the object in parts, the first already read, and
// aborts the upload on any failure.
func (u *upload) multipart(opts minio.PutObjectOptions) (err error) {
	id, err := u.s.core.NewMultipartUpload(u.ctx, u.s.bucket, u.key, opts)
	if err != nil {
		// If the service started the upload but its answer was lost, the
		// upload is left behind with an ID never seen: Sweep removes it.
		return Wrap(u.ctx, err, u.name, "S3 CreateMultipartUpload")
	}
	completed := false
	defer func() {
		// Abort on every way out but a completion: an error, and a panic
		// of the input on its way up to whoever recovers it.
		if completed {
			return
		}
		if aerr := u.abort(id); aerr != nil && err != nil {
			err = withNote(err, u.name, fmt.Sprintf("the multipart upload %s of %q is left behind, for Sink.Sweep: aborting it failed: %v", id, u.key, aerr))
		}
	}()
	var parts []minio.CompletePart
	for num := 1; ; num++ {
		if num > maxParts {
			return &insitu.Error{Code: insitu.TooLarge, Name: u.name,
				Msg: fmt.Sprintf("over S3's limit of %d parts of %d bytes; raise SinkOptions.PartSize", maxParts, u.partSize)}
		}
		if u.buf.len() > 0 {
			p, err := u.s.core.PutObjectPart(u.ctx, u.s.bucket, u.key, id, num, u.buf.reader(), u.buf.len(), minio.PutObjectPartOptions{})
			if err != nil {
				return Wrap(u.ctx, err, u.name, fmt.Sprintf("S3 UploadPart %d", num))
			}
			parts = append(parts, minio.CompletePart{PartNumber: num, ETag: p.ETag})
		}
		if u.eof {
			break
		}
		u.buf.reset()
		if err := u.fill(); err != nil {
			return err
		}
	}
	if _, err := u.s.core.CompleteMultipartUpload(u.ctx, u.s.bucket, u.key, id, parts, opts); err != nil {
		return Wrap(u.ctx, err, u.name, "S3 CompleteMultipartUpload")
	}
	completed = true
	return nil
}

// abort aborts the multipart upload id, even when the Put's ctx has ended,
// within SinkOptions.AbortTimeout, and returns minio-go's error. An upload
// that is no more (a completion whose answer was lost) is not an error.
func (u *upload) abort(id string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(u.ctx), u.s.opts.AbortTimeout)
	defer cancel()
	err := u.s.core.AbortMultipartUpload(ctx, u.s.bucket, u.key, id)
	if minio.ToErrorResponse(err).Code == "NoSuchUpload" {
		return nil
	}
	return err
}

// withNote returns err with note added to its message: a copy of err when
// it is an *insitu.Error, else an *insitu.Error about name with err's code
// and err as its cause.
func withNote(err error, name insitu.Name, note string) error {
	if e, ok := err.(*insitu.Error); ok {
		c := *e
		if c.Msg != "" {
			note = c.Msg + " (" + note + ")"
		}
		c.Msg = note
		return &c
	}
	return &insitu.Error{Code: insitu.CodeOf(err), Name: name, Msg: note, Err: err}
}

// emptySHA256 is the SHA-256 of no bytes, in hex.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// fill reads from in into buf until buf holds partSize bytes or in ends;
// in checks the size and ctx, and names its errors.
func (u *upload) fill() error {
	for u.buf.len() < u.partSize && !u.eof {
		p := u.buf.space(u.s, u.partSize)
		n, err := u.in.Read(p)
		u.buf.grow(n)
		switch {
		case err == io.EOF:
			u.eof = true
		case err != nil:
			return err
		}
	}
	if !u.eof && u.size >= 0 && u.in.Size() == u.size {
		// A known size that ends a part: in has already made sure that
		// nothing follows, and says io.EOF without reading more, so that
		// an object of exactly PartSize goes in one PUT.
		if _, err := u.in.Read(nil); err != io.EOF {
			return err
		}
		u.eof = true
	}
	return nil
}

// chunks is a buffer made of pooled chunkSize slices.
type chunks struct {
	list []*[]byte
	n    int64 // bytes held
}

func (c *chunks) len() int64 { return c.n }

// space returns the free room of the last chunk, taking a new chunk from
// the pool when it is full, never past limit bytes in all.
func (c *chunks) space(s *Sink, limit int64) []byte {
	idx, off := c.n/chunkSize, c.n%chunkSize
	if idx == int64(len(c.list)) {
		c.list = append(c.list, s.chunks.Get().(*[]byte))
	}
	end := min(int64(chunkSize), off+limit-c.n)
	return (*c.list[idx])[off:end]
}

func (c *chunks) grow(n int) { c.n += int64(n) }

// reset empties the buffer, keeping its chunks.
func (c *chunks) reset() { c.n = 0 }

// release returns the chunks to the pool.
func (c *chunks) release(s *Sink) {
	for _, b := range c.list {
		s.chunks.Put(b)
	}
	c.list, c.n = nil, 0
}

// reader returns a reader of the bytes held that can seek, so that
// minio-go can hash it and retry.
func (c *chunks) reader() *chunkReader { return &chunkReader{c: c} }

// chunkReader reads a chunks buffer; it is an io.ReadSeeker and an
// io.ReaderAt.
type chunkReader struct {
	c   *chunks
	off int64
}

func (r *chunkReader) Read(p []byte) (int, error) {
	n, err := r.ReadAt(p, r.off)
	r.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

func (r *chunkReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("sink: negative offset")
	}
	n := 0
	for n < len(p) && off < r.c.n {
		chunk := *r.c.list[off/chunkSize]
		end := min(int64(chunkSize), r.c.n-off/chunkSize*chunkSize)
		m := copy(p[n:], chunk[off%chunkSize:end])
		n += m
		off += int64(m)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (r *chunkReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.off
	case io.SeekEnd:
		offset += r.c.n
	default:
		return 0, errors.New("sink: bad whence")
	}
	if offset < 0 {
		return 0, errors.New("sink: negative position")
	}
	r.off = offset
	return offset, nil
}

// Len returns the bytes left to read.
func (r *chunkReader) Len() int { return int(max(r.c.n-r.off, 0)) }

var _ insitu.OriginSink = (*Sink)(nil)
