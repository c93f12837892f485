package main

import (
	"context"
	"fmt"
	"log"
	"strings"

	"github.com/insitu-data/insitu/pipeline"
	"github.com/insitu-data/insitu/s3/s3test"
	"github.com/minio/minio-go/v7"
)

// Upper-case every text object of one bucket into another, client-side,
// against a versitygw started for the example.
func ExampleClientSide() {
	ctx := context.Background()
	srv, err := s3test.StartProcess(ctx, nil)
	if err != nil {
		log.Fatal(err) // versitygw is not installed: see s3test.InstallHint
	}
	defer srv.Close()
	for _, b := range []string{"notes", "loud"} {
		if err := srv.Client.MakeBucket(ctx, b, minio.MakeBucketOptions{}); err != nil {
			log.Fatal(err)
		}
	}
	for _, k := range []string{"a.txt", "b.txt"} {
		if _, err := srv.Client.PutObject(ctx, "notes", k, strings.NewReader("hello from "+k), -1, minio.PutObjectOptions{}); err != nil {
			log.Fatal(err)
		}
	}
	rep, err := ClientSide(ctx, srv.Client, "notes", "loud", "", upper,
		&Options{Options: pipeline.Options{Rename: pipeline.ReplaceExt(".txt", ".TXT")}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(rep.Transformed, "objects")
}
