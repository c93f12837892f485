package s3_test

import (
	"testing"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/pipeline"
	"github.com/insitu-data/insitu/s3"
	"github.com/insitu-data/insitu/seaweedfs/seaweedfstest"
	"github.com/insitu-data/insitu/sink/sinktest"
	"github.com/insitu-data/insitu/source/sourcetest"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// TestSeaweedFSGateway runs the source and sink conformance suites, and
// the resume suite, against SeaweedFS's S3 gateway: a second real S3
// server beside versitygw, and the fallback (no locality) on the same
// store that package seaweedfs reads with locality. One cluster serves
// the whole test: its S3 gateway takes about 15 s to start.
func TestSeaweedFSGateway(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a SeaweedFS cluster with its S3 gateway (about 15 s)")
	}
	c := seaweedfstest.Start(t, &seaweedfstest.Options{S3: true})
	client, err := minio.New(c.S3Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(c.AccessKey, c.SecretKey, ""),
		Region: "us-east-1",
	})
	if err != nil {
		t.Fatal(err)
	}
	makeBucket := func(t *testing.T, b string) {
		t.Helper()
		if err := client.MakeBucket(t.Context(), b, minio.MakeBucketOptions{Region: "us-east-1"}); err != nil {
			t.Fatalf("MakeBucket(%s): %v", b, err)
		}
	}

	t.Run("source", func(t *testing.T) {
		t.Parallel()
		sourcetest.Run(t, sourcetest.Harness{
			Bucket: "conformance",
			MakeSource: func(t *testing.T, objs map[string][]byte) insitu.Source {
				b := bucketFor(t)
				makeBucket(t, b)
				putAll(t, client, b, objs)
				return renamed{newSource(t, client, b, nil), "conformance"}
			},
		})
	})
	t.Run("sink", func(t *testing.T) {
		t.Parallel()
		sinktest.Run(t, sinktest.Harness{
			Bucket: "conformance",
			MakeSink: func(t *testing.T) insitu.Sink {
				b := bucketFor(t)
				makeBucket(t, b)
				return newSink(t, client, b, nil)
			},
			Read: func(t *testing.T, s insitu.Sink, name insitu.Name) ([]byte, error) {
				return readS3(client, s.(*s3.Sink).Bucket(), name.Key)
			},
		})
	})
	t.Run("resume", func(t *testing.T) {
		t.Parallel()
		in, out := bucketFor(t)+"-in", bucketFor(t)+"-out"
		makeBucket(t, in)
		makeBucket(t, out)
		src := newSource(t, client, in, nil)
		dst := newSink(t, client, out, nil)
		sinktest.RunResume(t, sinktest.ResumeHarness{
			WriteInput: func(t *testing.T, key string, data []byte) {
				putAll(t, client, in, map[string][]byte{key: data})
			},
			Run: func(t *testing.T, opts pipeline.Options) pipeline.Report {
				rep, err := pipeline.Run(t.Context(), src, sinktest.ResumeTransform, dst, &opts)
				if err != nil {
					t.Fatalf("Run: %v\n%s", err, rep)
				}
				return rep
			},
			ReadOutput: func(t *testing.T, key string) []byte {
				b, err := readS3(client, out, key)
				if err != nil {
					t.Fatal(err)
				}
				return b
			},
			PutWithoutOrigin: func(t *testing.T, key string, data []byte) {
				putAll(t, client, out, map[string][]byte{key: data})
			},
		})
	})
}
