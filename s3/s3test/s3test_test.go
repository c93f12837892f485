package s3test_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/insitu-data/insitu/s3/s3test"
	"github.com/minio/minio-go/v7"
)

func TestStartPutGetClose(t *testing.T) {
	s := s3test.Start(t)
	ctx := context.Background()
	s.MakeBucket(t, "bkt")
	data := []byte("hello, versitygw")
	if _, err := s.Client.PutObject(ctx, "bkt", "dir/obj.txt", bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	obj, err := s.Client.GetObject(ctx, "bkt", "dir/obj.txt", minio.GetObjectOptions{})
	if err != nil {
		t.Fatalf("GetObject: %v", err)
	}
	got, err := io.ReadAll(obj)
	obj.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("GetObject: %q, %v; want %q", got, err, data)
	}
	// The bytes are files under Root.
	if b, err := os.ReadFile(filepath.Join(s.Root, "bkt", "dir", "obj.txt")); err != nil || !bytes.Equal(b, data) {
		t.Errorf("file under Root: %q, %v; want %q", b, err, data)
	}

	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// Stopped: the port refuses connections.
	c, err := net.Dial("tcp", s.Endpoint)
	if err == nil {
		c.Close()
		t.Fatalf("%s still accepts connections after Close", s.Endpoint)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial after Close: %v; want connection refused", err)
	}
}

func TestWrongCredentialsRefused(t *testing.T) {
	s := s3test.Start(t)
	s.MakeBucket(t, "bkt")
	bad, err := s.NewClient(s.AccessKey, "not-the-secret")
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.StatObject(context.Background(), "bkt", "x", minio.StatObjectOptions{})
	if r := minio.ToErrorResponse(err); r.StatusCode != 403 {
		t.Errorf("StatObject with a wrong secret: %v (status %d); want 403", err, r.StatusCode)
	}
}

func TestStartProcessOwnRoot(t *testing.T) {
	s := s3test.Start(t) // skips when versitygw is absent
	s.Close()
	srv, err := s3test.StartProcess(context.Background(), nil)
	if err != nil {
		t.Fatalf("StartProcess: %v", err)
	}
	root := srv.Root
	if err := srv.Client.MakeBucket(context.Background(), "own", minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("MakeBucket: %v", err)
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := os.Stat(root); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary root %s left after Close: %v", root, err)
	}
}

func TestStartProcessMissingBinary(t *testing.T) {
	_, err := s3test.StartProcess(context.Background(), &s3test.Options{Bin: "/nonexistent/versitygw"})
	if err == nil {
		t.Fatal("StartProcess with a missing binary succeeded")
	}
}
