package locality

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strings"
)

// A Secret is the cluster secret shared by the nodes, the transform servers
// and their clients. It never travels: requests carry a bearer token derived
// from it (see [Secret.Token]). The zero Secret disables authentication.
type Secret []byte

// tokenLabel separates tokens for this purpose from any other use of the secret.
const tokenLabel = "insitu/v1/bearer"

// Token returns the bearer token derived from s: the hex HMAC-SHA256 of a
// fixed label under s. It is "" for the zero Secret.
func (s Secret) Token() string {
	if len(s) == 0 {
		return ""
	}
	m := hmac.New(sha256.New, s)
	m.Write([]byte(tokenLabel))
	return hex.EncodeToString(m.Sum(nil))
}

// Authorize sets r's Authorization header to the bearer token of s. It
// does nothing for the zero Secret.
func (s Secret) Authorize(r *http.Request) {
	if t := s.Token(); t != "" {
		r.Header.Set("Authorization", "Bearer "+t)
	}
}

// Verify reports whether r carries the bearer token of s, in constant time.
// The scheme's name is case-insensitive, as HTTP has it (RFC 9110, section
// 11.1): "Bearer", "bearer" and "BEARER" are the same. Every request
// passes when s is the zero Secret.
func (s Secret) Verify(r *http.Request) bool {
	if len(s) == 0 {
		return true
	}
	got, ok := bearer(r.Header.Get("Authorization"))
	if !ok {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(s.Token())) == 1
}

// bearer returns the token of an Authorization header value of the Bearer
// scheme, whose name matches in any case, followed by one or more spaces
// (RFC 9110, section 11.4, and RFC 6750, section 2.1).
func bearer(auth string) (string, bool) {
	const scheme = "Bearer"
	if len(auth) <= len(scheme) || !strings.EqualFold(auth[:len(scheme)], scheme) || auth[len(scheme)] != ' ' {
		return "", false
	}
	return strings.TrimLeft(auth[len(scheme):], " "), true
}

// String hides the secret in logs and error messages.
func (s Secret) String() string { return "[secret]" }

// GoString hides the secret from %#v.
func (s Secret) GoString() string { return "locality.Secret([secret])" }
