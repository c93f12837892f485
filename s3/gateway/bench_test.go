package gateway_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/node/nodetest"
	"github.com/insitu-data/insitu/s3/gateway"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// BenchmarkGet reads one 16 KiB object again and again: straight from its
// owner with the node client, and through the gateway with minio-go, as
// stored and through "upper" (the gateway's cost: a listing request to
// the owner for the ETag, and the extra hop).
func BenchmarkGet(b *testing.B) {
	ctx := context.Background()
	c, err := nodetest.Start(ctx, 3, &nodetest.Options{Transforms: map[string]insitu.Transform{"upper": upper}})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	body := bytes.Repeat([]byte("sixteen kib obj."), 1024)
	name := insitu.Name{Bucket: "data", Key: "dir/object.bin"}
	if _, err := c.Put(ctx, name, bytes.NewReader(body), int64(len(body))); err != nil {
		b.Fatal(err)
	}
	g, err := gateway.New(c.Client(), &gateway.Options{
		Buckets:     map[string]gateway.Bucket{"plain": {Source: "data"}, "upper": {Source: "data", Transform: []string{"upper"}}},
		Credentials: map[string]string{accessKey: secretKey},
	})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(g)
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	mc, err := minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(accessKey, secretKey, ""), Region: "us-east-1", BucketLookup: minio.BucketLookupPath, Transport: tr})
	if err != nil {
		b.Fatal(err)
	}
	check := func(b *testing.B, n int64, err error, want int) {
		if err != nil || n != int64(want) {
			b.Fatalf("%d bytes, %v", n, err)
		}
	}
	b.Run("client", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			rc, _, err := c.Client().Get(ctx, name)
			if err != nil {
				b.Fatal(err)
			}
			n, err := io.Copy(io.Discard, rc)
			rc.Close()
			check(b, n, err, len(body))
		}
	})
	for _, bucket := range []string{"plain", "upper"} {
		b.Run("gateway-"+bucket, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				obj, err := mc.GetObject(ctx, bucket, name.Key, minio.GetObjectOptions{})
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.Copy(io.Discard, obj)
				obj.Close()
				check(b, n, err, len(body))
			}
		})
	}
}
