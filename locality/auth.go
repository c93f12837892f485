package locality

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/insitu-data/insitu"
)

// A Secret is the key that tokens are made with and checked against. The
// cluster secret is shared by the nodes and the clients that administer
// them; it never travels. Requests carry short-lived tokens made from it
// (see [Secret.Authorize]), and a transform server holds only a secret
// derived from it for its node ([Secret.TransformSecret]), with which it
// cannot make tokens that a node, or another node's transform server,
// accepts. The zero Secret disables authentication.
type Secret []byte

// An Access is what an object token allows: see [Secret.ObjectToken].
type Access uint8

// The accesses of object tokens.
const (
	// Read allows GET and HEAD of one object.
	Read Access = iota + 1
	// Write allows PUT of one object.
	Write
)

// Token lifetimes.
const (
	// RequestTokenTTL is how long the token that [Secret.Authorize] puts
	// on a request stays valid: the request is checked when it arrives,
	// so this only needs to cover the clocks' disagreement.
	RequestTokenTTL = 5 * time.Minute
	// DefaultTokenTTL is how long the object tokens that a [Client] hands
	// out (for a transform server to fetch an input or put an output)
	// stay valid by default: longer than a transform's default time limit
	// per object (10 minutes).
	DefaultTokenTTL = 15 * time.Minute
	// MaxTokenTTL is the longest lifetime a token may claim: a token that
	// expires later than this from now is refused, so that no token is good
	// for ever.
	MaxTokenTTL = 24 * time.Hour
)

// Token kinds, the second field of a token.
const (
	kindAdmin = "a"
	kindRead  = "r"
	kindWrite = "w"
)

// tokenPrefix starts every token; it names the format.
const tokenPrefix = "insitu1"

// macLabel separates this use of the secret from any other.
const macLabel = "insitu/v1/token"

// objectsPath is the prefix of the node API's object paths.
const objectsPath = "/v1/objects/"

// AdminToken returns an administrative token of s valid until expires: it
// allows every request, the node API's map and job calls included. It is
// "" for the zero Secret.
func (s Secret) AdminToken(expires time.Time) string {
	return s.token(kindAdmin, "", expires)
}

// ObjectToken returns a token of s that allows one kind of access to the
// one object name, on whichever node stores it, as often as it is used
// until expires: GET and HEAD for [Read], PUT for [Write]. It is what a
// transform server receives to fetch an input or put an output, and it
// allows nothing else: no other object, no listing, no delete, no map or
// job call. It is "" for the zero Secret.
func (s Secret) ObjectToken(a Access, name insitu.Name, expires time.Time) string {
	kind := kindRead
	if a == Write {
		kind = kindWrite
	}
	return s.token(kind, name.Bucket+"/"+name.Key, expires)
}

// TransformSecret returns the secret of the transform server next to the
// node with the given ID, in a cluster whose secret is s: an HMAC of s and
// the ID. A transform server holds it to check its clients' tokens; with
// it, it cannot make a token that a node accepts, nor one that the
// transform server of another node accepts. The clients of the transform
// servers derive it from the cluster secret too. It is the zero Secret for
// the zero Secret.
func (s Secret) TransformSecret(node string) Secret {
	if len(s) == 0 {
		return nil
	}
	m := hmac.New(sha256.New, s)
	m.Write([]byte("insitu/v1/transform-server\n" + node))
	return m.Sum(nil)
}

// token returns the token of the given kind and scope (the object's
// "bucket/key", or "" for an administrative token):
//
//	insitu1.<kind>.<expiry, Unix seconds>.<MAC>
//
// where MAC is the unpadded base64url HMAC-SHA256, keyed by s, of
// "insitu/v1/token\n<kind>\n<expiry>\n<scope>".
func (s Secret) token(kind, scope string, expires time.Time) string {
	if len(s) == 0 {
		return ""
	}
	exp := strconv.FormatInt(expires.Unix(), 10)
	return tokenPrefix + "." + kind + "." + exp + "." + s.mac(kind, exp, scope)
}

func (s Secret) mac(kind, exp, scope string) string {
	m := hmac.New(sha256.New, s)
	m.Write([]byte(macLabel + "\n" + kind + "\n" + exp + "\n" + scope))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Authorize sets r's Authorization header to the narrowest token of s that
// allows r, valid for [RequestTokenTTL]: an object token for a GET, HEAD or
// PUT of one object of the node API (/v1/objects/{bucket}/{key}), else an
// administrative token. It does nothing for the zero Secret.
func (s Secret) Authorize(r *http.Request) {
	if len(s) == 0 {
		return
	}
	exp := time.Now().Add(RequestTokenTTL)
	var tok string
	if scope, ok := objectScope(r.URL.Path); ok && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		tok = s.token(kindRead, scope, exp)
	} else if ok && r.Method == http.MethodPut {
		tok = s.token(kindWrite, scope, exp)
	} else {
		tok = s.token(kindAdmin, "", exp)
	}
	r.Header.Set("Authorization", "Bearer "+tok)
}

// Verify reports whether r carries a token of s that allows it: an
// administrative token, or an object token for r's method and object,
// that has not expired (it is refused from its expiry second on) and does
// not claim to live longer than [MaxTokenTTL] (plus [RequestTokenTTL], the
// clocks' allowed disagreement). The MAC is compared in constant time. The scheme's name
// is case-insensitive, as HTTP has it (RFC 9110, section 11.1): "Bearer",
// "bearer" and "BEARER" are the same. Every request passes when s is the
// zero Secret.
func (s Secret) Verify(r *http.Request) bool {
	return s.verify(r, time.Now())
}

func (s Secret) verify(r *http.Request, now time.Time) bool {
	if len(s) == 0 {
		return true
	}
	tok, ok := bearer(r.Header.Get("Authorization"))
	if !ok {
		return false
	}
	rest, ok := strings.CutPrefix(tok, tokenPrefix+".")
	if !ok {
		return false
	}
	kind, rest, _ := strings.Cut(rest, ".")
	exp, mac, _ := strings.Cut(rest, ".")
	e, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || exp != strconv.FormatInt(e, 10) || e <= now.Unix() || e > now.Add(MaxTokenTTL+RequestTokenTTL).Unix() {
		return false
	}
	var scope string
	switch kind {
	case kindAdmin:
	case kindRead, kindWrite:
		sc, ok := objectScope(r.URL.Path)
		if !ok || !allows(kind, r.Method) {
			return false
		}
		scope = sc
	default:
		return false
	}
	return hmac.Equal([]byte(mac), []byte(s.mac(kind, exp, scope)))
}

// allows reports whether an object token of kind allows method.
func allows(kind, method string) bool {
	switch kind {
	case kindRead:
		return method == http.MethodGet || method == http.MethodHead
	case kindWrite:
		return method == http.MethodPut
	}
	return false
}

// objectScope returns the "bucket/key" of a node API object path (as
// decoded: r.URL.Path), and whether path is one: a bucket and a key, both
// non-empty.
func objectScope(path string) (string, bool) {
	rest, ok := strings.CutPrefix(path, objectsPath)
	if !ok {
		return "", false
	}
	b, k, ok := strings.Cut(rest, "/")
	if !ok || b == "" || k == "" {
		return "", false
	}
	return rest, true
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
