package s3_test

import (
	"testing"

	"github.com/insitu-data/insitu/s3"
	"github.com/minio/minio-go/v7"
)

// newSink returns s3.NewSink(client, bucket, opts), failing the test on
// error.
func newSink(t testing.TB, client *minio.Client, bucket string, opts *s3.SinkOptions) *s3.Sink {
	t.Helper()
	s, err := s3.NewSink(client, bucket, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newSource returns s3.NewSource(client, bucket, opts), failing the test
// on error.
func newSource(t testing.TB, client *minio.Client, bucket string, opts *s3.SourceOptions) *s3.Source {
	t.Helper()
	s, err := s3.NewSource(client, bucket, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
