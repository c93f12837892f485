package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/testutil"
	"github.com/insitu-data/insitu/node/nodetest"
	"github.com/insitu-data/insitu/pipeline"
	"github.com/insitu-data/insitu/s3/s3test"
	"github.com/insitu-data/insitu/source"
	"github.com/minio/minio-go/v7"
)

// runMain runs the program with args and returns its status and output.
func runMain(t *testing.T, h *hooks, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	status := run(t.Context(), args, &stdout, &stderr, h)
	t.Logf("migrate %s → %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), status, &stdout, &stderr)
	return status, stdout.String(), stderr.String()
}

func wantIn(t *testing.T, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q", w)
		}
	}
}

// endpointArgs are the flags that point migrate at srv.
func endpointArgs(srv *s3test.Server) []string {
	return []string{"-endpoint", srv.Endpoint, "-access", srv.AccessKey, "-secret", srv.SecretKey}
}

// samples returns the sample objects, key → bytes, as seed stores them.
func samples(t *testing.T) map[string][]byte {
	t.Helper()
	m := memPutter{objs: map[string][]byte{}}
	if _, _, err := seed(context.Background(), &m, "sample"); err != nil {
		t.Fatal(err)
	}
	return m.objs
}

type memPutter struct {
	mu   sync.Mutex
	objs map[string][]byte
}

func (m *memPutter) Put(_ context.Context, name insitu.Name, r io.Reader, _ int64) (insitu.PutResult, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return insitu.PutResult{}, err
	}
	m.mu.Lock()
	m.objs[name.Key] = b
	m.mu.Unlock()
	return insitu.PutResult{Name: name, Size: int64(len(b))}, nil
}

// bucketContents returns every object of bucket, key → bytes.
func bucketContents(t *testing.T, c *minio.Client, bucket string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for o := range c.ListObjectsIter(context.Background(), bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatalf("listing %s: %v", bucket, o.Err)
		}
		body, _, _, err := minio.Core{Client: c}.GetObject(context.Background(), bucket, o.Key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(body)
		body.Close()
		if err != nil {
			t.Fatal(err)
		}
		out[o.Key] = b
	}
	return out
}

func sameBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s: %d bytes (xxh64 %016x), want %d bytes (xxh64 %016x)", what, len(got), xxhash.Sum64(got), len(want), xxhash.Sum64(want))
	}
}

func TestOneCommand(t *testing.T) {
	testutil.RequireTool(t, "versitygw", s3test.InstallHint)
	status, stdout, _ := runMain(t, nil)
	if status != 0 {
		t.Fatalf("status %d, want 0", status)
	}
	wantIn(t, stdout, "started versitygw at http://127.0.0.1:", "filled s3://sample with 31 sample objects",
		"migrating s3://sample/ → s3://sample-out (transform copy)", "listed 31, transformed 31, skipped 0, failed 0",
		"verified 31 outputs in s3://sample-out")
}

func TestS3ToS3WithTransformRenameAndPrefix(t *testing.T) {
	srv := s3test.Start(t)
	status, stdout, _ := runMain(t, nil, append(endpointArgs(srv), "-bucket", "src", "-dst-bucket", "dst", "-seed",
		"-transform", "upper", "-rename", ".txt:.md", "-prefix", "docs/", "-workers", "4")...)
	if status != 0 {
		t.Fatalf("status %d, want 0", status)
	}
	wantIn(t, stdout, "listed 13, transformed 13", "verified 13 outputs in s3://dst")
	src, dst := samples(t), bucketContents(t, srv.Client, "dst")
	n := 0
	for k, v := range src {
		if !strings.HasPrefix(k, "docs/") {
			continue
		}
		n++
		out := strings.TrimSuffix(k, ".txt") + ".md"
		sameBytes(t, "dst/"+out, dst[out], bytes.ToUpper(v))
	}
	if len(dst) != n || n != 13 {
		t.Errorf("dst holds %d objects, want the %d under docs/", len(dst), n)
	}
	// The source is intact.
	if got := bucketContents(t, srv.Client, "src"); len(got) != 31 {
		t.Errorf("src holds %d objects, want 31", len(got))
	}
}

