package s3_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net"
	"path"
	"runtime"
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/s3"
	"github.com/insitu-data/insitu/s3/s3test"
	"github.com/insitu-data/insitu/sink/sinktest"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// readS3 reads bucket/key afresh from the server.
func readS3(c *minio.Client, bucket, key string) ([]byte, error) {
	body, _, _, err := minio.Core{Client: c}.GetObject(context.Background(), bucket, key, minio.GetObjectOptions{})
	if err != nil {
		if minio.ToErrorResponse(err).Code == "NoSuchKey" {
			return nil, &insitu.Error{Code: insitu.NotFound, Msg: key, Err: err}
		}
		return nil, err
	}
	defer body.Close()
	return io.ReadAll(body)
}

// keys lists every key in bucket.
func keys(t *testing.T, c *minio.Client, bucket string) []string {
	t.Helper()
	var out []string
	for o := range c.ListObjectsIter(context.Background(), bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatalf("listing %s: %v", bucket, o.Err)
		}
		out = append(out, o.Key)
	}
	return out
}

// uploads returns the multipart uploads in progress in bucket.
func uploads(t *testing.T, c *minio.Client, bucket string) []string {
	t.Helper()
	res, err := minio.Core{Client: c}.ListMultipartUploads(context.Background(), bucket, "", "", "", "", 1000)
	if err != nil {
		t.Fatalf("ListMultipartUploads(%s): %v", bucket, err)
	}
	var out []string
	for _, u := range res.Uploads {
		out = append(out, u.Key)
	}
	return out
}

func TestSinkConformance(t *testing.T) {
	srv := s3test.Start(t)
	sinktest.Run(t, sinktest.Harness{
		Bucket: "conformance",
		MakeSink: func(t *testing.T) insitu.Sink {
			b := bucketFor(t)
			srv.MakeBucket(t, b)
			return newSink(t, srv.Client, b, nil)
		},
		Read: func(t *testing.T, s insitu.Sink, name insitu.Name) ([]byte, error) {
			return readS3(srv.Client, s.(*s3.Sink).Bucket(), name.Key)
		},
	})
}

// gen is a reader of n deterministic pseudo-random bytes that holds no
// more than one Read's worth of them, and that cannot seek.
type gen struct {
	r *rand.PCG
	n int64
}

func newGen(seed uint64, n int64) *gen { return &gen{r: rand.NewPCG(seed, 7), n: n} }

func (g *gen) Read(p []byte) (int, error) {
	if g.n == 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), g.n)]
	for i := 0; i < len(p); i += 8 {
		v := g.r.Uint64()
		for j := i; j < min(i+8, len(p)); j++ {
			p[j] = byte(v)
			v >>= 8
		}
	}
	g.n -= int64(len(p))
	return len(p), nil
}

// hashOf returns the XXH64 and length of what r gives.
func hashOf(t *testing.T, r io.Reader) (uint64, int64) {
	t.Helper()
	h := xxhash.New()
	n, err := io.Copy(h, r)
	if err != nil {
		t.Fatal(err)
	}
	return h.Sum64(), n
}

