package gateway

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Signature Version 4, as AWS documents it for S3 ("Authenticating
// Requests: Using the Authorization Header" and "Using Query Parameters").
const (
	sigAlgorithm = "AWS4-HMAC-SHA256"
	sigService   = "s3"
	sigTerminal  = "aws4_request"
	amzDateFmt   = "20060102T150405Z"
	scopeDateFmt = "20060102"

	// unsignedPayload and emptySHA256 are the payload hashes a read
	// accepts: the gateway reads no request body.
	unsignedPayload = "UNSIGNED-PAYLOAD"
	emptySHA256     = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

// Limits of Signature Version 4, as on S3.
const (
	// MaxClockSkew is how far a request's X-Amz-Date may be from the
	// gateway's clock, either way, as on S3.
	MaxClockSkew = 15 * time.Minute
	// MaxPresignExpiry is the longest X-Amz-Expires of a presigned URL
	// (seven days, as on S3).
	MaxPresignExpiry = 7 * 24 * time.Hour
)

// authenticate verifies r's Signature Version 4, from its Authorization
// header or, for a presigned URL, from its query, and returns the access
// key that signed it, or the S3 error to answer.
func (g *Gateway) authenticate(r *http.Request) (string, *apiError) {
	if auth := r.Header.Get("Authorization"); auth != "" {
		return g.verifyHeader(r, auth)
	}
	if r.URL.Query().Has("X-Amz-Signature") || r.URL.Query().Has("X-Amz-Algorithm") {
		return g.verifyPresigned(r)
	}
	return "", errorf(errAccessDenied, "anonymous requests are refused: sign them with AWS Signature Version 4")
}

// credential is the parsed Credential of a signature:
// <key>/<yyyymmdd>/<region>/s3/aws4_request.
type credential struct {
	key, date, region string
}

func (g *Gateway) parseCredential(s string) (credential, *apiError) {
	parts := strings.Split(s, "/")
	if len(parts) < 5 {
		return credential{}, errorf(errAuthMalformed, "the Credential %q is not <access key>/<date>/<region>/s3/aws4_request", s)
	}
	n := len(parts)
	c := credential{key: strings.Join(parts[:n-4], "/"), date: parts[n-4], region: parts[n-3]}
	switch {
	case parts[n-2] != sigService || parts[n-1] != sigTerminal:
		return c, errorf(errAuthMalformed, "the Credential's scope ends with %s/%s, not s3/aws4_request", parts[n-2], parts[n-1])
	case c.region != g.region:
		e := errorf(errAuthMalformed, "the region %q is wrong; expecting %q", c.region, g.region)
		e.region = g.region
		return c, e
	}
	if _, err := time.Parse(scopeDateFmt, c.date); err != nil {
		return c, errorf(errAuthMalformed, "the Credential's date %q is not yyyymmdd", c.date)
	}
	return c, nil
}

// verifyHeader checks an Authorization header:
// AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=….
func (g *Gateway) verifyHeader(r *http.Request, auth string) (string, *apiError) {
	rest, ok := strings.CutPrefix(auth, sigAlgorithm+" ")
	if !ok {
		return "", errorf(errAccessDenied, "only AWS Signature Version 4 (%s) is accepted", sigAlgorithm)
	}
	var credStr, signed, sig string
	for f := range strings.SplitSeq(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
		switch k {
		case "Credential":
			credStr = v
		case "SignedHeaders":
			signed = v
		case "Signature":
			sig = v
		}
	}
	if credStr == "" || signed == "" || sig == "" {
		return "", errorf(errAuthMalformed, "the Authorization header lacks a Credential, SignedHeaders or Signature")
	}
	cred, aerr := g.parseCredential(credStr)
	if aerr != nil {
		return "", aerr
	}
	secret, ok := g.creds[cred.key]
	if !ok {
		return "", errorf(errInvalidAccessKeyID, "the access key %q is not known here", cred.key)
	}
	amzDate := r.Header.Get("X-Amz-Date")
	t, err := time.Parse(amzDateFmt, amzDate)
	if err != nil {
		return "", errorf(errAccessDenied, "X-Amz-Date %q is missing or not in the form %s", amzDate, amzDateFmt)
	}
	if skew := g.now().Sub(t); skew > MaxClockSkew || skew < -MaxClockSkew {
		return "", errorf(errTimeSkewed, "the request's time %s differs from the gateway's by more than %v", amzDate, MaxClockSkew)
	}
	if cred.date != amzDate[:8] {
		return "", errorf(errAuthMalformed, "the Credential's date %s is not X-Amz-Date's day %s", cred.date, amzDate[:8])
	}
	headers := strings.Split(signed, ";")
	if !slices.Contains(headers, "host") || !slices.Contains(headers, "x-amz-date") {
		return "", errorf(errAccessDenied, "SignedHeaders must include host and x-amz-date")
	}
	payload := r.Header.Get("X-Amz-Content-Sha256")
	if payload == "" {
		// S3 requires the header; a generic SigV4 signer (curl's, say)
		// signs the body's hash, which for a read is the empty body's.
		payload = emptySHA256
	}
	want := signature(secret, cred, amzDate, canonicalRequest(r, r.URL.Query(), headers, payload))
	if !hmac.Equal([]byte(sig), []byte(want)) {
		return "", errorf(errSignatureMismatch, "the request signature we calculated does not match the signature you provided; check your key and signing method")
	}
	return cred.key, nil
}

// verifyPresigned checks a presigned URL's X-Amz-* query parameters.
func (g *Gateway) verifyPresigned(r *http.Request) (string, *apiError) {
	q := r.URL.Query()
	if a := q.Get("X-Amz-Algorithm"); a != sigAlgorithm {
		return "", errorf(errAccessDenied, "X-Amz-Algorithm %q: only %s is accepted", a, sigAlgorithm)
	}
	sig, signed := q.Get("X-Amz-Signature"), q.Get("X-Amz-SignedHeaders")
	if sig == "" || signed == "" {
		return "", errorf(errAuthMalformed, "a presigned URL needs X-Amz-Signature and X-Amz-SignedHeaders")
	}
	cred, aerr := g.parseCredential(q.Get("X-Amz-Credential"))
	if aerr != nil {
		return "", aerr
	}
	secret, ok := g.creds[cred.key]
	if !ok {
		return "", errorf(errInvalidAccessKeyID, "the access key %q is not known here", cred.key)
	}
	amzDate := q.Get("X-Amz-Date")
	t, err := time.Parse(amzDateFmt, amzDate)
	if err != nil {
		return "", errorf(errAccessDenied, "X-Amz-Date %q is missing or not in the form %s", amzDate, amzDateFmt)
	}
	exp, err := strconv.ParseInt(q.Get("X-Amz-Expires"), 10, 64)
	if err != nil || exp < 1 || exp > int64(MaxPresignExpiry/time.Second) {
		return "", errorf(errAuthMalformed, "X-Amz-Expires %q is not a number of seconds from 1 to %d", q.Get("X-Amz-Expires"), int64(MaxPresignExpiry/time.Second))
	}
	now := g.now()
	switch {
	case t.Sub(now) > MaxClockSkew:
		return "", errorf(errAccessDenied, "the presigned URL's X-Amz-Date %s is in the future", amzDate)
	case now.After(t.Add(time.Duration(exp) * time.Second)):
		return "", errorf(errAccessDenied, "the presigned URL expired")
	case cred.date != amzDate[:8]:
		return "", errorf(errAuthMalformed, "the Credential's date %s is not X-Amz-Date's day %s", cred.date, amzDate[:8])
	}
	headers := strings.Split(signed, ";")
	if !slices.Contains(headers, "host") {
		return "", errorf(errAccessDenied, "X-Amz-SignedHeaders must include host")
	}
	payload := q.Get("X-Amz-Content-Sha256")
	if payload == "" {
		payload = unsignedPayload
	}
	cq := maps.Clone(q)
	delete(cq, "X-Amz-Signature")
	want := signature(secret, cred, amzDate, canonicalRequest(r, cq, headers, payload))
	if !hmac.Equal([]byte(sig), []byte(want)) {
		return "", errorf(errSignatureMismatch, "the request signature we calculated does not match the signature you provided; check your key and signing method")
	}
	return cred.key, nil
}

// canonicalRequest is the canonical form of r that Signature Version 4
// signs: method, URI-encoded path, sorted canonical query, the signed
// headers lower-cased with their values trimmed, the list of signed
// headers, and the payload hash.
func canonicalRequest(r *http.Request, q url.Values, signed []string, payload string) string {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	b.WriteString(canonicalPath(r.URL))
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(q))
	b.WriteByte('\n')
	for _, h := range signed {
		b.WriteString(h)
		b.WriteByte(':')
		b.WriteString(headerValue(r, h))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(signed, ";"))
	b.WriteByte('\n')
	b.WriteString(payload)
	return b.String()
}

// canonicalPath is u's path with each segment URI-encoded once, as S3
// signs it. Segments are taken from the path as sent, so that a "/"
// sent encoded (%2F) stays encoded.
func canonicalPath(u *url.URL) string {
	segs := strings.Split(u.EscapedPath(), "/")
	for i, s := range segs {
		if d, err := url.PathUnescape(s); err == nil {
			s = d
		}
		segs[i] = uriEncode(s)
	}
	return strings.Join(segs, "/")
}

// headerValue is the canonical value of the signed header h: its values
// joined by commas, each trimmed with inner runs of spaces made one.
func headerValue(r *http.Request, h string) string {
	switch h {
	case "host":
		return r.Host
	case "content-length":
		if r.Header.Get("Content-Length") == "" && r.ContentLength >= 0 {
			return strconv.FormatInt(r.ContentLength, 10)
		}
	}
	vals := r.Header.Values(h)
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = strings.Join(strings.Fields(v), " ")
	}
	return strings.Join(out, ",")
}