func TestResumeAfterInterruption(t *testing.T) {
	srv := s3test.Start(t)
	args := append(endpointArgs(srv), "-bucket", "src", "-dst-bucket", "dst")

	// The first run is interrupted by the 11th transform; with one worker
	// no PUT is in flight then.
	var calls atomic.Int64
	interrupt := &hooks{wrap: func(t insitu.Transform) insitu.Transform {
		return insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
			if calls.Add(1) == 11 {
				return insitu.Errorf(insitu.Canceled, "interrupted by the test")
			}
			return t.Transform(ctx, in, out)
		})
	}}
	status, stdout, _ := runMain(t, interrupt, append(args, "-seed", "-workers", "1", "-transform", "gzip")...)
	if status != 1 {
		t.Fatalf("interrupted run: status %d, want 1", status)
	}
	wantIn(t, stdout, "transformed 10")
	if got := bucketContents(t, srv.Client, "dst"); len(got) != 10 {
		t.Fatalf("the interrupted run left %d outputs, want 10", len(got))
	}

	// The second run moves only the 21 left.
	status, stdout, _ = runMain(t, nil, append(args, "-skip-existing", "-transform", "gzip")...)
	if status != 0 {
		t.Fatalf("resumed run: status %d, want 0", status)
	}
	wantIn(t, stdout, "listed 31, transformed 21, skipped 10, failed 0", "verified 31 outputs")
	dst := bucketContents(t, srv.Client, "dst")
	for k, v := range samples(t) {
		zr, err := gzip.NewReader(bytes.NewReader(dst[k]))
		if err != nil {
			t.Errorf("dst/%s: %v", k, err)
			continue
		}
		got, err := io.ReadAll(zr)
		if err != nil {
			t.Errorf("dst/%s: %v", k, err)
		}
		sameBytes(t, "gunzip(dst/"+k+")", got, v)
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	srv := s3test.Start(t)
	status, stdout, _ := runMain(t, nil, append(endpointArgs(srv), "-bucket", "src", "-dst-bucket", "dst", "-seed", "-dry-run", "-transform", "upper")...)
	if status != 0 {
		t.Fatalf("status %d, want 0", status)
	}
	wantIn(t, stdout, "listed 31, transformed 31", "dry run: nothing was written")
	if got := bucketContents(t, srv.Client, "dst"); len(got) != 0 {
		t.Errorf("a dry run wrote %d objects", len(got))
	}
}

func TestS3ToClusterDirectPutToOwners(t *testing.T) {
	srv := s3test.Start(t)
	clusterDir := t.TempDir()
	status, stdout, _ := runMain(t, nil, append(endpointArgs(srv), "-bucket", "src", "-seed", "-to", "cluster",
		"-cluster-dir", clusterDir, "-cluster-bucket", "lake", "-transform", "gzip", "-args", "1", "-rename", ":.gz")...)
	if status != 0 {
		t.Fatalf("status %d, want 0", status)
	}
	wantIn(t, stdout, "started a 3-node cluster", "listed 31, transformed 31", "verified 31 outputs in cluster://lake, each on its owner node (n1 ")

	// The nodes' stores are kept: start the cluster again on them and read
	// every output back from its owner.
	c, err := nodetest.Start(t.Context(), 3, &nodetest.Options{Dir: clusterDir})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	want := samples(t)
	src, err := source.Cluster(c.Client(), "lake", nil)
	if err != nil {
		t.Fatal(err)
	}
	owners := map[string]int{}
	n := 0
	for obj, err := range src.Objects(t.Context()) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		if owner := c.Map().Owner(obj.Name).ID; obj.Owner != owner {
			t.Errorf("%s is on %s, its owner is %s", obj.Name, obj.Owner, owner)
		}
		owners[obj.Owner]++
		rc, err := src.Open(t.Context(), obj)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(rc)
		if err != nil {
			t.Fatalf("%s: %v", obj.Name, err)
		}
		got, err := io.ReadAll(zr)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		key := strings.TrimSuffix(obj.Name.Key, ".gz")
		sameBytes(t, obj.Name.String(), got, want[key])
	}
	if n != 31 || len(owners) != 3 {
		t.Errorf("%d objects in the cluster on %d nodes (%v), want 31 on 3", n, len(owners), owners)
	}
}

func TestClusterToS3(t *testing.T) {
	srv := s3test.Start(t)
	status, stdout, _ := runMain(t, nil, append(endpointArgs(srv), "-seed", "-from", "cluster", "-cluster-bucket", "lake",
		"-to", "s3", "-dst-bucket", "from-cluster", "-nodes", "4")...)
	if status != 0 {
		t.Fatalf("status %d, want 0", status)
	}
	wantIn(t, stdout, "started a 4-node cluster", "filled cluster bucket lake with 31 sample objects",
		"migrating cluster://lake/ → s3://from-cluster", "listed 31, transformed 31", "verified 31 outputs")
	dst := bucketContents(t, srv.Client, "from-cluster")
	want := samples(t)
	if len(dst) != len(want) {
		t.Errorf("%d objects in S3, want %d", len(dst), len(want))
	}
	for k, v := range want {
		sameBytes(t, "from-cluster/"+k, dst[k], v)
	}
}

