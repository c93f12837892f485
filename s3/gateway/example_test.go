package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/node/nodetest"
	"github.com/insitu-data/insitu/s3/gateway"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// An unmodified S3 client reads a cluster's bucket "notes" as stored
// (S3 bucket "notes") and through the transform "upper", which each
// object's owner runs (S3 bucket "shout").
func ExampleGateway() {
	ctx := context.Background()
	upper := insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		b, err := io.ReadAll(in.Body)
		if err != nil {
			return err
		}
		_, err = out.Write(bytes.ToUpper(b))
		return err
	})
	c, err := nodetest.Start(ctx, 3, &nodetest.Options{Transforms: map[string]insitu.Transform{"upper": upper}})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	for _, key := range []string{"a.txt", "b.txt", "old/c.txt"} {
		if _, err := c.Put(ctx, insitu.Name{Bucket: "notes", Key: key}, strings.NewReader("note "+key), -1); err != nil {
			panic(err)
		}
	}

	g, err := gateway.New(c.Client(), &gateway.Options{
		Buckets: map[string]gateway.Bucket{
			"notes": {Source: "notes"},
			"shout": {Source: "notes", Transform: []string{"upper"}},
		},
		Credentials: map[string]string{"AKIDEXAMPLE": "example-secret"},
	})
	if err != nil {
		panic(err)
	}
	// In production: an http.Server with MaxHeaderBytes and
	// ReadHeaderTimeout set, beside a node or anywhere with the secret.
	srv := httptest.NewServer(g)
	defer srv.Close()

	u, _ := url.Parse(srv.URL)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	s3, err := minio.New(u.Host, &minio.Options{
		Creds:  credentials.NewStaticV4("AKIDEXAMPLE", "example-secret", ""),
		Region: "us-east-1", BucketLookup: minio.BucketLookupPath, Transport: tr,
	})
	if err != nil {
		panic(err)
	}
	for obj := range s3.ListObjects(ctx, "shout", minio.ListObjectsOptions{}) {
		if obj.Err != nil {
			panic(obj.Err)
		}
		fmt.Println("listed", obj.Key)
	}
	for _, bucket := range []string{"notes", "shout"} {
		obj, err := s3.GetObject(ctx, bucket, "old/c.txt", minio.GetObjectOptions{})
		if err != nil {
			panic(err)
		}
		b, err := io.ReadAll(obj)
		obj.Close()
		if err != nil {
			panic(err)
		}
		fmt.Printf("%s/old/c.txt: %s\n", bucket, b)
	}
	_, err = s3.PutObject(ctx, "notes", "d.txt", strings.NewReader("x"), 1, minio.PutObjectOptions{})
	fmt.Println("put:", minio.ToErrorResponse(err).Code)
	// Output:
	// listed a.txt
	// listed b.txt
	// listed old/
	// notes/old/c.txt: note old/c.txt
	// shout/old/c.txt: NOTE OLD/C.TXT
	// put: AccessDenied
}
