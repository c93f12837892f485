package seaweedfs_test

import (
	"bytes"
	"io"
	"slices"
	"testing"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/seaweedfs"
	"github.com/insitu-data/insitu/seaweedfs/seaweedfstest"
	"github.com/insitu-data/insitu/sink/sinktest"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Under the default root, a name is the bucket and key that SeaweedFS's
// S3 gateway shows: what the Sink puts, S3 reads, and what S3 puts, the
// Source lists with its owner and reads.
func TestNamesMatchS3Gateway(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a SeaweedFS cluster")
	}
	c := seaweedfstest.Start(t, &seaweedfstest.Options{S3: true})
	client, err := seaweedfs.NewClient(c.FilerURL, c.MasterURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if client.Root() != "/buckets" {
		t.Fatalf("default Root %q", client.Root())
	}
	s3c, err := minio.New(c.S3Endpoint, &minio.Options{Creds: credentials.NewStaticV4(c.AccessKey, c.SecretKey, ""), Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	const bucket = "names-match"
	sink, _ := seaweedfs.NewSink(client, &seaweedfs.SinkOptions{Pin: func(insitu.Name) string { return c.VolumeServers[2] }})
	viaSink := sinktest.Content("via sink", 5000)
	name := insitu.Name{Bucket: bucket, Key: "dir/é/via-sink.bin"}
	if _, err := sink.Put(ctx, name, bytes.NewReader(viaSink), int64(len(viaSink))); err != nil {
		t.Fatal(err)
	}
	obj, err := s3c.GetObject(ctx, bucket, name.Key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(obj)
	obj.Close()
	if err != nil || !bytes.Equal(got, viaSink) {
		t.Fatalf("S3 GetObject(%s): %d bytes, %v", name, len(got), err)
	}
	viaS3 := sinktest.Content("via s3", 7000)
	if _, err := s3c.PutObject(ctx, bucket, "dir/via-s3.bin", bytes.NewReader(viaS3), int64(len(viaS3)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	src, _ := seaweedfs.NewSource(client, bucket, nil)
	var keys []string
	for obj, err := range src.Objects(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, obj.Name.Key)
		if obj.Owner == "" || !slices.Contains(c.VolumeServers, obj.Owner) {
			t.Errorf("%s: Owner %q, want a volume server", obj.Name, obj.Owner)
		}
		want := viaS3
		if obj.Name == name {
			want = viaSink
			if obj.Owner != c.VolumeServers[2] {
				t.Errorf("%s: Owner %s, want the pinned %s", obj.Name, obj.Owner, c.VolumeServers[2])
			}
		}
		if b, err := readAll(t, src, obj); err != nil || !bytes.Equal(b, want) {
			t.Errorf("Open(%s): %d bytes, %v", obj.Name, len(b), err)
		}
	}
	if !slices.Equal(keys, []string{"dir/via-s3.bin", "dir/é/via-sink.bin"}) {
		t.Errorf("listed %q", keys)
	}
}