func TestSinkUnknownSizeMultipart(t *testing.T) {
	srv := s3test.Start(t)
	srv.MakeBucket(t, "big")
	s := newSink(t, srv.Client, "big", &s3.SinkOptions{PartSize: 5 << 20})
	ctx := context.Background()
	for _, tc := range []struct {
		size      int64
		known     bool
		wantParts int // 0: a single PUT
	}{
		{5 << 20, false, 1}, // exactly one part, but the end is seen only after it
		{5 << 20, true, 0},  // a known size of exactly one part: the end is known, one PUT
		{10 << 20, true, 2},
		{5<<20 - 1, false, 0},
		{23<<20 + 3, false, 5},
		{23<<20 + 3, true, 5},
		{12 << 20, true, 3},
	} {
		name := insitu.Name{Bucket: "src", Key: fmt.Sprintf("out/%d-%v.bin", tc.size, tc.known)}
		size := int64(-1)
		if tc.known {
			size = tc.size
		}
		want, _ := hashOf(t, newGen(uint64(tc.size), tc.size))
		res, err := s.Put(ctx, name, newGen(uint64(tc.size), tc.size), size)
		if err != nil {
			t.Fatalf("Put(%s): %v", name, err)
		}
		if res.Name != name || res.Size != tc.size || res.Checksum != fmt.Sprintf("%016x", want) {
			t.Errorf("Put(%s) = %+v; want size %d, checksum %016x", name, res, tc.size, want)
		}
		info, err := srv.Client.StatObject(ctx, "big", name.Key, minio.StatObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// A multipart object's ETag ends in -<parts>.
		parts := 0
		if i := strings.LastIndexByte(info.ETag, '-'); i >= 0 {
			fmt.Sscan(info.ETag[i+1:], &parts)
		}
		if parts != tc.wantParts || info.Size != tc.size {
			t.Errorf("%s: stored %d bytes in %d parts (ETag %s); want %d bytes in %d", name.Key, info.Size, parts, info.ETag, tc.size, tc.wantParts)
		}
		body, _, _, err := minio.Core{Client: srv.Client}.GetObject(ctx, "big", name.Key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got, n := hashOf(t, body)
		body.Close()
		if got != want || n != tc.size {
			t.Errorf("%s: read back %d bytes (xxh64 %016x); want %d (%016x)", name.Key, n, got, tc.size, want)
		}
	}
	if u := uploads(t, srv.Client, "big"); len(u) != 0 {
		t.Errorf("uploads left in progress: %q", u)
	}
}

// failAfter gives n bytes of a generator, then fails.
type failAfter struct {
	r   io.Reader
	n   int64
	err error
}

func (f *failAfter) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, f.err
	}
	p = p[:min(int64(len(p)), f.n)]
	n, err := f.r.Read(p)
	f.n -= int64(n)
	return n, err
}

func TestSinkFailedMultipartLeavesNothing(t *testing.T) {
	srv := s3test.Start(t)
	srv.MakeBucket(t, "fail")
	s := newSink(t, srv.Client, "fail", &s3.SinkOptions{PartSize: 5 << 20})
	name := insitu.Name{Key: "half"}
	boom := errors.New("transform failed")

	// The input fails after two parts went up.
	_, err := s.Put(context.Background(), name, &failAfter{r: newGen(1, 1<<30), n: 12 << 20, err: boom}, -1)
	if !errors.Is(err, boom) {
		t.Errorf("Put from a reader failing after 12 MiB: %v; want its error", err)
	}
	// ctx is canceled after two parts went up.
	ctx, cancel := context.WithCancel(context.Background())
	r := &cancelAfter{r: newGen(2, 1<<30), n: 11 << 20, cancel: cancel}
	_, err = s.Put(ctx, name, r, -1)
	cancel()
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Put canceled after 11 MiB: %v; want context.Canceled", err)
	}
	// A known size the input does not match, found after parts went up.
	_, err = s.Put(context.Background(), name, newGen(3, 11<<20), 12<<20)
	if !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("Put of 11 MiB with size 12 MiB: %v; want InvalidArgument", err)
	}
	_, err = s.Put(context.Background(), name, newGen(3, 13<<20), 12<<20)
	if !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("Put of 13 MiB with size 12 MiB: %v; want InvalidArgument", err)
	}
	if k := keys(t, srv.Client, "fail"); len(k) != 0 {
		t.Errorf("objects after failed Puts: %q", k)
	}
	if u := uploads(t, srv.Client, "fail"); len(u) != 0 {
		t.Errorf("multipart uploads left after failed Puts: %q", u)
	}
}

// cancelAfter gives bytes and cancels its context once n were given.
type cancelAfter struct {
	r      io.Reader
	n      int64
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n -= int64(n)
	if c.n <= 0 {
		c.cancel()
	}
	return n, err
}

