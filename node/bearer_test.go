package node_test

import (
	"net/http"
	"testing"
	"time"
)

// TestBearerSchemeAnyCase sends the token with the scheme's name in other
// cases, which HTTP makes the same (RFC 9110, section 11.1).
func TestBearerSchemeAnyCase(t *testing.T) {
	t.Parallel()
	s := startSingle(t, nil)
	tok := s.secret.AdminToken(time.Now().Add(time.Hour))
	for _, scheme := range []string{"Bearer", "bearer", "BEARER"} {
		resp, body := raw(t, s.addr(), "GET /v1/map HTTP/1.1\r\nHost: x\r\nAuthorization: "+scheme+" "+tok+"\r\nConnection: close\r\n\r\n")
		if resp.StatusCode != http.StatusOK {
			t.Errorf("scheme %q: status %d, body %s; want 200", scheme, resp.StatusCode, body)
		}
	}
	resp, _ := raw(t, s.addr(), "GET /v1/map HTTP/1.1\r\nHost: x\r\nAuthorization: bearer 0123\r\nConnection: close\r\n\r\n")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a wrong token: status %d, want 401", resp.StatusCode)
	}
}
