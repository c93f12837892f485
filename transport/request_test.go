package transport

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/wire"
)

// TestRequestPutOrigin: a direct put's origin travels as put_origin in
// an OPEN and as Insitu-Put-Origin over HTTP, both ways; one that is not
// an origin's text, or comes without a put URL, is InvalidArgument.
func TestRequestPutOrigin(t *testing.T) {
	t.Parallel()
	origin := insitu.Origin{Input: insitu.Name{Bucket: "in", Key: "a/ü b.flac"}, Version: `"etag"`, Transform: "t/1", Args: insitu.ArgsDigest("-ar 1")}.String()
	const putURL = "http://127.0.0.1:1/v1/objects/out/a.wav"
	r := &request{Bucket: "in", Key: "a/ü b.flac", Size: 3, PutURL: putURL, PutOrigin: origin}
	if err := r.validate(); err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	r.setHeaders(h)
	if h.Get(wire.PutOrigin) != origin {
		t.Fatalf("header %s = %q, want %q", wire.PutOrigin, h.Get(wire.PutOrigin), origin)
	}
	r2, err := parseHeaders(r.Bucket, r.Key, h, -1)
	if err != nil || *r2 != *r {
		t.Fatalf("headers round trip: %+v, %v; want %+v", r2, err, r)
	}
	b, _ := json.Marshal(r)
	r3, err := parseOpen(b)
	if err != nil || *r3 != *r {
		t.Fatalf("OPEN round trip of %s: %+v, %v", b, r3, err)
	}
	for _, bad := range []request{
		{Bucket: "in", Key: "k", PutURL: putURL, PutOrigin: "garbage"},
		{Bucket: "in", Key: "k", PutURL: putURL, PutOrigin: origin + "&x=1"},
		{Bucket: "in", Key: "k", PutOrigin: origin}, // no put URL
	} {
		if err := bad.validate(); !errors.Is(err, insitu.InvalidArgument) {
			t.Errorf("validate(%+v) = %v, want InvalidArgument", bad, err)
		}
		h := http.Header{}
		bad.setHeaders(h)
		if _, err := parseHeaders(bad.Bucket, bad.Key, h, -1); !errors.Is(err, insitu.InvalidArgument) {
			t.Errorf("parseHeaders of %+v = %v, want InvalidArgument", bad, err)
		}
	}
}
