package s3

// This file maps the errors of minio-go, and of the network under it, to
// insitu's error codes. It is the one place that knows which S3 error codes
// mean what; the Source and the Sink both use it.

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"

	"github.com/insitu-data/insitu"
	"github.com/minio/minio-go/v7"
)

// notFound are the S3 error codes of a missing bucket or object.
var notFound = map[string]bool{
	"NoSuchKey":     true,
	"NoSuchBucket":  true,
	"NotFound":      true,
	"NoSuchVersion": true,
	"NoSuchUpload":  true,
}

// denied are the S3 error codes of refused credentials or permissions.
// XAdminUserNotFound is what versitygw answers (with a 404!) to an unknown
// access key, so codes are checked before status codes.
var denied = map[string]bool{
	"AccessDenied":                 true,
	"InvalidAccessKeyId":           true,
	"SignatureDoesNotMatch":        true,
	"XAdminUserNotFound":           true,
	"InvalidToken":                 true,
	"ExpiredToken":                 true,
	"TokenRefreshRequired":         true,
	"AllAccessDisabled":            true,
	"AccountProblem":               true,
	"InvalidSecurity":              true,
	"MissingSecurityHeader":        true,
	"AuthorizationHeaderMalformed": true,
}

// transient are the S3 error codes worth retrying.
var transient = map[string]bool{
	"SlowDown":                   true,
	"ServiceUnavailable":         true,
	"InternalError":              true,
	"RequestTimeout":             true,
	"TooManyRequests":            true,
	"RequestThrottled":           true,
	"ThrottlingException":        true,
	"BandwidthLimitExceeded":     true,
	"OperationAborted":           true,
	"PriorRequestNotComplete":    true,
	"IncompleteBody":             true,
	"XMinioServerNotInitialized": true,
	"XMinioBackendDown":          true,
	"XMinioReadQuorum":           true,
	"XMinioWriteQuorum":          true,
}

// tooLarge are the S3 error codes of an object over a size limit.
var tooLarge = map[string]bool{
	"EntityTooLarge":           true,
	"MaxMessageLengthExceeded": true,
}

// Code returns the insitu code of an error from minio-go: NotFound for a
// missing bucket or key; PermissionDenied for refused credentials or
// access; Unavailable for throttling, 5xx answers, and connections
// refused, reset or cut short; TooLarge for an object over a limit;
// InvalidArgument for other 4xx answers and for minio-go's own argument
// checks; Canceled and DeadlineExceeded for the context errors; Unknown
// otherwise.
func codeOf(err error) insitu.Code {
	if err == nil {
		return insitu.Unknown
	}
	if c := insitu.CodeOf(err); c != insitu.Unknown {
		return c
	}
	var resp minio.ErrorResponse
	if errors.As(err, &resp) {
		return responseCode(resp)
	}
	if transportError(err) {
		return insitu.Unavailable
	}
	return insitu.Unknown
}

func responseCode(r minio.ErrorResponse) insitu.Code {
	switch {
	case denied[r.Code]:
		return insitu.PermissionDenied
	case notFound[r.Code]:
		return insitu.NotFound
	case transient[r.Code]:
		return insitu.Unavailable
	case tooLarge[r.Code]:
		return insitu.TooLarge
	case r.StatusCode == http.StatusTooManyRequests || r.StatusCode >= 500:
		return insitu.Unavailable
	case r.StatusCode == http.StatusNotFound:
		return insitu.NotFound
	case r.StatusCode == http.StatusForbidden || r.StatusCode == http.StatusUnauthorized:
		return insitu.PermissionDenied
	case r.StatusCode == http.StatusRequestEntityTooLarge:
		return insitu.TooLarge
	case r.StatusCode >= 400:
		// minio-go's own argument checks (an invalid bucket name) come as
		// 400 responses too.
		return insitu.InvalidArgument
	}
	return insitu.Unknown
}

// transportError reports whether err is a failure of the connection
// rather than an answer: refused, reset, cut short, timed out.
func transportError(err error) bool {
	var netErr net.Error
	var opErr *net.OpError
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr):
		return dnsErr.IsTemporary || dnsErr.IsTimeout
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.ETIMEDOUT), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH):
		return true
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		// io.EOF inside another error: the server closed the connection
		// before it answered.
		return true
	case errors.As(err, &opErr):
		return true
	case errors.As(err, &netErr):
		return netErr.Timeout()
	}
	return false
}

// Wrap returns err as an *insitu.Error about name, with the code of
// [Code] and op (such as "S3 GetObject") as its message. A context error
// comes back bare: ctx.Err() when ctx has ended (minio-go wraps the context
// error in a *url.Error), and err itself when it is a context error or
// io.EOF. An error that already has an insitu code keeps it and is only
// named.
//
// A permission error gets a message that says what to check.
func Wrap(ctx context.Context, err error, name insitu.Name, op string) error {
	if err == nil {
		return nil
	}
	if ctx != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	if err == io.EOF || err == context.Canceled || err == context.DeadlineExceeded {
		return err
	}
	if insitu.CodeOf(err) != insitu.Unknown {
		return insitu.WithName(err, name)
	}
	code := codeOf(err)
	msg := op
	switch code {
	case insitu.PermissionDenied:
		msg = op + ": access denied by the S3 service; check the access key, the secret key and the bucket's policy"
	case insitu.Unavailable:
		msg = op + ": the S3 service is unavailable or throttling"
	}
	return &insitu.Error{Code: code, Name: name, Msg: msg, Err: err}
}

// Reader wraps the body of a GET so that its read errors carry insitu
// codes: a connection reset or cut short is Unavailable, so the runner
// retries the object. io.EOF and context errors come through bare.
type bodyReader struct {
	Ctx  context.Context
	Body io.ReadCloser
	Name insitu.Name
}

// Read reads from the body, wrapping its errors.
func (r *bodyReader) Read(p []byte) (int, error) {
	n, err := r.Body.Read(p)
	if err != nil && err != io.EOF {
		err = Wrap(r.Ctx, err, r.Name, "S3 GetObject: reading the body")
	}
	return n, err
}

// Close closes the body.
func (r *bodyReader) Close() error { return r.Body.Close() }
