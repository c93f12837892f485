package s3_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/s3"
	"github.com/insitu-data/insitu/s3/s3test"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// This file checks that every way a multipart Put can fail aborts its
// upload, against a real versitygw. Faults are injected by an
// http.RoundTripper in front of the client's real connections: it cuts or
// refuses one kind of request, as a network or a crash would.

// roundTripFunc is an http.RoundTripper made of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// request kinds of the multipart API, told apart by method and query.
func isCreate(r *http.Request) bool {
	return r.Method == http.MethodPost && r.URL.Query().Has("uploads")
}
func isPart(r *http.Request) bool {
	return r.Method == http.MethodPut && r.URL.Query().Has("partNumber")
}
func isComplete(r *http.Request) bool {
	return r.Method == http.MethodPost && r.URL.Query().Has("uploadId")
}
func isAbort(r *http.Request) bool {
	return r.Method == http.MethodDelete && r.URL.Query().Has("uploadId")
}

// errReset is what a connection reset by the peer looks like.
var errReset = &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}

// faultyClient returns a client of srv whose requests go through fault,
// which gets the request and the real round trip; minio-go's own retries
// are off.
func faultyClient(t *testing.T, srv *s3test.Server, fault func(r *http.Request, next http.RoundTripper) (*http.Response, error)) *minio.Client {
	t.Helper()
	base, err := minio.DefaultTransport(false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(base.CloseIdleConnections)
	c, err := minio.New(srv.Endpoint, &minio.Options{
		Creds:      credentials.NewStaticV4(srv.AccessKey, srv.SecretKey, ""),
		Region:     s3test.Region,
		MaxRetries: 1,
		Transport:  roundTripFunc(func(r *http.Request) (*http.Response, error) { return fault(r, base) }),
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// checkNothingLeft fails t if bucket holds an object or an upload.
func checkNothingLeft(t *testing.T, c *minio.Client, bucket string) {
	t.Helper()
	if k := keys(t, c, bucket); len(k) != 0 {
		t.Errorf("objects after a failed Put: %q", k)
	}
	if u := uploads(t, c, bucket); len(u) != 0 {
		t.Errorf("multipart uploads left after a failed Put: %q", u)
	}
}

// onFirstRead calls f at the first Read of its body, then reads on.
type onFirstRead struct {
	io.ReadCloser
	f func()
}

func (o *onFirstRead) Read(p []byte) (int, error) {
	if o.f != nil {
		o.f()
		o.f = nil
	}
	return o.ReadCloser.Read(p)
}

// ctx is canceled while the second part is on the wire: the part's request
// is cut, and the upload is aborted all the same.
func TestSinkCanceledMidPartAborts(t *testing.T) {
	if testing.Short() {
		t.Skip("uploads 10 MiB to versitygw")
	}
	t.Parallel()
	srv := s3test.Start(t)
	srv.MakeBucket(t, "midpart")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	parts := 0
	c := faultyClient(t, srv, func(r *http.Request, next http.RoundTripper) (*http.Response, error) {
		if isPart(r) {
			if parts++; parts == 2 && r.Body != nil {
				r.Body = &onFirstRead{ReadCloser: r.Body, f: cancel}
			}
		}
		return next.RoundTrip(r)
	})
	s := newSink(t, c, "midpart", &s3.SinkOptions{PartSize: 5 << 20})
	_, err := s.Put(ctx, insitu.Name{Key: "obj"}, newGen(1, 12<<20), -1)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Put canceled while part 2 was sent: %v; want context.Canceled", err)
	}
	if parts != 2 {
		t.Errorf("%d part requests; want 2 (the cancel came in the second)", parts)
	}
	checkNothingLeft(t, srv.Client, "midpart")
}

// A failed CompleteMultipartUpload aborts the upload too.
func TestSinkFailedCompleteAborts(t *testing.T) {
	if testing.Short() {
		t.Skip("uploads 6 MiB to versitygw")
	}
	t.Parallel()
	srv := s3test.Start(t)
	srv.MakeBucket(t, "complete")
	c := faultyClient(t, srv, func(r *http.Request, next http.RoundTripper) (*http.Response, error) {
		if isComplete(r) {
			return nil, errReset
		}
		return next.RoundTrip(r)
	})
	s := newSink(t, c, "complete", &s3.SinkOptions{PartSize: 5 << 20})
	_, err := s.Put(context.Background(), insitu.Name{Key: "obj"}, newGen(1, 6<<20), -1)
	if !errors.Is(err, insitu.Unavailable) {
		t.Errorf("Put whose completion was reset: %v; want Unavailable", err)
	}
	checkNothingLeft(t, srv.Client, "complete")
}

// panicking gives n bytes of r, then panics.
type panicking struct {
	r io.Reader
	n int64
}

var errPanic = errors.New("the input panicked")

func (p *panicking) Read(b []byte) (int, error) {
	if p.n <= 0 {
		panic(errPanic)
	}
	b = b[:min(int64(len(b)), p.n)]
	n, err := p.r.Read(b)
	p.n -= int64(n)
	return n, err
}

// An input that panics after a part went up: the panic goes on up to the
// caller (an HTTP server that recovers it, say), and the upload is
// aborted on the way.
func TestSinkPanickingInputAborts(t *testing.T) {
	if testing.Short() {
		t.Skip("uploads 5 MiB to versitygw")
	}
	t.Parallel()
	srv := s3test.Start(t)
	srv.MakeBucket(t, "panic")
	s := newSink(t, srv.Client, "panic", &s3.SinkOptions{PartSize: 5 << 20})
	func() {
		defer func() {
			if r := recover(); r != errPanic {
				t.Errorf("Put of a panicking input: recovered %v; want the input's panic", r)
			}
		}()
		s.Put(context.Background(), insitu.Name{Key: "obj"}, &panicking{r: newGen(1, 1<<30), n: 6 << 20}, -1)
	}()
	checkNothingLeft(t, srv.Client, "panic")
}

// When the abort itself fails, the Put's error keeps its cause and says
// that the upload is left behind, with its ID; Sweep removes it.
func TestSinkFailedAbortIsReported(t *testing.T) {
	if testing.Short() {
		t.Skip("uploads 5 MiB to versitygw")
	}
	t.Parallel()
	srv := s3test.Start(t)
	srv.MakeBucket(t, "noabort")
	aborts := 0
	c := faultyClient(t, srv, func(r *http.Request, next http.RoundTripper) (*http.Response, error) {
		if isAbort(r) {
			aborts++
			return nil, errReset
		}
		return next.RoundTrip(r)
	})
	s := newSink(t, c, "noabort", &s3.SinkOptions{PartSize: 5 << 20})
	boom := errors.New("transform failed")
	_, err := s.Put(context.Background(), insitu.Name{Key: "obj"}, &failAfter{r: newGen(1, 1<<30), n: 6 << 20, err: boom}, -1)
	if !errors.Is(err, boom) || err == nil || !strings.Contains(err.Error(), "left behind") {
		t.Errorf("Put whose abort failed: %v; want the input's error, saying the upload is left behind", err)
	}
	// A context error, which comes bare otherwise, gets the note too.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err = s.Put(ctx, insitu.Name{Key: "obj2"}, &cancelAfter{r: newGen(2, 1<<30), n: 6 << 20, cancel: cancel}, -1)
	if !errors.Is(err, context.Canceled) || err == nil || !strings.Contains(err.Error(), "left behind") {
		t.Errorf("canceled Put whose abort failed: %v; want context.Canceled, saying the upload is left behind", err)
	}
	if left := uploads(t, srv.Client, "noabort"); aborts != 2 || len(left) != 2 {
		t.Fatalf("%d aborts tried, uploads left %q; want 2 and 2", aborts, left)
	}
	n, err := newSink(t, srv.Client, "noabort", nil).Sweep(context.Background(), 0)
	if n != 2 || err != nil {
		t.Errorf("Sweep = %d, %v; want 2, nil", n, err)
	}
	if u := uploads(t, srv.Client, "noabort"); len(u) != 0 {
		t.Errorf("uploads left after Sweep: %q", u)
	}
}

// A CreateMultipartUpload whose answer is lost leaves an upload the Put
// never knew the ID of: only Sweep can remove it.
func TestSinkLostCreateIsSwept(t *testing.T) {
	if testing.Short() {
		t.Skip("uploads 5 MiB to versitygw")
	}
	t.Parallel()
	srv := s3test.Start(t)
	srv.MakeBucket(t, "lost")
	c := faultyClient(t, srv, func(r *http.Request, next http.RoundTripper) (*http.Response, error) {
		resp, err := next.RoundTrip(r)
		if err == nil && isCreate(r) {
			resp.Body.Close()
			return nil, errReset
		}
		return resp, err
	})
	s := newSink(t, c, "lost", &s3.SinkOptions{Prefix: "out/", PartSize: 5 << 20})
	if _, err := s.Put(context.Background(), insitu.Name{Key: "obj"}, newGen(1, 6<<20), -1); !errors.Is(err, insitu.Unavailable) {
		t.Errorf("Put whose CreateMultipartUpload answer was lost: %v; want Unavailable", err)
	}
	if u := uploads(t, srv.Client, "lost"); len(u) != 1 || u[0] != "out/obj" {
		t.Fatalf("uploads %q; want the one the lost answer started, out/obj", u)
	}
	if n, err := newSink(t, srv.Client, "lost", &s3.SinkOptions{Prefix: "out/"}).Sweep(context.Background(), 0); n != 1 || err != nil {
		t.Errorf("Sweep = %d, %v; want 1, nil", n, err)
	}
	checkNothingLeft(t, srv.Client, "lost")
}
