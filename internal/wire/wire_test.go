package wire_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/wire"
)

func TestStatusRoundTrip(t *testing.T) {
	for _, c := range []insitu.Code{insitu.InvalidArgument, insitu.NotFound, insitu.NotOwner, insitu.Unavailable,
		insitu.Canceled, insitu.DeadlineExceeded, insitu.PermissionDenied, insitu.TooLarge, insitu.Internal} {
		if got := wire.CodeOfStatus(wire.Status(c)); got != c {
			t.Errorf("CodeOfStatus(Status(%v)) = %v", c, got)
		}
	}
	if wire.Status(insitu.Unknown) != 500 || wire.CodeOfStatus(502) != insitu.Unavailable || wire.CodeOfStatus(418) != insitu.Unknown {
		t.Error("unknown, 502 or 418 mapped wrongly")
	}
}

// respond records what WriteError sends for err and decodes it again.
func respond(t *testing.T, method string, err error) (wire.ErrorBody, *http.Response, error) {
	t.Helper()
	rec := httptest.NewRecorder()
	wire.WriteError(rec, err)
	resp := rec.Result()
	resp.Request = httptest.NewRequest(method, "/", nil)
	b, derr := wire.DecodeError(resp, insitu.Name{Bucket: "b", Key: "k"}, "node n1")
	return b, resp, derr
}

func TestWriteDecodeRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		err      error
		code     insitu.Code
		msg, txt string
	}{
		{&insitu.Error{Code: insitu.NotFound, Name: insitu.Name{Bucket: "b", Key: "k"}, Msg: "no such object"}, insitu.NotFound,
			"no such object", "b/k: node n1: no such object (not_found)"},
		{errors.New("plain"), insitu.Unknown, "plain", "b/k: node n1: plain (unknown)"},
		{insitu.Errorf(insitu.TooLarge, "%d bytes", 7), insitu.TooLarge, "7 bytes", "b/k: node n1: 7 bytes (too_large)"},
		// A plain wrapper of an *insitu.Error: the code once, not twice.
		{fmt.Errorf("ffmpeg: %w", insitu.Errorf(insitu.InvalidArgument, "x")), insitu.InvalidArgument, "ffmpeg: x",
			"b/k: node n1: ffmpeg: x (invalid_argument)"},
	} {
		b, resp, err := respond(t, http.MethodGet, tc.err)
		if b.Code != tc.code || b.Message != tc.msg || err.Error() != tc.txt || resp.StatusCode != wire.Status(tc.code) {
			t.Errorf("%v: body %+v, error %q, status %d", tc.err, b, err, resp.StatusCode)
		}
		if resp.Header.Get(wire.ErrorCode) != tc.code.String() {
			t.Errorf("%v: %s header %q", tc.err, wire.ErrorCode, resp.Header.Get(wire.ErrorCode))
		}
	}
	// HEAD: no body, the code comes from the header.
	_, _, err := respond(t, http.MethodHead, insitu.Errorf(insitu.NotOwner, "elsewhere"))
	if !errors.Is(err, insitu.NotOwner) {
		t.Errorf("HEAD: %v", err)
	}
}

func TestDecodeForeignResponses(t *testing.T) {
	for _, tc := range []struct {
		status int
		header string
		body   string
		code   insitu.Code
		msg    string
	}{
		{502, "", "<html>bad gateway</html>", insitu.Unavailable, "502 Bad Gateway: <html>bad gateway</html>"},
		{404, "", "", insitu.NotFound, "404 Not Found"},
		{500, "permission_denied", "", insitu.PermissionDenied, "500 Internal Server Error"},
		{400, "", strings.Repeat("x", 300), insitu.InvalidArgument, "400 Bad Request: " + strings.Repeat("x", 200) + "..."},
		{409, "", `{"code":"not_owner","message":"m","map_version":7}`, insitu.NotOwner, "m"},
	} {
		resp := &http.Response{StatusCode: tc.status, Status: fmt.Sprintf("%d %s", tc.status, http.StatusText(tc.status)),
			Header: http.Header{}, Body: io.NopCloser(strings.NewReader(tc.body))}
		if tc.header != "" {
			resp.Header.Set(wire.ErrorCode, tc.header)
		}
		b, err := wire.DecodeError(resp, insitu.Name{}, "")
		if b.Code != tc.code || b.Message != tc.msg || !errors.Is(err, tc.code) {
			t.Errorf("%d %q: body %+v, error %v", tc.status, tc.body, b, err)
		}
	}
}

func ExampleStatus() {
	fmt.Println(wire.Status(insitu.NotOwner), wire.CodeOfStatus(413))
	// Output: 409 too_large
}
