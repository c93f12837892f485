package s3_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/pipeline"
	"github.com/insitu-data/insitu/s3"
	"github.com/insitu-data/insitu/source"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Upload a local directory to an S3 bucket under a prefix. Each Put holds
// at most PartSize bytes in memory (here 8 MiB, so 4 workers hold at most
// 32 MiB), whatever the size of the files; an interrupted run resumes with
// SkipExisting.
//
// This example needs an S3 service: set S3_ENDPOINT, S3_ACCESS_KEY and
// S3_SECRET_KEY (examples/migrate starts one with a single command).
func ExampleNewSink() {
	client, err := minio.New(os.Getenv("S3_ENDPOINT"), &minio.Options{
		Creds: credentials.NewStaticV4(os.Getenv("S3_ACCESS_KEY"), os.Getenv("S3_SECRET_KEY"), ""),
	})
	if err != nil {
		log.Fatal(err)
	}
	dst, err := s3.NewSink(client, "backup", &s3.SinkOptions{Prefix: "photos/", PartSize: 8 << 20})
	if err != nil {
		log.Fatal(err)
	}
	src, err := source.Dir("/srv/photos", nil)
	if err != nil {
		log.Fatal(err)
	}
	rep, err := pipeline.Run(context.Background(), src, insitu.Identity, dst,
		&pipeline.Options{Workers: 4, SkipExisting: true})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(rep)
}

// Abort the multipart uploads that killed runs left behind. A resumed run
// stores every object again, but an upload a killed Put had started stays
// in the bucket, its parts taking space, until it is aborted. Sweep aborts
// the uploads under the sink's prefix that began more than a day ago,
// older than any Put of this sink can be.
//
// This example needs an S3 service: set S3_ENDPOINT, S3_ACCESS_KEY and
// S3_SECRET_KEY (examples/migrate starts one with a single command).
func ExampleSink_Sweep() {
	client, err := minio.New(os.Getenv("S3_ENDPOINT"), &minio.Options{
		Creds: credentials.NewStaticV4(os.Getenv("S3_ACCESS_KEY"), os.Getenv("S3_SECRET_KEY"), ""),
	})
	if err != nil {
		log.Fatal(err)
	}
	dst, err := s3.NewSink(client, "backup", &s3.SinkOptions{Prefix: "photos/"})
	if err != nil {
		log.Fatal(err)
	}
	n, err := dst.Sweep(context.Background(), 24*time.Hour)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("aborted", n, "incomplete uploads")
}
