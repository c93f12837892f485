package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/pipeline"
	"github.com/insitu-data/insitu/s3"
	"github.com/insitu-data/insitu/s3/s3test"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// upper is a streaming transform: ASCII lower case to upper case.
var upper = insitu.TransformFunc(func(_ context.Context, in *insitu.Input, out io.Writer) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := in.Body.Read(buf)
		b := buf[:n]
		for i, c := range b {
			if 'a' <= c && c <= 'z' {
				b[i] = c - 32
			}
		}
		if _, werr := out.Write(b); werr != nil {
			return werr
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
})

// content is the text of object i.
func content(i int) string {
	return fmt.Sprintf("object %d: %s\n", i, strings.Repeat("abc", i%50))
}

// seed stores n small objects under "in/" in bucket, with 16 workers.
func seed(t *testing.T, c *minio.Client, bucket string, n int) {
	t.Helper()
	s, err := s3.NewSink(c, bucket, nil)
	if err != nil {
		t.Fatal(err)
	}
	idx := make(chan int)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := range idx {
				b := content(i)
				_, err := s.Put(context.Background(), insitu.Name{Key: fmt.Sprintf("in/%05d.txt", i)}, strings.NewReader(b), int64(len(b)))
				if err != nil {
					errs <- err
				}
			}
		})
	}
	for i := range n {
		idx <- i
	}
	close(idx)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// stored returns every object of bucket, key → bytes.
func stored(t *testing.T, c *minio.Client, bucket string) map[string]string {
	t.Helper()
	out := map[string]string{}
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
		out[o.Key] = string(b)
	}
	return out
}

func TestClientSide1500Objects(t *testing.T) {
	if testing.Short() {
		t.Skip("1500 objects through versitygw: a long test")
	}
	srv := s3test.Start(t)
	srv.MakeBucket(t, "src")
	srv.MakeBucket(t, "dst")
	const n = 1500
	seed(t, srv.Client, "src", n)
	// Objects outside the prefix are not touched.
	if _, err := srv.Client.PutObject(context.Background(), "src", "other/x.txt", strings.NewReader("x"), 1, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}

	// 24 workers by default: 24 transforms are in flight at once.
	var inflight, peak atomic.Int64
	all := make(chan struct{})
	var once sync.Once
	tr := insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		if v := inflight.Add(1); v >= DefaultWorkers {
			once.Do(func() { close(all) })
		}
		defer inflight.Add(-1)
		for {
			p := peak.Load()
			if v := inflight.Load(); v <= p || peak.CompareAndSwap(p, v) {
				break
			}
		}
		select {
		case <-all:
		case <-time.After(10 * time.Second):
			return errors.New("24 transforms were never in flight together")
		}
		return upper.Transform(ctx, in, out)
	})
	rep, err := ClientSide(context.Background(), srv.Client, "src", "dst", "in/", tr,
		&Options{Options: pipeline.Options{Rename: pipeline.ReplaceExt(".txt", ".TXT")}})
	if err != nil {
		t.Fatalf("ClientSide: %v\n%s", err, rep)
	}
	if rep.Listed != n || rep.Transformed != n || rep.Failed != 0 || rep.Skipped != 0 {
		t.Errorf("report: %s", rep)
	}
	if p := peak.Load(); p != DefaultWorkers {
		t.Errorf("at most %d transforms in flight, want %d", p, DefaultWorkers)
	}
	got := stored(t, srv.Client, "dst")
	if len(got) != n {
		t.Fatalf("%d objects in dst, want %d", len(got), n)
	}
	var in, out int64
	for i := range n {
		want := strings.ToUpper(content(i))
		key := fmt.Sprintf("in/%05d.TXT", i)
		if got[key] != want {
			t.Fatalf("dst/%s = %q, want %q", key, got[key], want)
		}
		in += int64(len(content(i)))
		out += int64(len(want))
	}
	if rep.BytesIn != in || rep.BytesOut != out {
		t.Errorf("report counts %d bytes in, %d out; want %d and %d", rep.BytesIn, rep.BytesOut, in, out)
	}
}

