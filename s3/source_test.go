package s3_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"iter"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/s3"
	"github.com/insitu-data/insitu/s3/s3test"
	"github.com/insitu-data/insitu/source/sourcetest"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"go.uber.org/goleak"
)

// bucketFor returns a bucket name, valid for S3, unique to the test t.
func bucketFor(t testing.TB) string {
	return fmt.Sprintf("t-%016x", xxhash.Sum64String(t.Name()))
}

// putAll stores objs in bucket with 16 concurrent PUTs.
func putAll(t testing.TB, c *minio.Client, bucket string, objs map[string][]byte) {
	t.Helper()
	keys := make(chan string)
	errs := make(chan error, len(objs))
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for k := range keys {
				b := objs[k]
				// An empty body as a streaming-signature chunked body is left
				// partly unread by versitygw; send it plainly.
				opts := minio.PutObjectOptions{DisableContentSha256: len(b) == 0}
				if _, err := c.PutObject(context.Background(), bucket, k, bytes.NewReader(b), int64(len(b)), opts); err != nil {
					errs <- fmt.Errorf("PutObject(%s): %w", k, err)
				}
			}
		})
	}
	for k := range objs {
		keys <- k
	}
	close(keys)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestSourceConformance(t *testing.T) {
	srv := s3test.Start(t)
	sourcetest.Run(t, sourcetest.Harness{
		Bucket: "conformance",
		MakeSource: func(t *testing.T, objs map[string][]byte) insitu.Source {
			// Each subtest gets a bucket of its own, so "conformance" is
			// not the bucket listed; Bucket is what the source reports.
			b := bucketFor(t)
			srv.MakeBucket(t, b)
			putAll(t, srv.Client, b, objs)
			return renamed{newSource(t, srv.Client, b, nil), "conformance"}
		},
	})
}

// renamed reports a source's objects under another bucket name, so that
// the conformance suite, which wants one bucket name, can run each subtest
// against a fresh bucket.
type renamed struct {
	*s3.Source
	bucket string
}

func (r renamed) Objects(ctx context.Context) iter.Seq2[insitu.Object, error] {
	return func(yield func(insitu.Object, error) bool) {
		for o, err := range r.Source.Objects(ctx) {
			if err == nil {
				o.Name.Bucket = r.bucket
			}
			if !yield(o, err) {
				return
			}
		}
	}
}

// countingTransport counts the listing requests that go through it.
type countingTransport struct {
	base  http.RoundTripper
	lists atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Query().Get("list-type") == "2" {
		c.lists.Add(1)
	}
	return c.base.RoundTrip(r)
}

func TestSourceListPages(t *testing.T) {
	if testing.Short() {
		t.Skip("lists 1,500 objects of a real versitygw in many ways; skipped under -short")
	}
	srv := s3test.Start(t)
	srv.MakeBucket(t, "many")
	const n = 1500
	objs := map[string][]byte{}
	var want []string
	for i := range n {
		k := fmt.Sprintf("d%d/obj-%04d.txt", i%3, i)
		if i%10 == 0 {
			k = fmt.Sprintf("d%d/obj-%04d.bin", i%3, i)
		}
		objs[k] = []byte(strings.Repeat("x", i%97))
		want = append(want, k)
	}
	slices.Sort(want)
	putAll(t, srv.Client, "many", objs)

	ct := &countingTransport{base: http.DefaultTransport.(*http.Transport).Clone()}
	client, err := minio.New(srv.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(srv.AccessKey, srv.SecretKey, ""),
		Region: s3test.Region, Transport: ct})
	if err != nil {
		t.Fatal(err)
	}
	list := func(opts *s3.SourceOptions) []string {
		t.Helper()
		var keys []string
		for o, err := range newSource(t, client, "many", opts).Objects(context.Background()) {
			if err != nil {
				t.Fatalf("listing %+v: %v", opts, err)
			}
			if o.Name.Bucket != "many" || o.Size != int64(len(objs[o.Name.Key])) || o.Owner != "" || o.Path != "" {
				t.Errorf("listed %+v; want bucket many, size %d, no owner, no path", o, len(objs[o.Name.Key]))
			}
			keys = append(keys, o.Name.Key)
		}
		return keys
	}
	for _, tc := range []struct {
		opts      *s3.SourceOptions
		wantPages int64
	}{{nil, 2}, {&s3.SourceOptions{PageSize: 100}, 15}, {&s3.SourceOptions{PageSize: 7}, 215}} {
		before := ct.lists.Load()
		if got := list(tc.opts); !slices.Equal(got, want) {
			t.Errorf("listing %+v: %d keys, want all %d in order", tc.opts, len(got), len(want))
		}
		if pages := ct.lists.Load() - before; pages != tc.wantPages {
			t.Errorf("listing %+v took %d requests, want %d", tc.opts, pages, tc.wantPages)
		}
	}

	// Filters and resumption.
	filter := func(f func(string) bool) []string {
		var out []string
		for _, k := range want {
			if f(k) {
				out = append(out, k)
			}
		}
		return out
	}
	checks := []struct {
		opts s3.SourceOptions
		want []string
	}{
		{s3.SourceOptions{Prefix: "d1/"}, filter(func(k string) bool { return strings.HasPrefix(k, "d1/") })},
		{s3.SourceOptions{Suffix: ".bin"}, filter(func(k string) bool { return strings.HasSuffix(k, ".bin") })},
		{s3.SourceOptions{Prefix: "d2/", Suffix: ".bin", PageSize: 50}, filter(func(k string) bool { return strings.HasPrefix(k, "d2/") && strings.HasSuffix(k, ".bin") })},
		{s3.SourceOptions{StartAfter: want[1234]}, want[1235:]},
		{s3.SourceOptions{StartAfter: want[n-1]}, nil},
		{s3.SourceOptions{Prefix: "nothing/"}, nil},
	}
	for _, c := range checks {
		if got := list(&c.opts); !slices.Equal(got, c.want) {
			t.Errorf("listing %+v: %d keys, want %d", c.opts, len(got), len(c.want))
		}
	}
}

