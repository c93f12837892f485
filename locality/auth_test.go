package locality_test

import (
	"bytes"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/locality"
)

func TestSecretVerify(t *testing.T) {
	t.Parallel()
	s := locality.Secret("cluster secret")
	hour := time.Now().Add(time.Hour)
	tok := s.AdminToken(hour)
	other := locality.Secret("another secret").AdminToken(hour)
	for _, tc := range []struct {
		auth string
		want bool
	}{
		{"Bearer " + tok, true},
		// The scheme's name is case-insensitive (RFC 9110, section 11.1).
		{"bearer " + tok, true},
		{"BEARER " + tok, true},
		{"bEaReR " + tok, true},
		{"Bearer   " + tok, true}, // 1*SP
		{"", false},
		{"Bearer", false},
		{"Bearer ", false},
		{"Bearer " + other, false},
		{"bearer " + other, false},
		{"Bearer" + tok, false},
		{"Bearer\t" + tok, false},
		{"Basic " + tok, false},
		{"Bearers " + tok, false},
		{tok, false},
		{"Bearer " + tok + "x", false},
		{"Bearer " + tok[:len(tok)-1], false},
		{"Bearer " + tok + " ", false},
	} {
		r, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1/v1/map", nil)
		if tc.auth != "" {
			r.Header.Set("Authorization", tc.auth)
		}
		if got := s.Verify(r); got != tc.want {
			t.Errorf("Verify(Authorization: %q) = %v, want %v", tc.auth, got, tc.want)
		}
	}
	// Authorize makes what Verify accepts; the zero Secret accepts all.
	r, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1/v1/map", nil)
	s.Authorize(r)
	if !s.Verify(r) {
		t.Errorf("Verify refuses Authorize's header %q", r.Header.Get("Authorization"))
	}
	if !locality.Secret(nil).Verify(&http.Request{Header: http.Header{}}) {
		t.Error("the zero Secret refuses a request")
	}
}

