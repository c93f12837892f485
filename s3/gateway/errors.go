package gateway

import (
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"

	"github.com/insitu-data/insitu"
)

// s3Code is an S3 error code with the HTTP status S3 answers it with.
type s3Code struct {
	code   string
	status int
}

// The S3 errors the gateway answers.
var (
	errAccessDenied       = s3Code{"AccessDenied", http.StatusForbidden}
	errSignatureMismatch  = s3Code{"SignatureDoesNotMatch", http.StatusForbidden}
	errInvalidAccessKeyID = s3Code{"InvalidAccessKeyId", http.StatusForbidden}
	errTimeSkewed         = s3Code{"RequestTimeTooSkewed", http.StatusForbidden}
	errAuthMalformed      = s3Code{"AuthorizationHeaderMalformed", http.StatusBadRequest}
	errInvalidArgument    = s3Code{"InvalidArgument", http.StatusBadRequest}
	errKeyTooLong         = s3Code{"KeyTooLongError", http.StatusBadRequest}
	errNoSuchBucket       = s3Code{"NoSuchBucket", http.StatusNotFound}
	errNoSuchKey          = s3Code{"NoSuchKey", http.StatusNotFound}
	errMethodNotAllowed   = s3Code{"MethodNotAllowed", http.StatusMethodNotAllowed}
	errPrecondition       = s3Code{"PreconditionFailed", http.StatusPreconditionFailed}
	errInvalidRange       = s3Code{"InvalidRange", http.StatusRequestedRangeNotSatisfiable}
	errInternal           = s3Code{"InternalError", http.StatusInternalServerError}
	errNotImplemented     = s3Code{"NotImplemented", http.StatusNotImplemented}
	errUnavailable        = s3Code{"ServiceUnavailable", http.StatusServiceUnavailable}
)

// apiError is an S3 error to answer: its code and status, a message, and
// the region for AuthorizationHeaderMalformed.
type apiError struct {
	s3Code
	msg    string
	region string
}

func errorf(c s3Code, format string, args ...any) *apiError {
	return &apiError{s3Code: c, msg: fmt.Sprintf(format, args...)}
}

func (e *apiError) Error() string { return e.code + ": " + e.msg }

// errorBody is S3's XML error document.
type errorBody struct {
	XMLName    xml.Name `xml:"Error"`
	Code       string   `xml:"Code"`
	Message    string   `xml:"Message"`
	BucketName string   `xml:"BucketName,omitempty"`
	Key        string   `xml:"Key,omitempty"`
	Resource   string   `xml:"Resource"`
	Region     string   `xml:"Region,omitempty"`
	RequestID  string   `xml:"RequestId"`
}

// writeError answers e in S3's XML error format (no body for HEAD).
func writeError(w http.ResponseWriter, r *http.Request, e *apiError, bucket, key string) {
	h := w.Header()
	for _, k := range []string{"Content-Length", "ETag", "Last-Modified", "Content-Range", "Accept-Ranges"} {
		h.Del(k)
	}
	h.Set("Content-Type", "application/xml")
	if e.status == http.StatusServiceUnavailable {
		h.Set("Retry-After", "1")
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(e.status)
		return
	}
	body, _ := xml.Marshal(errorBody{
		Code: e.code, Message: e.msg, BucketName: bucket, Key: key,
		Resource: r.URL.Path, Region: e.region, RequestID: h.Get("X-Amz-Request-Id"),
	})
	w.WriteHeader(e.status)
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(body)
}

// fromInsitu turns an error of the cluster into the S3 error to answer:
// NotFound is NoSuchKey, InvalidArgument InvalidArgument, Unavailable,
// DeadlineExceeded and Canceled ServiceUnavailable (try again), and any
// other (PermissionDenied: the gateway's secret is not the cluster's)
// InternalError.
func fromInsitu(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	msg := err.Error()
	var ie *insitu.Error
	if errors.As(err, &ie) {
		msg = ie.Message()
	}
	switch insitu.CodeOf(err) {
	case insitu.NotFound:
		return errorf(errNoSuchKey, "%s", msg)
	case insitu.InvalidArgument:
		return errorf(errInvalidArgument, "%s", msg)
	case insitu.Unavailable, insitu.DeadlineExceeded, insitu.Canceled:
		return errorf(errUnavailable, "%s", msg)
	default:
		return errorf(errInternal, "%s", msg)
	}
}