func TestSourceEarlyBreakLeavesNothingRunning(t *testing.T) {
	srv := s3test.Start(t)
	srv.MakeBucket(t, "brk")
	// One client with a transport of our own does everything, so that its
	// idle connections can be closed before counting goroutines.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	client, err := minio.New(srv.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(srv.AccessKey, srv.SecretKey, ""),
		Region: s3test.Region, Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		if _, err := client.PutObject(context.Background(), "brk", fmt.Sprintf("k%02d", i), strings.NewReader("v"), 1, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	src := newSource(t, client, "brk", &s3.SourceOptions{PageSize: 5})
	tr.CloseIdleConnections()
	// Connection goroutines end asynchronously after CloseIdleConnections;
	// goleak retries until they are gone, or reports what is left.
	running := goleak.IgnoreCurrent()
	for i := range 50 {
		for o, err := range src.Objects(context.Background()) {
			if err != nil {
				t.Fatal(err)
			}
			if o.Name.Key != "k00" {
				t.Fatalf("listing %d: first key %q", i, o.Name.Key)
			}
			break
		}
	}
	tr.CloseIdleConnections()
	goleak.VerifyNone(t, running)
}

func TestSourceErrors(t *testing.T) {
	srv := s3test.Start(t)
	srv.MakeBucket(t, "errs")
	putAll(t, srv.Client, "errs", map[string][]byte{"a": []byte("aaa")})
	ctx := context.Background()

	firstErr := func(src *s3.Source) error {
		for _, err := range src.Objects(ctx) {
			if err != nil {
				return err
			}
		}
		return nil
	}
	t.Run("MissingBucket", func(t *testing.T) {
		src := newSource(t, srv.Client, "no-such-bucket", nil)
		if err := firstErr(src); !errors.Is(err, insitu.NotFound) {
			t.Errorf("listing a missing bucket: %v; want NotFound", err)
		}
		if _, err := src.Open(ctx, insitu.Object{Name: insitu.Name{Key: "a"}}); !errors.Is(err, insitu.NotFound) {
			t.Errorf("Open in a missing bucket: %v; want NotFound", err)
		}
		if _, err := src.Stat(ctx, insitu.Name{Key: "a"}); !errors.Is(err, insitu.NotFound) {
			t.Errorf("Stat in a missing bucket: %v; want NotFound", err)
		}
	})
	t.Run("WrongCredentials", func(t *testing.T) {
		for _, creds := range [][2]string{{srv.AccessKey, "wrong-secret"}, {"unknown-access-key", "wrong-secret"}} {
			bad, err := srv.NewClient(creds[0], creds[1])
			if err != nil {
				t.Fatal(err)
			}
			src := newSource(t, bad, "errs", nil)
			err = firstErr(src)
			if !errors.Is(err, insitu.PermissionDenied) || !strings.Contains(err.Error(), "access key") {
				t.Errorf("listing with credentials %q: %v; want PermissionDenied saying what to check", creds, err)
			}
			if _, err := src.Open(ctx, insitu.Object{Name: insitu.Name{Key: "a"}}); !errors.Is(err, insitu.PermissionDenied) {
				t.Errorf("Open with credentials %q: %v; want PermissionDenied", creds, err)
			}
			// versitygw answers an unknown access key with a 404, which a
			// HEAD carries without a body: Stat can only see a 403.
			if _, err := src.Stat(ctx, insitu.Name{Key: "a"}); creds[0] == srv.AccessKey && !errors.Is(err, insitu.PermissionDenied) {
				t.Errorf("Stat with credentials %q: %v; want PermissionDenied", creds, err)
			}
		}
	})
	t.Run("ConnectionRefused", func(t *testing.T) {
		client, err := minio.New(refusingEndpoint(t), &minio.Options{Creds: credentials.NewStaticV4("a", "b", ""),
			Region: s3test.Region, MaxRetries: 1})
		if err != nil {
			t.Fatal(err)
		}
		src := newSource(t, client, "errs", &s3.SourceOptions{ListRetries: -1})
		if err := firstErr(src); !errors.Is(err, insitu.Unavailable) {
			t.Errorf("listing from a refusing endpoint: %v; want Unavailable", err)
		}
		if _, err := src.Open(ctx, insitu.Object{Name: insitu.Name{Key: "a"}}); !errors.Is(err, insitu.Unavailable) {
			t.Errorf("Open from a refusing endpoint: %v; want Unavailable", err)
		}
	})
	t.Run("BadArguments", func(t *testing.T) {
		for i, tc := range []struct {
			client *minio.Client
			bucket string
			opts   *s3.SourceOptions
		}{
			{nil, "errs", nil},
			{srv.Client, "ab", nil},
			{srv.Client, "errs", &s3.SourceOptions{PageSize: -1}},
		} {
			if src, err := s3.NewSource(tc.client, tc.bucket, tc.opts); src != nil || !errors.Is(err, insitu.InvalidArgument) {
				t.Errorf("source %d: NewSource = %v, %v; want InvalidArgument", i, src, err)
			}
		}
		// A name that only the service refuses (minio-go allows upper
		// case, for the buckets of old).
		if err := firstErr(newSource(t, srv.Client, "Bad_Bucket", nil)); !errors.Is(err, insitu.InvalidArgument) {
			t.Errorf("listing bucket Bad_Bucket: %v; want InvalidArgument", err)
		}
		src := newSource(t, srv.Client, "errs", nil)
		for _, key := range []string{"../x", "a//b", "/abs", ""} {
			if _, err := src.Open(ctx, insitu.Object{Name: insitu.Name{Key: key}}); !errors.Is(err, insitu.InvalidArgument) {
				t.Errorf("Open(%q): %v; want InvalidArgument", key, err)
			}
		}
	})
	t.Run("Canceled", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		src := newSource(t, srv.Client, "errs", nil)
		if _, err := src.Open(cctx, insitu.Object{Name: insitu.Name{Key: "a"}}); err != context.Canceled {
			t.Errorf("Open with a canceled context: %v; want context.Canceled itself", err)
		}
	})
}

