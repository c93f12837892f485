package s3_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/insitu-data/insitu/s3"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// List the .flac objects under a prefix of an S3 bucket, a page of 1,000
// keys at a time. Keys that are not valid insitu names come as
// InvalidArgument errors, and the listing goes on.
//
// This example needs an S3 service: set S3_ENDPOINT, S3_ACCESS_KEY and
// S3_SECRET_KEY (examples/migrate starts one with a single command).
func ExampleNewSource() {
	client, err := minio.New(os.Getenv("S3_ENDPOINT"), &minio.Options{
		Creds:  credentials.NewStaticV4(os.Getenv("S3_ACCESS_KEY"), os.Getenv("S3_SECRET_KEY"), ""),
		Secure: true,
	})
	if err != nil {
		log.Fatal(err)
	}
	src, err := s3.NewSource(client, "audio", &s3.SourceOptions{Prefix: "2024/", Suffix: ".flac"})
	if err != nil {
		log.Fatal(err)
	}
	for obj, err := range src.Objects(context.Background()) {
		if err != nil {
			fmt.Println("skipped:", err)
			continue
		}
		fmt.Println(obj.Name, obj.Size)
	}
}

// Resume a listing after the last key a previous run finished.
func ExampleNewSource_startAfter() {
	client, err := minio.New(os.Getenv("S3_ENDPOINT"), &minio.Options{
		Creds: credentials.NewStaticV4(os.Getenv("S3_ACCESS_KEY"), os.Getenv("S3_SECRET_KEY"), ""),
	})
	if err != nil {
		log.Fatal(err)
	}
	src, err := s3.NewSource(client, "audio", &s3.SourceOptions{StartAfter: "2024/07/take-0413.flac"})
	if err != nil {
		log.Fatal(err)
	}
	n := 0
	for _, err := range src.Objects(context.Background()) {
		if err == nil {
			n++
		}
	}
	fmt.Println(n, "objects left")
}