func TestSinkContentTypeAndPrefix(t *testing.T) {
	srv := s3test.Start(t)
	srv.MakeBucket(t, "types")
	ctx := context.Background()
	s := newSink(t, srv.Client, "types", &s3.SinkOptions{Prefix: "out/"})
	for _, key := range []string{"a.wav", "b/c.json", "d.html", "noext"} {
		if _, err := s.Put(ctx, insitu.Name{Key: key}, strings.NewReader("x"), 1); err != nil {
			t.Fatal(err)
		}
		info, err := srv.Client.StatObject(ctx, "types", "out/"+key, minio.StatObjectOptions{})
		if err != nil {
			t.Fatalf("the object is not at out/%s: %v", key, err)
		}
		want := mime.TypeByExtension(path.Ext(key))
		if want == "" {
			want = "application/octet-stream"
		}
		if info.ContentType != want {
			t.Errorf("%s: Content-Type %q, want %q", key, info.ContentType, want)
		}
		if obj, err := s.Stat(ctx, insitu.Name{Key: key}); err != nil || obj.Size != 1 {
			t.Errorf("Stat(%s) = %+v, %v", key, obj, err)
		}
	}
	// A function of our own, for a multipart upload too.
	s = newSink(t, srv.Client, "types", &s3.SinkOptions{PartSize: 5 << 20,
		ContentType: func(n insitu.Name) string { return "application/x-" + n.Key }})
	for _, size := range []int64{10, 6 << 20} {
		key := fmt.Sprint("custom", size)
		if _, err := s.Put(ctx, insitu.Name{Key: key}, newGen(1, size), -1); err != nil {
			t.Fatal(err)
		}
		info, err := srv.Client.StatObject(ctx, "types", key, minio.StatObjectOptions{})
		if err != nil || info.ContentType != "application/x-"+key {
			t.Errorf("%s: Content-Type %q, %v; want application/x-%s", key, info.ContentType, err, key)
		}
	}
	if got := keys(t, srv.Client, "types"); len(got) != 6 {
		t.Errorf("stored %q; want 6 objects", got)
	}
}

func TestSinkErrors(t *testing.T) {
	srv := s3test.Start(t)
	srv.MakeBucket(t, "errs")
	ctx := context.Background()
	name := insitu.Name{Key: "obj"}

	t.Run("MissingBucket", func(t *testing.T) {
		s := newSink(t, srv.Client, "no-such-bucket", &s3.SinkOptions{PartSize: 5 << 20})
		for _, size := range []int64{3, 6 << 20} {
			if _, err := s.Put(ctx, name, newGen(1, size), -1); !errors.Is(err, insitu.NotFound) {
				t.Errorf("Put of %d bytes in a missing bucket: %v; want NotFound", size, err)
			}
		}
		if _, err := s.Stat(ctx, name); !errors.Is(err, insitu.NotFound) {
			t.Errorf("Stat in a missing bucket: %v; want NotFound", err)
		}
	})
	t.Run("WrongCredentials", func(t *testing.T) {
		for _, creds := range [][2]string{{srv.AccessKey, "wrong-secret"}, {"unknown-access-key", "wrong-secret"}} {
			bad, err := srv.NewClient(creds[0], creds[1])
			if err != nil {
				t.Fatal(err)
			}
			s := newSink(t, bad, "errs", &s3.SinkOptions{PartSize: 5 << 20})
			for _, size := range []int64{3, 6 << 20} {
				_, err := s.Put(ctx, name, newGen(1, size), -1)
				if !errors.Is(err, insitu.PermissionDenied) || !strings.Contains(err.Error(), "secret key") {
					t.Errorf("Put of %d bytes with credentials %q: %v; want PermissionDenied saying what to check", size, creds, err)
				}
			}
		}
		if k := keys(t, srv.Client, "errs"); len(k) != 0 {
			t.Errorf("objects written with wrong credentials: %q", k)
		}
		if u := uploads(t, srv.Client, "errs"); len(u) != 0 {
			t.Errorf("uploads started with wrong credentials: %q", u)
		}
	})
	t.Run("ConnectionRefused", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		client, err := minio.New(addr, &minio.Options{Creds: credentials.NewStaticV4("a", "b", ""), Region: s3test.Region, MaxRetries: 1})
		if err != nil {
			t.Fatal(err)
		}
		s := newSink(t, client, "errs", nil)
		if _, err := s.Put(ctx, name, strings.NewReader("abc"), 3); !errors.Is(err, insitu.Unavailable) {
			t.Errorf("Put to a refusing endpoint: %v; want Unavailable", err)
		}
		if _, err := s.Stat(ctx, name); !errors.Is(err, insitu.Unavailable) {
			t.Errorf("Stat at a refusing endpoint: %v; want Unavailable", err)
		}
	})
	t.Run("BadArguments", func(t *testing.T) {
		for i, tc := range []struct {
			client *minio.Client
			bucket string
			opts   *s3.SinkOptions
		}{
			{nil, "errs", nil},
			{srv.Client, "ab", nil},
			{srv.Client, "errs", &s3.SinkOptions{PartSize: 1 << 20}},
			{srv.Client, "errs", &s3.SinkOptions{PartSize: 6 << 30}},
		} {
			if s, err := s3.NewSink(tc.client, tc.bucket, tc.opts); s != nil || !errors.Is(err, insitu.InvalidArgument) {
				t.Errorf("sink %d: NewSink = %v, %v; want InvalidArgument", i, s, err)
			}
		}
		// A name that only the service refuses (minio-go allows upper
		// case, for the buckets of old).
		s := newSink(t, srv.Client, "Bad_Bucket", nil)
		if _, err := s.Put(ctx, name, strings.NewReader("x"), 1); !errors.Is(err, insitu.InvalidArgument) {
			t.Errorf("Put in bucket Bad_Bucket: %v; want InvalidArgument", err)
		}
		s = newSink(t, srv.Client, "errs", nil)
		if _, err := s.Put(ctx, name, strings.NewReader("x"), -2); !errors.Is(err, insitu.InvalidArgument) {
			t.Errorf("Put with size -2: %v; want InvalidArgument", err)
		}
		// A prefix that makes keys invalid.
		s = newSink(t, srv.Client, "errs", &s3.SinkOptions{Prefix: "/abs/"})
		if _, err := s.Put(ctx, name, strings.NewReader("x"), 1); !errors.Is(err, insitu.InvalidArgument) {
			t.Errorf("Put with prefix /abs/: %v; want InvalidArgument", err)
		}
	})
}