func TestS3ToDir(t *testing.T) {
	srv := s3test.Start(t)
	dir := t.TempDir()
	status, stdout, _ := runMain(t, nil, append(endpointArgs(srv), "-bucket", "src", "-seed", "-to", "dir", "-dst-dir", dir, "-prefix", "logs/")...)
	if status != 0 {
		t.Fatalf("status %d, want 0", status)
	}
	wantIn(t, stdout, "listed 10, transformed 10", "verified 10 outputs in "+dir)
	status, stdout, _ = runMain(t, nil, append(endpointArgs(srv), "-bucket", "src", "-to", "dir", "-dst-dir", dir, "-prefix", "logs/", "-skip-existing", "-verify=false")...)
	if status != 0 || strings.Contains(stdout, "verified") {
		t.Fatalf("status %d; want 0 and no verification", status)
	}
	wantIn(t, stdout, "listed 10, transformed 0, skipped 10")
	for k, v := range samples(t) {
		got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(k)))
		if !strings.HasPrefix(k, "logs/") {
			if err == nil {
				t.Errorf("%s was migrated, outside the prefix", k)
			}
			continue
		}
		if err != nil {
			t.Error(err)
			continue
		}
		sameBytes(t, k, got, v)
	}
}

// Keys that S3 allows but insitu names and file systems do not: with
// -continue-on-error they are named in the failures file, and the rest
// lands in the cluster. versitygw cannot hold such keys, so they come from
// the fake S3.
func TestBadKeysNamedInFailuresFile(t *testing.T) {
	f := s3test.StartFake(t)
	bad := []string{"../escape", "/abs/path", "a//b", "x/./y", "dir/", "long/" + strings.Repeat("x", 300)}
	good := []string{"a/b", "ok.txt", "z/1.bin"}
	for _, k := range append(slices.Clone(bad), good...) {
		f.Put("mixed", k, []byte("bytes of "+k))
	}
	failures := filepath.Join(t.TempDir(), "failures.jsonl")
	status, stdout, _ := runMain(t, nil, "-endpoint", f.Endpoint, "-access", "a", "-secret", "b", "-bucket", "mixed",
		"-to", "cluster", "-continue-on-error", "-failures", failures)
	if status != 1 {
		t.Errorf("status %d, want 1 (some objects failed)", status)
	}
	wantIn(t, stdout, "listed 9, transformed 3, skipped 0, failed 6", "verified 3 outputs in cluster://mixed, each on its owner node")

	file, err := os.Open(failures)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	var named []string
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		var fl pipeline.Failure
		if err := json.Unmarshal(sc.Bytes(), &fl); err != nil {
			t.Fatalf("failures file line %q: %v", sc.Text(), err)
		}
		if fl.Code != insitu.InvalidArgument || fl.Name.Bucket != "mixed" {
			t.Errorf("failure %s; want invalid_argument in bucket mixed", fl)
		}
		named = append(named, fl.Name.Key)
	}
	slices.Sort(named)
	slices.Sort(bad)
	if !slices.Equal(named, bad) {
		t.Errorf("failures file names %q, want %q", named, bad)
	}
}

func TestWrongCredentials(t *testing.T) {
	srv := s3test.Start(t)
	srv.MakeBucket(t, "src")
	srv.MakeBucket(t, "dst")
	if _, err := srv.Client.PutObject(t.Context(), "src", "a.txt", strings.NewReader("a"), 1, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	// The destination check is refused before anything runs.
	status, _, stderr := runMain(t, nil, "-endpoint", srv.Endpoint, "-access", srv.AccessKey, "-secret", "wrong",
		"-bucket", "src", "-dst-bucket", "dst")
	if status != 2 || !strings.Contains(stderr, "secret key") || !strings.Contains(stderr, "permission_denied") {
		t.Errorf("status %d, stderr %q; want 2 and the refusal", status, stderr)
	}
	// To a directory: the listing is refused with a permission error.
	dir := t.TempDir()
	status, _, stderr = runMain(t, nil, "-endpoint", srv.Endpoint, "-access", srv.AccessKey, "-secret", "wrong",
		"-bucket", "src", "-to", "dir", "-dst-dir", dir)
	if status != 1 || !strings.Contains(stderr, "access denied") || !strings.Contains(stderr, "permission_denied") {
		t.Errorf("status %d, stderr %q; want 1 and a permission error", status, stderr)
	}
	if got := bucketContents(t, srv.Client, "dst"); len(got) != 0 {
		t.Errorf("%d objects written with wrong credentials", len(got))
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("%d files written with wrong credentials", len(entries))
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"extra"},
		{"-from", "ftp"},
		{"-to", "tape"},
		{"-from", "cluster", "-to", "cluster"},
		{"-endpoint", "127.0.0.1:1"},
		{"-endpoint", "127.0.0.1:1", "-access", "a", "-secret", "b"},
		{"-workers", "0"},
		{"-rename", "txt"},
		{"-rename", ".txt:.txt"},
		{"-transform", "rot13"},
		{"-transform", "gzip", "-args", "11"},
	} {
		if status, _, _ := runMain(t, nil, args...); status != 2 {
			t.Errorf("migrate %q: status %d, want 2", args, status)
		}
	}
	if status, _, _ := runMain(t, nil, "-h"); status != 0 {
		t.Errorf("migrate -h: status %d, want 0", status)
	}
}
