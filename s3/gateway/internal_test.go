package gateway

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestSigV4AWSExamples checks the verifier against the worked examples of
// AWS's "Signature Calculations for the Authorization Header" and "Query
// String Authentication" pages (GET Object with a Range, and a presigned
// GET valid for a day).
func TestSigV4AWSExamples(t *testing.T) {
	g := &Gateway{
		creds:  map[string]string{"AKIAIOSFODNN7EXAMPLE": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"},
		region: "us-east-1",
		now:    func() time.Time { return time.Date(2013, 5, 24, 0, 5, 0, 0, time.UTC) },
	}
	req := httptest.NewRequest(http.MethodGet, "http://examplebucket.s3.amazonaws.com/test.txt", nil)
	req.Header.Set("Range", "bytes=0-9")
	req.Header.Set("X-Amz-Content-Sha256", emptySHA256)
	req.Header.Set("X-Amz-Date", "20130524T000000Z")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
	if key, err := g.authenticate(req); err != nil || key != "AKIAIOSFODNN7EXAMPLE" {
		t.Errorf("the header example: %q, %v", key, err)
	}
	req.Header.Set("Range", "bytes=0-10")
	if _, err := g.authenticate(req); err == nil || err.code != "SignatureDoesNotMatch" {
		t.Errorf("the header example with another range: %v", err)
	}

	req = httptest.NewRequest(http.MethodGet, "http://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404", nil)
	if key, err := g.authenticate(req); err != nil || key != "AKIAIOSFODNN7EXAMPLE" {
		t.Errorf("the presigned example: %q, %v", key, err)
	}
	g.now = func() time.Time { return time.Date(2013, 5, 25, 0, 0, 1, 0, time.UTC) }
	if _, err := g.authenticate(req); err == nil || err.code != "AccessDenied" {
		t.Errorf("the presigned example a day and a second later: %v", err)
	}
}

// failingReader returns data, the last part of it with err, then err.
type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	n := copy(p, f.data)
	f.data = f.data[n:]
	if len(f.data) == 0 {
		return n, f.err
	}
	return n, nil
}

// TestStreamCut: a body that fails after all its bytes were read (a
// checksum that does not match, say) is never delivered whole: with a
// Content-Length it is short, chunked it ends with an error.
func TestStreamCut(t *testing.T) {
	const size = 100_000
	g := &Gateway{log: slog.New(slog.DiscardHandler)}
	for _, known := range []bool{true, false} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n := int64(-1)
			if known {
				n = size
				w.Header().Set("Content-Length", "100000")
			}
			g.stream(w, r, &failingReader{data: bytes.Repeat([]byte("y"), size), err: errors.New("checksum mismatch")}, http.StatusOK, n, "b", "k")
		}))
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil || n >= size {
			t.Errorf("length known %v: read %d bytes, then %v", known, n, err)
		}
		srv.Close()
	}
	// And a body that ends well is whole.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.stream(w, r, &failingReader{data: bytes.Repeat([]byte("y"), size), err: io.EOF}, http.StatusOK, -1, "b", "k")
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if n, err := io.Copy(io.Discard, resp.Body); err != nil || n != size {
		t.Errorf("a good body: %d bytes, %v", n, err)
	}
}
