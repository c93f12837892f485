package s3_test

import (
	"strings"
	"testing"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/pipeline"
	"github.com/insitu-data/insitu/s3"
	"github.com/insitu-data/insitu/s3/s3test"
	"github.com/insitu-data/insitu/sink/sinktest"
)

// TestSinkSkipUnchanged: from one S3 bucket into another (versitygw),
// the source's versions being ETags and the origins user metadata, a rerun
// with SkipUnchanged makes again exactly the outputs whose origin changed.
func TestSinkSkipUnchanged(t *testing.T) {
	srv := s3test.Start(t)
	in, out := bucketFor(t)+"-in", bucketFor(t)+"-out"
	srv.MakeBucket(t, in)
	srv.MakeBucket(t, out)
	src := newSource(t, srv.Client, in, nil)
	dst := newSink(t, srv.Client, out, nil)
	sinktest.RunResume(t, sinktest.ResumeHarness{
		WriteInput: func(t *testing.T, key string, data []byte) {
			putAll(t, srv.Client, in, map[string][]byte{key: data})
		},
		Run: func(t *testing.T, opts pipeline.Options) pipeline.Report {
			rep, err := pipeline.Run(t.Context(), src, sinktest.ResumeTransform, dst, &opts)
			if err != nil {
				t.Fatalf("Run: %v\n%s", err, rep)
			}
			return rep
		},
		ReadOutput: func(t *testing.T, key string) []byte {
			b, err := readS3(srv.Client, out, key)
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
		PutWithoutOrigin: func(t *testing.T, key string, data []byte) {
			putAll(t, srv.Client, out, map[string][]byte{key: data})
		},
	})
}

// TestSinkPutOriginMultipart: an object of several parts gets its origin
// with the upload that makes it.
func TestSinkPutOriginMultipart(t *testing.T) {
	srv := s3test.Start(t)
	b := bucketFor(t)
	srv.MakeBucket(t, b)
	dst := newSink(t, srv.Client, b, &s3.SinkOptions{PartSize: 5 << 20})
	name := insitu.Name{Bucket: "any", Key: "big.bin"}
	o := insitu.Origin{Input: insitu.Name{Bucket: "in", Key: "big.flac"}, Version: "etag-1", Transform: "t", Args: insitu.ArgsDigest("")}
	const size = 11 << 20
	res, err := dst.PutOrigin(t.Context(), name, newGen(1, size), -1, o)
	if err != nil || res.Size != size {
		t.Fatalf("PutOrigin: %+v, %v", res, err)
	}
	obj, err := dst.Stat(t.Context(), name)
	if err != nil || obj.Origin != o.String() || obj.Size != size {
		t.Fatalf("Stat = %+v, %v; want Origin %q", obj, err, o.String())
	}
	// The ETag of a multipart object is not an MD5: "<hex>-<parts>".
	src := newSource(t, srv.Client, b, nil)
	sobj, err := src.Stat(t.Context(), name)
	if err != nil || !strings.HasSuffix(sobj.Version, "-3") {
		t.Errorf("source Stat = %+v, %v; want the Version of a 3-part upload", sobj, err)
	}
}
