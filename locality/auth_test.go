package locality_test

import (
	"net/http"
	"testing"

	"github.com/insitu-data/insitu/locality"
)

func TestSecretVerify(t *testing.T) {
	t.Parallel()
	s := locality.Secret("cluster secret")
	tok := s.Token()
	other := locality.Secret("another secret").Token()
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
