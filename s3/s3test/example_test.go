package s3test_test

import (
	"context"
	"fmt"
	"log"

	"github.com/insitu-data/insitu/s3/s3test"
	"github.com/minio/minio-go/v7"
)

// StartProcess starts a versitygw outside of tests, as examples/migrate
// does when it is given no endpoint.
func ExampleStartProcess() {
	srv, err := s3test.StartProcess(context.Background(), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	if err := srv.Client.MakeBucket(context.Background(), "photos", minio.MakeBucketOptions{}); err != nil {
		log.Fatal(err)
	}
	fmt.Println("S3 endpoint:", srv.URL)
}
