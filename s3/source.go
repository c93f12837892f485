package s3

import (
	"context"
	"io"
	"iter"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/ticker"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// SourceOptions configure [NewSource]. A nil *SourceOptions lists the whole bucket.
type SourceOptions struct {
	// Prefix keeps only keys that start with it; the server filters.
	// Default "": every key.
	Prefix string
	// Suffix keeps only keys that end with it, such as ".flac"; the
	// listing filters. Default "": every key.
	Suffix string
	// StartAfter keeps only keys that sort bytewise after it, to resume an
	// interrupted listing from the last key done; the server skips the
	// rest. Default "": from the first key.
	StartAfter string
	// PageSize is the number of keys asked for per listing request
	// (ListObjectsV2 max-keys); servers cap it, usually at 1,000.
	// Default 1,000.
	PageSize int
	// ListRetries is how many more times a listing page is asked for after
	// an Unavailable failure (throttling, a 5xx, a connection refused or
	// reset), resuming after the last key yielded, with a backoff from
	// 100ms doubling up to 3s. These come on top of minio-go's own retries
	// (minio.Options.MaxRetries). Default 3; negative disables them.
	ListRetries int
}

// Source is a bucket (or part of one) of an S3-compatible service,
// reached through minio-go. Make one with [NewSource]. A Source is safe
// for concurrent use.
type Source struct {
	client *minio.Client
	core   minio.Core
	bucket string
	opts   SourceOptions
}

// NewSource returns the source of the objects in bucket that client can
// reach.
// It is insitu's fallback mode: no storage node owns S3 objects, so listed
// objects have Owner "" and Path "", and the pipeline reads them over the
// network.
//
// Objects lists with ListObjectsV2, a page at a time (never the whole
// listing in memory), in the server's order, which for S3 is bytewise key
// order. Listed objects have Name.Bucket set to bucket, Size set and
// Version set to the object's ETag (without quotes).
// Empty keys ending in "/", the "folder" markers of S3 consoles, are not
// objects and are not listed. Any other key that S3 allows but
// [insitu.Name.Validate] refuses ("a//b", "../x", "/abs", "x/./y", a
// non-empty "dir/") is yielded as an InvalidArgument error naming the key,
// and the listing goes on, so that a migration to a file system or a
// cluster names it among its failures. Listing errors
// that end the listing, yielded last: a missing bucket is NotFound,
// refused credentials PermissionDenied, an unreachable or failing service
// Unavailable (after SourceOptions.ListRetries).
//
// Open streams the object with one GET: nothing is buffered beyond the
// HTTP client's small buffers. Read errors of the body carry insitu codes
// too: a connection reset or cut short is Unavailable, so the runner
// retries the object.
//
// minio-go retries failed requests itself, up to minio.Options.MaxRetries
// times (default 10) with a backoff; set it low (1 disables them) when the
// runner's retries are enough.
//
// A nil client, an invalid bucket name or a negative PageSize is an
// InvalidArgument error.
func NewSource(client *minio.Client, bucket string, opts *SourceOptions) (*Source, error) {
	s := &Source{client: client, core: minio.Core{Client: client}, bucket: bucket}
	if opts != nil {
		s.opts = *opts
	}
	switch {
	case client == nil:
		return nil, insitu.Errorf(insitu.InvalidArgument, "s3.NewSource: nil client")
	case s.opts.PageSize < 0:
		return nil, insitu.Errorf(insitu.InvalidArgument, "s3.NewSource: PageSize is %d; it must be positive, or 0 for the default", s.opts.PageSize)
	}
	if err := s3utils.CheckValidBucketName(bucket); err != nil {
		return nil, &insitu.Error{Code: insitu.InvalidArgument, Name: insitu.Name{Bucket: bucket}, Msg: "s3.NewSource: not a valid S3 bucket name", Err: err}
	}
	if s.opts.PageSize == 0 {
		s.opts.PageSize = 1000
	}
	switch {
	case s.opts.ListRetries == 0:
		s.opts.ListRetries = 3
	case s.opts.ListRetries < 0:
		s.opts.ListRetries = 0
	}
	return s, nil
}

// Bucket returns the bucket the source lists.
func (s *Source) Bucket() string { return s.bucket }

// Objects lists the bucket; see [NewSource] for the order, the filters and the
// errors. Each call lists afresh. The listing runs on the caller's
// goroutine, one page request at a time: breaking out of the loop early
// leaves nothing running. When ctx ends, ctx.Err() is the last thing
// yielded.
func (s *Source) Objects(ctx context.Context) iter.Seq2[insitu.Object, error] {
	return func(yield func(insitu.Object, error) bool) {
		after := s.opts.StartAfter
		for retry := 0; ; {
			stopped, err := s.list(ctx, &after, yield)
			if stopped {
				return
			}
			if err == nil {
				return // the listing is complete
			}
			if ctx.Err() != nil {
				yield(insitu.Object{}, ctx.Err())
				return
			}
			if retry < s.opts.ListRetries && insitu.CodeOf(err) == insitu.Unavailable {
				if ticker.Sleep(ctx, listBackoff(retry)) != nil {
					yield(insitu.Object{}, ctx.Err())
					return
				}
				retry++
				continue
			}
			yield(insitu.Object{}, err)
			return
		}
	}
}

// list runs one ListObjectsV2 listing from after, yielding its objects
// and moving after past each key it yields. It returns whether the
// consumer stopped, and the error that ended the listing (nil when it
// completed).
func (s *Source) list(ctx context.Context, after *string, yield func(insitu.Object, error) bool) (bool, error) {
	lopts := minio.ListObjectsOptions{
		Prefix: s.opts.Prefix, StartAfter: *after, Recursive: true, MaxKeys: s.opts.PageSize,
	}
	for info := range s.client.ListObjectsIter(ctx, s.bucket, lopts) {
		if info.Err != nil {
			return false, Wrap(ctx, info.Err, insitu.Name{Bucket: s.bucket}, "S3 ListObjectsV2")
		}
		*after = info.Key
		if !strings.HasSuffix(info.Key, s.opts.Suffix) {
			continue
		}
		if info.Size == 0 && strings.HasSuffix(info.Key, "/") {
			continue // a "folder" marker, not an object
		}
		name := insitu.Name{Bucket: s.bucket, Key: info.Key}
		if err := name.Validate(); err != nil {
			if !yield(insitu.Object{}, err) {
				return true, nil
			}
			continue
		}
		if !yield(insitu.Object{Name: name, Size: info.Size, Version: info.ETag}, nil) {
			return true, nil
		}
	}
	// minio-go's iterator ends without an error when ctx ends.
	return false, ctx.Err()
}

// Open returns a stream of the object's bytes from one GET of
// bucket/obj.Name.Key (the source's bucket: obj.Name.Bucket is not looked
// at). A missing object is NotFound.
func (s *Source) Open(ctx context.Context, obj insitu.Object) (io.ReadCloser, error) {
	name, err := s.name(obj.Name)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	body, _, _, err := s.core.GetObject(ctx, s.bucket, name.Key, minio.GetObjectOptions{})
	if err != nil {
		return nil, Wrap(ctx, err, name, "S3 GetObject")
	}
	return &bodyReader{Ctx: ctx, Body: body, Name: name}, nil
}

// Stat returns the object of name (from a HEAD), with Size and Version
// (the ETag) set, or a NotFound error.
func (s *Source) Stat(ctx context.Context, name insitu.Name) (insitu.Object, error) {
	n, err := s.name(name)
	if err != nil {
		return insitu.Object{}, err
	}
	if err := ctx.Err(); err != nil {
		return insitu.Object{}, err
	}
	info, err := s.client.StatObject(ctx, s.bucket, n.Key, minio.StatObjectOptions{})
	if err != nil {
		return insitu.Object{}, Wrap(ctx, err, n, "S3 HeadObject")
	}
	return insitu.Object{Name: n, Size: info.Size, Version: info.ETag}, nil
}

// name returns name with the source's bucket, after checking the key.
func (s *Source) name(name insitu.Name) (insitu.Name, error) {
	n := insitu.Name{Bucket: s.bucket, Key: name.Key}
	return n, n.Validate()
}

// listBackoff returns the wait before listing retry number retry+1.
func listBackoff(retry int) time.Duration {
	d := min(100*time.Millisecond<<min(retry, 5), 3*time.Second)
	return d/2 + rand.N(d/2+1)
}
