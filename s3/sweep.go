package s3

import (
	"context"
	"strings"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/minio/minio-go/v7"
)

// Sweep aborts the incomplete multipart uploads that Puts of this sink
// may have left behind, and returns how many it aborted. A Put aborts its
// own upload when it fails, but not when its process is killed, when the
// abort itself fails, or when the answer to the upload's creation was
// lost; a resumed run then stores every object again, and the service
// keeps the old upload's parts (and bills them) until it is aborted.
//
// S3 lists an incomplete upload with its key, its ID and when it was
// initiated, but not with its metadata (versitygw does not even say who
// initiated it), so a mark on the upload could not be read back. The rule
// is the sink's key space instead: Sweep aborts the uploads in the sink's bucket
// whose keys are Prefix followed by a valid insitu key (a key a Put of
// this sink can have made), initiated more than olderThan ago, or all of
// them when olderThan is 0. Uploads elsewhere in the bucket, and under
// Prefix with keys insitu cannot make (such as "a//b"), are left alone.
// Uploads of other writers to the same keys are not told apart: give the
// sink a Prefix of its own when others write there too.
//
// A Sink never sweeps on its own: the bucket is the caller's. A Put in
// progress, in this process or another, has an upload too, so make
// olderThan longer than any Put takes (S3's Initiated is when the upload
// began, by the service's clock; versitygw gives the time of its latest
// part), or 0 only when nothing else writes under Prefix. An upload
// without an initiation time is swept only when olderThan is 0.
//
// The errors: InvalidArgument for a negative olderThan; ctx.Err(),
// unwrapped, when ctx ends; the codes of [Wrap] for a failed listing or
// abort (the sweep stops there). A missing bucket has nothing to sweep. An
// upload completed or aborted by someone else meanwhile is not counted.
// The count is of the uploads aborted before an error.
func (s *Sink) Sweep(ctx context.Context, olderThan time.Duration) (int, error) {
	if olderThan < 0 {
		return 0, insitu.Errorf(insitu.InvalidArgument, "s3.Sink: negative age %v for a sweep", olderThan)
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	now := time.Now()
	n := 0
	keyMarker := ""
	for {
		res, err := s.core.ListMultipartUploads(ctx, s.bucket, s.opts.Prefix, keyMarker, "", "", s.sweepPage)
		if err != nil {
			if minio.ToErrorResponse(err).Code == "NoSuchBucket" {
				return n, nil
			}
			return n, Wrap(ctx, err, insitu.Name{Bucket: s.bucket}, "S3 ListMultipartUploads")
		}
		aborted, gone := 0, false // gone: some of the page is no more
		for _, up := range res.Uploads {
			if !s.sweeps(up, now, olderThan) {
				continue
			}
			err := s.core.AbortMultipartUpload(ctx, s.bucket, up.Key, up.UploadID)
			switch {
			case err == nil:
				aborted++
				gone = true
			case minio.ToErrorResponse(err).Code == "NoSuchUpload":
				// Completed or aborted by another since the listing.
				gone = true
			default:
				return n + aborted, Wrap(ctx, err, insitu.Name{Bucket: s.bucket, Key: up.Key}, "S3 AbortMultipartUpload "+up.UploadID)
			}
		}
		n += aborted
		if !res.IsTruncated || len(res.Uploads) == 0 {
			return n, nil
		}
		keyMarker = nextKeyMarker(res.Uploads, keyMarker, gone)
	}
}

// sweeps reports whether Sweep aborts up: a key Put can have made, old
// enough.
func (s *Sink) sweeps(up minio.ObjectMultipartInfo, now time.Time, olderThan time.Duration) bool {
	rest, ok := strings.CutPrefix(up.Key, s.opts.Prefix)
	if !ok || (insitu.Name{Key: rest}).Validate() != nil || (insitu.Name{Key: up.Key}).Validate() != nil {
		return false
	}
	if olderThan == 0 {
		return true
	}
	return !up.Initiated.IsZero() && now.Sub(up.Initiated) > olderThan
}

// nextKeyMarker returns the key-marker of the listing that follows a
// truncated page, listed after keyMarker. The markers are keys only:
// versitygw answers InvalidArgument to the upload-id-marker that S3 pages
// with. So the next listing starts after the key before the page's last
// key, and lists that last key's uploads again with those that did not
// fit (the ones aborted are gone; the others are passed over again). A
// page of one key is listed again when some of it is gone, else the
// listing goes on after that key: its uploads come oldest first, so
// those past the page are younger still.
func nextKeyMarker(page []minio.ObjectMultipartInfo, keyMarker string, gone bool) string {
	last := page[len(page)-1].Key
	for i := len(page) - 2; i >= 0; i-- {
		if page[i].Key != last {
			return page[i].Key
		}
	}
	if gone {
		return keyMarker
	}
	return last
}
