// Package s3 is insitu's fallback backend: a [Source] and a [Sink] over any
// S3-compatible store, through minio-go. There is no locality here: the
// pipeline runs client-side and every byte crosses the client's link.
//
// It is a package of its own so that importing source or sink for a local
// directory does not link minio-go. Package s3test starts a real S3 server
// (versitygw) on 127.0.0.1 for tests and examples.
package s3