// Small objects of unknown size hold only what they need, not a whole
// 16 MiB part each.
func TestSinkSmallPutsAllocateLittle(t *testing.T) {
	srv := s3test.Start(t)
	srv.MakeBucket(t, "small")
	s := newSink(t, srv.Client, "small", nil)
	data := bytes.Repeat([]byte("z"), 1000)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	errs := make(chan error, 200)
	sem := make(chan struct{}, 32)
	for i := range 200 {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			_, err := s.Put(context.Background(), insitu.Name{Key: fmt.Sprintf("s/%03d", i)}, bytes.NewReader(data), -1)
			errs <- err
		}()
	}
	for range 200 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	// 200 Puts of whole parts would allocate 3.2 GiB.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 100<<20 {
		t.Errorf("200 Puts of 1,000 bytes allocated %d MiB", alloc>>20)
	}
	if k := keys(t, srv.Client, "small"); len(k) != 200 {
		t.Errorf("%d objects stored, want 200", len(k))
	}
}

// minio-go retries a PUT that got a 503 by seeking the body back to its
// start: the bytes the service finally stores are the right ones.
func TestSinkRetriedPutSendsTheSameBytes(t *testing.T) {
	f := s3test.StartFake(t)
	f.MakeBucket("retry")
	client, err := minio.New(f.Endpoint, &minio.Options{Creds: credentials.NewStaticV4("a", "b", ""), Region: s3test.Region, MaxRetries: 4})
	if err != nil {
		t.Fatal(err)
	}
	s := newSink(t, client, "retry", nil)
	data := sinktest.Content("retry", 1<<20+7) // several chunks
	f.FailPuts(2)
	res, err := s.Put(context.Background(), insitu.Name{Key: "obj"}, bytes.NewReader(data), -1)
	if err != nil {
		t.Fatalf("Put with 2 failed attempts and 4 tries: %v", err)
	}
	if got, _ := f.Object("retry", "obj"); !bytes.Equal(got, data) || res.Size != int64(len(data)) {
		t.Errorf("stored %d bytes (xxh64 %016x), want %d (%016x)", len(got), xxhash.Sum64(got), len(data), xxhash.Sum64(data))
	}
	if n := f.Puts(); n != 3 {
		t.Errorf("%d PUT requests, want 3", n)
	}

	// With minio-go's retries off, the 503 is Unavailable, for the runner
	// to retry.
	f.FailPuts(1)
	if _, err := newSink(t, f.Client, "retry", nil).Put(context.Background(), insitu.Name{Key: "obj2"}, bytes.NewReader(data), -1); !errors.Is(err, insitu.Unavailable) {
		t.Errorf("Put answered 503: %v; want Unavailable", err)
	}
	if _, ok := f.Object("retry", "obj2"); ok {
		t.Error("a failed Put stored the object")
	}
}