// refusingEndpoint returns a 127.0.0.1 address where nothing listens.
func refusingEndpoint(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestSourceStatAndOpen(t *testing.T) {
	srv := s3test.Start(t)
	srv.MakeBucket(t, "stat")
	data := sourcetest.Content("stat", 300_000)
	putAll(t, srv.Client, "stat", map[string][]byte{"x/y.bin": data})
	src := newSource(t, srv.Client, "stat", nil)
	obj, err := src.Stat(context.Background(), insitu.Name{Bucket: "other", Key: "x/y.bin"})
	if err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum(data) // the ETag of a single PUT
	if want := (insitu.Object{Name: insitu.Name{Bucket: "stat", Key: "x/y.bin"}, Size: int64(len(data)), Version: hex.EncodeToString(sum[:])}); obj != want {
		t.Errorf("Stat = %+v, want %+v", obj, want)
	}
	if _, err := src.Stat(context.Background(), insitu.Name{Key: "x/missing"}); !errors.Is(err, insitu.NotFound) {
		t.Errorf("Stat of a missing key: %v; want NotFound", err)
	}
	// Reading a prefix of the body and closing early is fine.
	rc, err := src.Open(context.Background(), obj)
	if err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 10)
	if _, err := io.ReadFull(rc, head); err != nil || !bytes.Equal(head, data[:10]) {
		t.Errorf("first 10 bytes: %x, %v; want %x", head, err, data[:10])
	}
	if err := rc.Close(); err != nil {
		t.Errorf("Close after a partial read: %v", err)
	}
}