// TestScopedTokens checks what each token allows: an administrative token
// every request; an object token one access to one object, nothing else;
// no token once expired or when it claims to live longer than MaxTokenTTL;
// no token of the transform servers' secret on a node.
func TestScopedTokens(t *testing.T) {
	t.Parallel()
	s := locality.Secret("cluster secret")
	now := time.Now()
	hour := now.Add(time.Hour)
	obj := insitu.Name{Bucket: "b", Key: "dir/obj.wav"}
	admin := s.AdminToken(hour)
	read := s.ObjectToken(locality.Read, obj, hour)
	write := s.ObjectToken(locality.Write, obj, hour)
	objPath := "/v1/objects/b/dir/obj.wav"
	for _, tc := range []struct {
		name, tok, method, path string
		want                    bool
	}{
		{"admin GET map", admin, "GET", "/v1/map", true},
		{"admin PUT map", admin, "PUT", "/v1/map", true},
		{"admin POST jobs", admin, "POST", "/v1/jobs", true},
		{"admin DELETE object", admin, "DELETE", objPath, true},
		{"read GET", read, "GET", objPath, true},
		{"read HEAD", read, "HEAD", objPath, true},
		{"read PUT", read, "PUT", objPath, false},
		{"read DELETE", read, "DELETE", objPath, false},
		{"read another object", read, "GET", "/v1/objects/b/dir/other.wav", false},
		{"read another bucket", read, "GET", "/v1/objects/c/dir/obj.wav", false},
		{"read a prefix of it", read, "GET", "/v1/objects/b/dir", false},
		{"read the listing", read, "GET", "/v1/objects/b", false},
		{"read the map", read, "GET", "/v1/map", false},
		{"write PUT", write, "PUT", objPath, true},
		{"write GET", write, "GET", objPath, false},
		{"write DELETE", write, "DELETE", objPath, false},
		{"write another object", write, "PUT", "/v1/objects/b/dir/obj.wav2", false},
		{"write the map", write, "PUT", "/v1/map", false},
		{"write a job", write, "POST", "/v1/jobs", false},
		{"write a claim", write, "POST", "/v1/jobs/j/claims", false},
		{"expired admin", s.AdminToken(now.Add(-2 * time.Second)), "GET", "/v1/map", false},
		{"expired write", s.ObjectToken(locality.Write, obj, now.Add(-2*time.Second)), "PUT", objPath, false},
		{"admin for too long", s.AdminToken(now.Add(locality.MaxTokenTTL + time.Hour)), "GET", "/v1/map", false},
		{"the transform servers' admin", s.TransformSecret("n1").AdminToken(hour), "PUT", "/v1/map", false},
		{"the transform servers' write", s.TransformSecret("n1").ObjectToken(locality.Write, obj, hour), "PUT", objPath, false},
		{"write with its kind changed", strings.Replace(write, ".w.", ".a.", 1), "PUT", "/v1/map", false},
		{"read with its kind changed", strings.Replace(read, ".r.", ".w.", 1), "PUT", objPath, false},
		{"admin with its expiry moved", moveExpiry(admin), "GET", "/v1/map", false},
	} {
		r, _ := http.NewRequest(tc.method, "http://127.0.0.1"+escapePath(tc.path), nil)
		r.Header.Set("Authorization", "Bearer "+tc.tok)
		if got := s.Verify(r); got != tc.want {
			t.Errorf("%s: Verify(%s %s) = %v, want %v", tc.name, tc.method, tc.path, got, tc.want)
		}
	}
	// A transform server verifies its clients with the derived secret.
	ts := s.TransformSecret("n1")
	r, _ := http.NewRequest("PUT", "http://127.0.0.1/v1/transform/b/k", nil)
	ts.Authorize(r)
	if !ts.Verify(r) || s.Verify(r) {
		t.Errorf("a token of the transform secret: verified by it %v (want true), by the cluster secret %v (want false)", ts.Verify(r), s.Verify(r))
	}
	if bytes.Equal(ts, s) || len(ts) == 0 || locality.Secret(nil).TransformSecret("n1") != nil {
		t.Error("TransformSecret returns the secret itself, or nothing, or something for the zero Secret")
	}
	// Each node's transform server has its own: n2's refuses n1's tokens.
	if ts2 := s.TransformSecret("n2"); bytes.Equal(ts2, ts) || ts2.Verify(r) {
		t.Error("the transform servers of n1 and n2 share a secret, or n2's accepts a token of n1's")
	}
}

// TestAuthorizeNarrowest checks that Authorize puts on each request the
// narrowest token that allows it.
func TestAuthorizeNarrowest(t *testing.T) {
	t.Parallel()
	s := locality.Secret("cluster secret")
	for _, tc := range []struct{ method, path, kind string }{
		{"GET", "/v1/objects/b/k%20x", ".r."},
		{"HEAD", "/v1/objects/b/a/b", ".r."},
		{"PUT", "/v1/objects/b/k", ".w."},
		{"DELETE", "/v1/objects/b/k", ".a."},
		{"GET", "/v1/objects/b", ".a."},
		{"PUT", "/v1/map", ".a."},
		{"POST", "/v1/jobs", ".a."},
	} {
		r, _ := http.NewRequest(tc.method, "http://127.0.0.1"+tc.path, nil)
		s.Authorize(r)
		auth := r.Header.Get("Authorization")
		if !strings.Contains(auth, tc.kind) || !s.Verify(r) {
			t.Errorf("%s %s: Authorization %q (verified: %v), want a %s token", tc.method, tc.path, auth, s.Verify(r), tc.kind)
		}
	}
}

// moveExpiry returns tok with its expiry one second later and its MAC
// unchanged.
func moveExpiry(tok string) string {
	f := strings.Split(tok, ".")
	e, _ := strconv.ParseInt(f[2], 10, 64)
	f[2] = strconv.FormatInt(e+1, 10)
	return strings.Join(f, ".")
}

// escapePath escapes p's segments as a client does.
func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}
