package s3_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/s3"
	"github.com/insitu-data/insitu/s3/s3test"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// killedPutEnv makes the test binary a child that starts a multipart Put
// and stalls in it, to be killed: "endpoint bucket prefix key".
const killedPutEnv = "INSITU_S3_KILLED_PUT"

func TestMain(m *testing.M) {
	if spec := os.Getenv(killedPutEnv); spec != "" {
		os.Exit(killedPut(spec))
	}
	os.Exit(m.Run())
}

// killedPut is the child of TestSinkKilledPutIsSwept: it Puts 5 MiB and
// more through a sink with 5 MiB parts, writes "ready" once the first part
// is up (the input is asked for more), and then waits on stdin until it is
// killed.
func killedPut(spec string) int {
	f := strings.Fields(spec)
	if len(f) != 4 {
		fmt.Fprintf(os.Stderr, "%s=%q: want endpoint, bucket, prefix and key\n", killedPutEnv, spec)
		return 2
	}
	client, err := minio.New(f[0], &minio.Options{Creds: credentials.NewStaticV4(s3test.AccessKey, s3test.SecretKey, ""), Region: s3test.Region})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	s, err := s3.NewSink(client, f[1], &s3.SinkOptions{Prefix: f[2], PartSize: 5 << 20})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	_, err = s.Put(context.Background(), insitu.Name{Key: f[3]}, &stall{r: newGen(9, 5<<20)}, -1)
	fmt.Fprintln(os.Stderr, "Put returned:", err)
	return 1
}

// stall reads r, then says "ready" on stdout and blocks reading stdin.
type stall struct{ r io.Reader }

func (s *stall) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != io.EOF {
		return n, err
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	return 0, errors.New("stdin closed")
}

// uploadsOf returns the multipart uploads in progress in bucket.
func uploadsOf(t *testing.T, c *minio.Client, bucket string) []minio.ObjectMultipartInfo {
	t.Helper()
	res, err := minio.Core{Client: c}.ListMultipartUploads(context.Background(), bucket, "", "", "", "", 1000)
	if err != nil {
		t.Fatalf("ListMultipartUploads(%s): %v", bucket, err)
	}
	return res.Uploads
}

// startUpload starts a multipart upload of bucket/key directly, as another
// writer would, and returns its ID.
func startUpload(t *testing.T, c *minio.Client, bucket, key string) string {
	t.Helper()
	id, err := minio.Core{Client: c}.NewMultipartUpload(context.Background(), bucket, key, minio.PutObjectOptions{})
	if err != nil {
		t.Fatalf("NewMultipartUpload(%s): %v", key, err)
	}
	return id
}

// age makes the upload id of bucket/key look initiated d ago. versitygw's
// posix backend keeps an upload in the directory
// .sgwtmp/multipart/<sha256 of key>/<id> of the bucket and lists the
// directory's mtime as the upload's Initiated.
func age(t *testing.T, srv *s3test.Server, bucket, key, id string, d time.Duration) {
	t.Helper()
	dir := filepath.Join(srv.Root, bucket, ".sgwtmp", "multipart", fmt.Sprintf("%x", sha256.Sum256([]byte(key))), id)
	when := time.Now().Add(-d)
	if err := os.Chtimes(dir, when, when); err != nil {
		t.Fatalf("aging upload %s of %s (has versitygw's layout changed?): %v", id, key, err)
	}
}

// uploadKeys returns the sorted keys of uploads.
func uploadKeys(ups []minio.ObjectMultipartInfo) []string {
	var out []string
	for _, u := range ups {
		out = append(out, u.Key)
	}
	slices.Sort(out)
	return out
}