// Keys that S3 allows but insitu names do not. versitygw's posix backend
// rewrites them ("a//b" becomes "a/b"), so they come from the fake.
func TestSourceInvalidKeysNamedAndSkipped(t *testing.T) {
	f := s3test.StartFake(t)
	bad := []string{"../x", "/abs", "a//b", "dir/", "x/./y", "x/../y", "."}
	good := []string{"a/b", "ok.txt", "z"}
	for _, k := range append(slices.Clone(bad), good...) {
		f.Put("mixed", k, []byte("data of "+k))
	}
	// Empty "folder" markers are not objects: neither listed nor errors.
	f.Put("mixed", "folder/", nil)
	f.Put("mixed", "a/", nil)
	var gotGood, gotBad []string
	for o, err := range newSource(t, f.Client, "mixed", &s3.SourceOptions{PageSize: 3}).Objects(context.Background()) {
		if err != nil {
			var e *insitu.Error
			if !errors.Is(err, insitu.InvalidArgument) || !errors.As(err, &e) || e.Name.Bucket != "mixed" {
				t.Errorf("listing: %v; want InvalidArgument naming the bucket and key", err)
				continue
			}
			if !strings.Contains(err.Error(), e.Name.Key) {
				t.Errorf("error %q does not show the key %q", err, e.Name.Key)
			}
			gotBad = append(gotBad, e.Name.Key)
			continue
		}
		gotGood = append(gotGood, o.Name.Key)
	}
	slices.Sort(bad)
	slices.Sort(gotBad)
	if !slices.Equal(gotGood, good) || !slices.Equal(gotBad, bad) {
		t.Errorf("listed %q and refused %q; want %q and %q", gotGood, gotBad, good, bad)
	}
}

func TestSourceListingRetriesUnavailable(t *testing.T) {
	f := s3test.StartFake(t)
	var want []string
	for i := range 25 {
		k := fmt.Sprintf("k%02d", i)
		f.Put("flaky", k, []byte(k))
		want = append(want, k)
	}
	collect := func(src *s3.Source) ([]string, error) {
		var keys []string
		for o, err := range src.Objects(context.Background()) {
			if err != nil {
				return keys, err
			}
			keys = append(keys, o.Name.Key)
		}
		return keys, nil
	}
	// The first page is served, then two requests fail: the listing
	// resumes after the last key it yielded, each key exactly once.
	src := newSource(t, f.Client, "flaky", &s3.SourceOptions{PageSize: 10})
	var keys []string
	for o, err := range src.Objects(context.Background()) {
		if err != nil {
			t.Fatalf("listing with 2 failed requests: %v", err)
		}
		keys = append(keys, o.Name.Key)
		if len(keys) == 10 {
			f.FailLists(2)
		}
	}
	if !slices.Equal(keys, want) {
		t.Errorf("keys %q; want %q", keys, want)
	}
	// With retries off, the failure ends the listing as Unavailable.
	f.FailLists(1)
	keys, err := collect(newSource(t, f.Client, "flaky", &s3.SourceOptions{ListRetries: -1}))
	if !errors.Is(err, insitu.Unavailable) || len(keys) != 0 {
		t.Errorf("listing with no retries: %q, %v; want nothing and Unavailable", keys, err)
	}
	// More failures than retries.
	f.FailLists(3)
	if _, err := collect(newSource(t, f.Client, "flaky", &s3.SourceOptions{ListRetries: 2})); !errors.Is(err, insitu.Unavailable) {
		t.Errorf("listing with 3 failures and 2 retries: %v; want Unavailable", err)
	}
	f.FailLists(0)
}

func TestSourceBodyCutShortIsUnavailable(t *testing.T) {
	f := s3test.StartFake(t)
	data := sourcetest.Content("cut", 1<<20)
	f.Put("cut", "obj", data)
	f.CutBodies(true)
	src := newSource(t, f.Client, "cut", nil)
	rc, err := src.Open(context.Background(), insitu.Object{Name: insitu.Name{Key: "obj"}})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	n, err := io.Copy(io.Discard, rc)
	if !errors.Is(err, insitu.Unavailable) || n >= int64(len(data)) {
		t.Errorf("reading a body cut short: %d bytes, %v; want fewer than %d and Unavailable", n, err, len(data))
	}
}
