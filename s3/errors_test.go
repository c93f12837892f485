package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/insitu-data/insitu"
	"github.com/minio/minio-go/v7"
)

func resp(code string, status int) error {
	return minio.ErrorResponse{Code: code, Message: code + " message", StatusCode: status}
}

func TestCode(t *testing.T) {
	refused := &url.Error{Op: "Get", URL: "http://127.0.0.1:1/b", Err: &net.OpError{Op: "dial", Net: "tcp",
		Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}}
	reset := &url.Error{Op: "Put", URL: "http://127.0.0.1:1/b/k", Err: &net.OpError{Op: "read", Net: "tcp",
		Err: &os.SyscallError{Syscall: "read", Err: syscall.ECONNRESET}}}
	for _, tc := range []struct {
		err  error
		want insitu.Code
	}{
		{resp("NoSuchKey", 404), insitu.NotFound},
		{resp("NoSuchBucket", 404), insitu.NotFound},
		{resp("NotFound", 404), insitu.NotFound},
		{resp("", 404), insitu.NotFound},
		{resp("AccessDenied", 403), insitu.PermissionDenied},
		{resp("InvalidAccessKeyId", 403), insitu.PermissionDenied},
		{resp("SignatureDoesNotMatch", 403), insitu.PermissionDenied},
		{resp("XAdminUserNotFound", 404), insitu.PermissionDenied}, // versitygw's unknown access key
		{resp("ExpiredToken", 400), insitu.PermissionDenied},
		{resp("", 401), insitu.PermissionDenied},
		{resp("SlowDown", 503), insitu.Unavailable},
		{resp("ServiceUnavailable", 503), insitu.Unavailable},
		{resp("InternalError", 500), insitu.Unavailable},
		{resp("", 502), insitu.Unavailable},
		{resp("TooManyRequests", 429), insitu.Unavailable},
		{resp("", 429), insitu.Unavailable},
		{resp("RequestTimeout", 400), insitu.Unavailable},
		{resp("EntityTooLarge", 400), insitu.TooLarge},
		{resp("", 413), insitu.TooLarge},
		{resp("InvalidBucketName", 400), insitu.InvalidArgument},
		{resp("KeyTooLongError", 400), insitu.InvalidArgument},
		{fmt.Errorf("wrapped: %w", resp("NoSuchKey", 404)), insitu.NotFound},
		{refused, insitu.Unavailable},
		{reset, insitu.Unavailable},
		{&url.Error{Op: "Get", URL: "http://x", Err: io.EOF}, insitu.Unavailable},
		{io.ErrUnexpectedEOF, insitu.Unavailable},
		{&net.DNSError{Err: "no such host", Name: "nowhere.invalid", IsNotFound: true}, insitu.Unknown},
		{&net.DNSError{Err: "timeout", Name: "slow", IsTimeout: true}, insitu.Unavailable},
		{context.Canceled, insitu.Canceled},
		{insitu.Errorf(insitu.NotOwner, "x"), insitu.NotOwner},
		{errors.New("something else"), insitu.Unknown},
		{nil, insitu.Unknown},
	} {
		if got := codeOf(tc.err); got != tc.want {
			t.Errorf("Code(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestWrap(t *testing.T) {
	name := insitu.Name{Bucket: "b", Key: "k"}
	ctx := context.Background()
	if Wrap(ctx, nil, name, "op") != nil {
		t.Error("Wrap(nil) is not nil")
	}
	// Context errors and io.EOF come back bare.
	for _, err := range []error{context.Canceled, context.DeadlineExceeded, io.EOF} {
		if got := Wrap(ctx, err, name, "op"); got != err {
			t.Errorf("Wrap(%v) = %v, want it bare", err, got)
		}
	}
	// minio-go's *url.Error around a context error gives ctx.Err() when ctx has ended.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if got := Wrap(cctx, &url.Error{Op: "Get", URL: "http://x", Err: context.Canceled}, name, "op"); got != context.Canceled {
		t.Errorf("Wrap after cancel = %v, want context.Canceled itself", got)
	}
	// An S3 error gets the code, the name, the operation and the cause.
	err := Wrap(ctx, resp("AccessDenied", 403), name, "S3 GetObject")
	var e *insitu.Error
	if !errors.As(err, &e) || e.Code != insitu.PermissionDenied || e.Name != name {
		t.Fatalf("Wrap(AccessDenied) = %#v", err)
	}
	msg := err.Error()
	for _, want := range []string{"b/k", "S3 GetObject", "access key", "secret key", "AccessDenied message", "(permission_denied)"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q lacks %q", msg, want)
		}
	}
	var r minio.ErrorResponse
	if !errors.As(err, &r) || r.Code != "AccessDenied" {
		t.Errorf("the minio error is not the cause of %v", err)
	}
	// An error that already has a code keeps it, named once.
	inner := insitu.Errorf(insitu.NotOwner, "stale map")
	if got := Wrap(ctx, inner, name, "op"); insitu.CodeOf(got) != insitu.NotOwner || strings.Count(got.Error(), "b/k") != 1 {
		t.Errorf("Wrap(NotOwner) = %v", got)
	}
}

func TestReader(t *testing.T) {
	name := insitu.Name{Bucket: "b", Key: "k"}
	r := &bodyReader{Ctx: context.Background(), Body: io.NopCloser(io.MultiReader(strings.NewReader("abc"), errReader{io.ErrUnexpectedEOF})), Name: name}
	b, err := io.ReadAll(r)
	if string(b) != "abc" || !errors.Is(err, insitu.Unavailable) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("ReadAll = %q, %v; want abc and Unavailable wrapping io.ErrUnexpectedEOF", b, err)
	}
	r = &bodyReader{Ctx: context.Background(), Body: io.NopCloser(strings.NewReader("xyz")), Name: name}
	if b, err := io.ReadAll(r); string(b) != "xyz" || err != nil {
		t.Errorf("ReadAll = %q, %v; want xyz, nil", b, err)
	}
	if err := r.Close(); err != nil {
		t.Error(err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func ExampleWrap() {
	err := minio.ErrorResponse{Code: "NoSuchBucket", Message: "The specified bucket does not exist.", StatusCode: 404}
	werr := Wrap(context.Background(), err, insitu.Name{Bucket: "photos"}, "S3 ListObjectsV2")
	fmt.Println(werr)
	fmt.Println(errors.Is(werr, insitu.NotFound))
	// Output:
	// photos: S3 ListObjectsV2: The specified bucket does not exist. (not_found)
	// true
}