// A process killed during a multipart Put leaves its upload behind; a
// resumed run stores the object whole and leaves the upload there; Sweep
// aborts it, and leaves alone the uploads that are not the sink's (another
// prefix, a key insitu cannot make) and the ones younger than its age.
func TestSinkKilledPutIsSwept(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a child process in the middle of a 5 MiB upload to versitygw")
	}
	t.Parallel()
	srv := s3test.Start(t)
	srv.MakeBucket(t, "killed")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Env = append(os.Environ(), killedPutEnv+"="+srv.Endpoint+" killed out/ big.bin")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	cmd.Process.Kill()
	cmd.Wait()
	if line != "ready\n" {
		t.Fatalf("the child said %q, %v; want ready; stderr: %s", line, err, stderr.String())
	}

	left := uploadsOf(t, srv.Client, "killed")
	if len(left) != 1 || left[0].Key != "out/big.bin" {
		t.Fatalf("uploads after the kill: %q; want out/big.bin", uploadKeys(left))
	}
	killed := left[0].UploadID

	// The resumed run: the object is stored whole, the old upload stays.
	s := newSink(t, srv.Client, "killed", &s3.SinkOptions{Prefix: "out/", PartSize: 5 << 20})
	want, _ := hashOf(t, newGen(9, 12<<20))
	if _, err := s.Put(ctx, insitu.Name{Key: "big.bin"}, newGen(9, 12<<20), -1); err != nil {
		t.Fatalf("resumed Put: %v", err)
	}
	if left := uploadsOf(t, srv.Client, "killed"); len(left) != 1 || left[0].UploadID != killed {
		t.Fatalf("uploads after the resumed run: %+v; want the killed one, %s", left, killed)
	}

	// Others: old ones outside the sink's key space, and a young one in it.
	age(t, srv, "killed", "out/big.bin", killed, 2*time.Hour)
	for _, key := range []string{"other/x", "out/a//b"} {
		age(t, srv, "killed", key, startUpload(t, srv.Client, "killed", key), 2*time.Hour)
	}
	startUpload(t, srv.Client, "killed", "out/young.bin")

	if n, err := s.Sweep(ctx, time.Hour); n != 1 || err != nil {
		t.Errorf("Sweep(1h) = %d, %v; want 1, nil", n, err)
	}
	left = uploadsOf(t, srv.Client, "killed")
	if got, want := uploadKeys(left), []string{"other/x", "out/a//b", "out/young.bin"}; !slices.Equal(got, want) {
		t.Errorf("uploads after Sweep(1h): %q; want %q", got, want)
	}
	for _, u := range left {
		if u.UploadID == killed {
			t.Errorf("the killed Put's upload %s is still there", killed)
		}
	}
	if n, err := s.Sweep(ctx, 0); n != 1 || err != nil {
		t.Errorf("Sweep(0) = %d, %v; want 1, nil", n, err)
	}
	if got, want := uploadKeys(uploadsOf(t, srv.Client, "killed")), []string{"other/x", "out/a//b"}; !slices.Equal(got, want) {
		t.Errorf("uploads after Sweep(0): %q; want %q", got, want)
	}

	// The object stays whole.
	body, _, _, err := minio.Core{Client: srv.Client}.GetObject(ctx, "killed", "out/big.bin", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	if got, n := hashOf(t, body); got != want || n != 12<<20 {
		t.Errorf("out/big.bin after the sweeps: %d bytes, xxh64 %016x; want %d, %016x", n, got, 12<<20, want)
	}
}

// Sweep pages through more uploads than one listing holds, with several
// uploads of one key across pages, without the upload-id-marker that
// versitygw refuses.
func TestSinkSweepPages(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	keys := []string{"a", "a", "a", "b", "c", "c", "d//e", "d//e", "f", "g"}
	for _, page := range []int{1, 2, 3, 1000} {
		bucket := fmt.Sprint("pages", page)
		srv.MakeBucket(t, bucket)
		for _, k := range keys {
			startUpload(t, srv.Client, bucket, k)
		}
		s := newSink(t, srv.Client, bucket, nil)
		s3.SetSweepPage(s, page)
		if n, err := s.Sweep(context.Background(), time.Hour); n != 0 || err != nil {
			t.Errorf("page %d: Sweep(1h) = %d, %v; want 0, nil", page, n, err)
		}
		if got := uploadsOf(t, srv.Client, bucket); len(got) != len(keys) {
			t.Errorf("page %d: uploads after Sweep(1h): %q; want all %d", page, uploadKeys(got), len(keys))
		}
		if n, err := s.Sweep(context.Background(), 0); n != 8 || err != nil {
			t.Errorf("page %d: Sweep(0) = %d, %v; want 8, nil", page, n, err)
		}
		if got, want := uploadKeys(uploadsOf(t, srv.Client, bucket)), []string{"d//e", "d//e"}; !slices.Equal(got, want) {
			t.Errorf("page %d: uploads left: %q; want %q", page, got, want)
		}
	}
}

func TestSinkSweepErrors(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	srv.MakeBucket(t, "sweeperrs")
	startUpload(t, srv.Client, "sweeperrs", "x")
	s := newSink(t, srv.Client, "sweeperrs", nil)
	if n, err := s.Sweep(context.Background(), -time.Second); n != 0 || !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("Sweep(-1s) = %d, %v; want InvalidArgument", n, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if n, err := s.Sweep(ctx, 0); n != 0 || err != context.Canceled {
		t.Errorf("Sweep with a canceled ctx = %d, %v; want context.Canceled", n, err)
	}
	if n, err := newSink(t, srv.Client, "no-such-bucket", nil).Sweep(context.Background(), 0); n != 0 || err != nil {
		t.Errorf("Sweep of a missing bucket = %d, %v; want 0, nil", n, err)
	}
	bad, err := srv.NewClient(srv.AccessKey, "wrong-secret")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := newSink(t, bad, "sweeperrs", nil).Sweep(context.Background(), 0); n != 0 || !errors.Is(err, insitu.PermissionDenied) {
		t.Errorf("Sweep with a wrong secret = %d, %v; want PermissionDenied", n, err)
	}
	if u := uploads(t, srv.Client, "sweeperrs"); len(u) != 1 {
		t.Errorf("uploads %q; want x, untouched", u)
	}
}