// canonicalQuery sorts q by name, then value, each URI-encoded.
func canonicalQuery(q url.Values) string {
	type kv struct{ k, v string }
	var all []kv
	for k, vs := range q {
		for _, v := range vs {
			all = append(all, kv{uriEncode(k), uriEncode(v)})
		}
	}
	slices.SortFunc(all, func(a, b kv) int {
		if c := strings.Compare(a.k, b.k); c != 0 {
			return c
		}
		return strings.Compare(a.v, b.v)
	})
	var b strings.Builder
	for i, p := range all {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.k)
		b.WriteByte('=')
		b.WriteString(p.v)
	}
	return b.String()
}

// uriEncode percent-encodes every byte of s but the unreserved characters
// A-Z a-z 0-9 - _ . ~, in upper-case hex.
func uriEncode(s string) string {
	const hexdig = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9',
			c == '-', c == '_', c == '.', c == '~':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hexdig[c>>4])
			b.WriteByte(hexdig[c&15])
		}
	}
	return b.String()
}

// signature is the hex HMAC-SHA256 of the string to sign for canonical,
// with the signing key derived from secret and the credential's scope.
func signature(secret string, c credential, amzDate, canonical string) string {
	sum := sha256.Sum256([]byte(canonical))
	toSign := sigAlgorithm + "\n" + amzDate + "\n" + c.date + "/" + c.region + "/" + sigService + "/" + sigTerminal + "\n" + hex.EncodeToString(sum[:])
	k := hmacSHA256([]byte("AWS4"+secret), c.date)
	k = hmacSHA256(k, c.region)
	k = hmacSHA256(k, sigService)
	k = hmacSHA256(k, sigTerminal)
	return hex.EncodeToString(hmacSHA256(k, toSign))
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}