func TestClientSideResumeMovesOnlyWhatIsLeft(t *testing.T) {
	srv := s3test.Start(t)
	srv.MakeBucket(t, "src")
	srv.MakeBucket(t, "dst")
	const n = 300
	seed(t, srv.Client, "src", n)

	// The first run is canceled by the transform of the 101st object. With
	// one worker, no PUT is in flight then: a PUT canceled after its body
	// went out may still be completed by the server, a moment later.
	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int64
	canceling := insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		if calls.Add(1) == 101 {
			cancel()
			return ctx.Err()
		}
		return upper.Transform(ctx, in, out)
	})
	rep1, err := ClientSide(ctx, srv.Client, "src", "dst", "", canceling, &Options{Options: pipeline.Options{Workers: 1}})
	cancel()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("first run: %v; want context.Canceled\n%s", err, rep1)
	}
	first := stored(t, srv.Client, "dst")
	if len(first) != 100 || rep1.Transformed != 100 {
		t.Fatalf("the canceled run stored %d of %d objects; want 100\n%s", len(first), n, rep1)
	}
	for k, v := range first {
		if !strings.HasPrefix(k, "in/") || v != strings.ToUpper(v) {
			t.Fatalf("partial output after the canceled run: %s = %q", k, v)
		}
	}

	// The second run skips what is there, and moves only the rest.
	var opened atomic.Int64
	counting := insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		opened.Add(1)
		return upper.Transform(ctx, in, out)
	})
	rep2, err := ClientSide(context.Background(), srv.Client, "src", "dst", "", counting,
		&Options{Options: pipeline.Options{Workers: 8, SkipExisting: true}})
	if err != nil {
		t.Fatalf("resumed run: %v", err)
	}
	left := int64(n - len(first))
	if rep2.Listed != n || rep2.Skipped != int64(len(first)) || rep2.Transformed != left || opened.Load() != left {
		t.Errorf("resumed run: %d transformed (%d transform calls), %d skipped of %d; want %d transformed, %d skipped",
			rep2.Transformed, opened.Load(), rep2.Skipped, rep2.Listed, left, len(first))
	}
	final := stored(t, srv.Client, "dst")
	if len(final) != n {
		t.Fatalf("%d objects after the resumed run, want %d", len(final), n)
	}
	for i := range n {
		if k := fmt.Sprintf("in/%05d.txt", i); final[k] != strings.ToUpper(content(i)) {
			t.Fatalf("dst/%s = %q", k, final[k])
		}
	}
	// A third run has nothing left to do.
	rep3, err := ClientSide(context.Background(), srv.Client, "src", "dst", "", counting,
		&Options{Options: pipeline.Options{SkipExisting: true}})
	if err != nil || rep3.Skipped != n || rep3.Transformed != 0 {
		t.Errorf("third run: %v\n%s", err, rep3)
	}
}

func TestClientSideWrongCredentialsWriteNothing(t *testing.T) {
	srv := s3test.Start(t)
	srv.MakeBucket(t, "src")
	srv.MakeBucket(t, "dst")
	seed(t, srv.Client, "src", 20)
	bad, err := srv.NewClient(srv.AccessKey, "wrong-secret")
	if err != nil {
		t.Fatal(err)
	}
	// Wrong credentials for the source: the listing is refused.
	rep, err := ClientSide(context.Background(), bad, "src", "dst", "", upper, nil)
	if !errors.Is(err, insitu.PermissionDenied) || !strings.Contains(err.Error(), "secret key") {
		t.Errorf("ClientSide with a wrong secret: %v; want PermissionDenied saying what to check", err)
	}
	if rep.Transformed != 0 {
		t.Errorf("report: %s", rep)
	}
	// Wrong credentials for the destination only: every PUT is refused.
	rep, err = ClientSide(context.Background(), srv.Client, "src", "dst", "", upper,
		&Options{DstClient: bad, Options: pipeline.Options{ContinueOnError: true}})
	if err != nil || rep.Failed != 20 || rep.Transformed != 0 {
		t.Errorf("ClientSide with a wrong destination secret: %v\n%s", err, rep)
	}
	for _, f := range rep.Failures {
		if f.Code != insitu.PermissionDenied {
			t.Errorf("failure %s; want permission_denied", f)
		}
	}
	if got := stored(t, srv.Client, "dst"); len(got) != 0 {
		t.Errorf("%d objects written with wrong credentials", len(got))
	}
}

