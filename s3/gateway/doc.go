// Package gateway serves a cluster's objects to unmodified S3 clients
// (minio-go, the AWS SDKs and CLI, rclone …) through a small, read-only,
// path-style part of the S3 API, where each S3 bucket is a configured view
// of a cluster bucket: as stored, or through a chain of named transforms
// that each object's owner runs as the object is read. With
//
//	Buckets: map[string]gateway.Bucket{
//		"images": {Source: "images"},
//		"thumbs": {Source: "images", Transform: []string{"resize"}, Args: "w=128"},
//	}
//
// GET /thumbs/cat.jpg returns images/cat.jpg resized by its owner. A bucket
// name that is not in the map is NoSuchBucket: nothing passes through to
// the cluster's other buckets.
//
// # Where it runs
//
// A [Gateway] is an http.Handler over a [locality.Client]: it runs beside a
// node, in the node's process or its own, or anywhere that can reach the
// nodes with the cluster's secret. Either way a transform runs on the
// object's owner, next to the data, and only the transformed bytes leave
// the cluster (through the gateway to the S3 client); a plain object's
// bytes pass through the gateway as they are.
//
// # What an S3 client can do
//
//   - GetObject (GET /{bucket}/{key}): the bytes, streamed (never held
//     whole). A plain object has its Content-Length; a transformed
//     object's size is unknown until the chain has run, so its body is
//     chunked (or has a length when the owner sent a small output whole).
//     One Range of bytes ("bytes=a-b", "bytes=a-", "bytes=-n") is served:
//     the bytes before the range are read from the owner and dropped, so a
//     range costs its offset; for a transformed object the chain first
//     runs once to count the output's size (for Content-Range), then again
//     up to the range's end. If-Match (PreconditionFailed) and
//     If-None-Match (304) are checked against the ETag.
//   - HeadObject: the ETag, Last-Modified and Content-Length. For a
//     transformed object that length is known only by running the chain:
//     a HEAD runs it on the owner and counts the output (verifying its
//     checksum), so it costs as much as a GET without the transfer to the
//     client, and it fails (InternalError) when the chain fails. Clients
//     such as the AWS CLI and boto3's download_file HEAD before they GET,
//     and plan the download by that length.
//   - ListObjectsV2 (GET /{bucket}?list-type=2): prefix, delimiter "/"
//     (any other delimiter is NotImplemented), max-keys (at most
//     [MaxKeys], 1000; more is lowered to it), start-after,
//     continuation-token (an opaque token of the last key or common
//     prefix), encoding-type=url and fetch-owner. The listing is the
//     cluster's, merged across the nodes in bytewise key order; a node
//     that cannot list fails the request (ServiceUnavailable) rather than
//     answer a listing that misses its objects. A transformed bucket
//     lists each object with Size -1: its output's size is unknown until
//     a HEAD or GET runs the chain.
//   - HeadBucket, GetBucketLocation (the region) and ListBuckets (the
//     configured buckets).
//
// Everything else is refused in S3's XML error format: PUT, POST and
// DELETE are AccessDenied (the gateway is read-only), other methods
// MethodNotAllowed, other operations and subresources (ListObjects V1,
// ?acl, ?tagging, multipart …) NotImplemented. An object that does not
// exist is NoSuchKey, a key over 1024 bytes KeyTooLongError, a failure of
// the cluster ServiceUnavailable (a node down; try again) or
// InternalError (say, an owner that does not know a transform of the
// chain).
//
// ETag: a digest of the object's version on its node (size and
// modification time) and of the bucket's chain and args; it changes when
// the object or the mapping does, and it is not an MD5 of the bytes.
// Last-Modified is the stored object's modification time. Finding them
// costs a listing request to the owner before each GET and HEAD (the node
// client's Get does not return them); an object replaced between that
// request and the read with one of the same size is served under the
// earlier ETag (one of another size is ServiceUnavailable: try again).
//
// # A failure in the middle of a body
//
// An error after the first bytes were sent (a transform that fails half
// way, a node that goes down, an output whose checksum does not match)
// never ends the body cleanly: the gateway holds back the last byte it
// read until it knows the read went on, then cuts the response. A body
// with a Content-Length is left short; a chunked body over HTTP/1.1 is
// ended with a line that is no chunk size, then the connection is closed
// (closing alone would let some clients, minio-go among them, take the
// end of a body of unknown size for its end); over HTTP/2 the stream is
// reset. (An HTTP/1.0 client of a body of unknown size, which only the
// connection's end delimits, cannot be told.) An error before the first
// byte is an ordinary S3 error.
//
// # Authentication
//
// Every request must be signed with AWS Signature Version 4 by a key of
// Options.Credentials, in the Authorization header (with X-Amz-Date
// signed; X-Amz-Content-Sha256 UNSIGNED-PAYLOAD or the empty body's hash,
// which is assumed when the header is absent, as curl --aws-sigv4 signs)
// or as a presigned URL (X-Amz-Algorithm … X-Amz-Signature, expiry
// at most 7 days). A request more than [MaxClockSkew] (15 minutes) from
// the gateway's clock is RequestTimeTooSkewed, an unknown key
// InvalidAccessKeyId, a wrong signature SignatureDoesNotMatch, an unsigned
// request AccessDenied, all 403; a scope with another region is
// AuthorizationHeaderMalformed. The gateway does not check that a body
// matches its signed hash: it reads no body. The Host header is signed:
// a proxy in front of the gateway must pass it on unchanged.
//
// # Bounds
//
// Listings hold at most [MaxKeys] entries and two pages per node; keys,
// prefixes and start-after are at most 1024 bytes; an object's bytes
// stream through a 32 KiB buffer. Request header sizes and header read
// times are the http.Server's that serves the gateway: set its
// MaxHeaderBytes (which also bounds the URL) and ReadHeaderTimeout. Each
// request to the nodes is bounded by the client's timeouts
// (locality.ClientOptions); a client that stops reading is the
// http.Server's WriteTimeout's to bound.
package gateway
