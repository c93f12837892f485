package main

// The client-side way of running a transform over an S3 bucket, as the
// seed's baseline did it and as insitu's fallback mode does it: list the
// bucket, GET each object, run the transform here, PUT the output, with N
// workers. The benchmark measures insitu's modes against it.

import (
	"context"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/pipeline"
	"github.com/insitu-data/insitu/s3"
	"github.com/minio/minio-go/v7"
)

// DefaultWorkers is the number of objects in flight by default, as in the
// seed's
const DefaultWorkers = 24

// Options configure [ClientSide]. A nil *Options means the defaults.
type Options struct {
	// Options are the runner's options (rename, args, skip-existing, dry
	// run, continue-on-error, retries, progress, failures file...), with
	// one default changed: Workers is [DefaultWorkers], not GOMAXPROCS,
	// because the work waits on the network.
	pipeline.Options

	// DstClient is the client of the destination, when it is another S3
	// service than the source's. Default: the source's client.
	DstClient *minio.Client

	// PartSize is the sink's part size, the most each PUT holds in memory
	// (see s3.SinkOptions). Default sink.DefaultPartSize, 16 MiB.
	PartSize int64
}

// ClientSide transforms every object of srcBucket whose key starts with
// prefix and stores the outputs in dstBucket: it lists srcBucket, GETs
// each object, runs t on it in this process and PUTs the output, with
// opts.Workers objects in flight (default 24). It is pipeline.Run over
// s3.NewSource and s3.NewSink, so it streams (memory stays near Workers ×
// PartSize whatever the object sizes), retries Unavailable failures, and
// returns the same Report and errors.
func ClientSide(ctx context.Context, client *minio.Client, srcBucket, dstBucket, prefix string, t insitu.Transform, opts *Options) (pipeline.Report, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Workers == 0 {
		o.Workers = DefaultWorkers
	}
	dc := o.DstClient
	if dc == nil {
		dc = client
	}
	src, err := s3.NewSource(client, srcBucket, &s3.SourceOptions{Prefix: prefix})
	if err != nil {
		return pipeline.Report{}, err
	}
	dst, err := s3.NewSink(dc, dstBucket, &s3.SinkOptions{PartSize: o.PartSize})
	if err != nil {
		return pipeline.Report{}, err
	}
	return pipeline.Run(ctx, src, t, dst, &o.Options)
}