func TestClientSideBadBucketsAndEndpoints(t *testing.T) {
	srv := s3test.Start(t)
	srv.MakeBucket(t, "src")
	seed(t, srv.Client, "src", 3)
	ctx := context.Background()
	if _, err := ClientSide(ctx, srv.Client, "no-such-bucket", "src", "", upper, nil); !errors.Is(err, insitu.NotFound) {
		t.Errorf("missing source bucket: %v; want NotFound", err)
	}
	rep, err := ClientSide(ctx, srv.Client, "src", "no-such-bucket", "", upper, nil)
	if !errors.Is(err, insitu.NotFound) {
		t.Errorf("missing destination bucket: %v; want NotFound\n%s", err, rep)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	refusing, err := minio.New(addr, &minio.Options{Creds: credentials.NewStaticV4("a", "b", ""), Region: s3test.Region, MaxRetries: 1})
	if err != nil {
		t.Fatal(err)
	}
	rep, err = ClientSide(ctx, refusing, "src", "dst", "", upper, nil)
	if !errors.Is(err, insitu.Unavailable) {
		t.Errorf("refusing source endpoint: %v; want Unavailable\n%s", err, rep)
	}
	// A refusing destination: each object is retried, then fails.
	rep, err = ClientSide(ctx, srv.Client, "src", "dst", "", upper, &Options{DstClient: refusing,
		Options: pipeline.Options{ContinueOnError: true, Retries: 2, Backoff: time.Millisecond}})
	if err != nil || rep.Failed != 3 {
		t.Errorf("refusing destination endpoint: %v\n%s", err, rep)
	}
	for _, f := range rep.Failures {
		if f.Code != insitu.Unavailable {
			t.Errorf("failure %s; want unavailable", f)
		}
	}
}

// gen is a reader of n pseudo-random bytes that never holds more than one
// Read's worth of them.
type gen struct {
	r *rand.PCG
	n int64
}

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

// xor flips every bit of the stream, 32 KiB at a time.
var xor = insitu.TransformFunc(func(_ context.Context, in *insitu.Input, out io.Writer) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := in.Body.Read(buf)
		for i := range buf[:n] {
			buf[i] ^= 0xFF
		}
		if _, werr := out.Write(buf[:n]); werr != nil {
			return werr
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
})

// rss returns the process's resident set size from /proc/self/status.
func rss(t *testing.T) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status to measure memory: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}

// A 200 MiB object goes through a transform, S3 to S3, with the process's
// memory growing far less than the object's size: nothing buffers it.
func TestClientSide200MiBStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 400 MiB through versitygw")
	}
	srv := s3test.Start(t)
	srv.MakeBucket(t, "src")
	srv.MakeBucket(t, "dst")
	const size = 200 << 20
	ctx := context.Background()

	// Seed it from a generator, size unknown: a multipart upload.
	src, err := s3.NewSink(srv.Client, "src", nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := src.Put(ctx, insitu.Name{Key: "big.bin"}, &gen{r: rand.NewPCG(1, 2), n: size}, -1)
	if err != nil {
		t.Fatal(err)
	}
	if res.Size != size {
		t.Fatalf("seeded %d bytes, want %d", res.Size, size)
	}
	wantH := xxhash.New()
	if _, err := io.Copy(wantH, &xorReader{&gen{r: rand.NewPCG(1, 2), n: size}}); err != nil {
		t.Fatal(err)
	}

	runtime.GC()
	debug.FreeOSMemory()
	before := rss(t)
	var peak atomic.Int64
	peak.Store(before)
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if r := rss(t); r > peak.Load() {
					peak.Store(r)
				}
			}
		}
	}()
	rep, err := ClientSide(ctx, srv.Client, "src", "dst", "", xor, nil)
	close(stop)
	<-sampled
	if err != nil {
		t.Fatalf("ClientSide: %v", err)
	}
	if rep.Transformed != 1 || rep.BytesIn != size || rep.BytesOut != size {
		t.Errorf("report: %s", rep)
	}
	growth := peak.Load() - before
	t.Logf("RSS %d MiB before, peak %d MiB: growth %d MiB for a %d MiB object", before>>20, peak.Load()>>20, growth>>20, size>>20)
	if growth >= 100<<20 {
		t.Errorf("RSS grew by %d MiB moving a %d MiB object; want < 100 MiB", growth>>20, size>>20)
	}

	body, _, _, err := minio.Core{Client: srv.Client}.GetObject(ctx, "dst", "big.bin", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	gotH := xxhash.New()
	n, err := io.Copy(gotH, body)
	if err != nil || n != size || gotH.Sum64() != wantH.Sum64() {
		t.Errorf("dst/big.bin: %d bytes, xxh64 %016x, %v; want %d bytes, %016x", n, gotH.Sum64(), err, size, wantH.Sum64())
	}
}

type xorReader struct{ r io.Reader }

func (x *xorReader) Read(p []byte) (int, error) {
	n, err := x.r.Read(p)
	for i := range p[:n] {
		p[i] ^= 0xFF
	}
	return n, err
}
