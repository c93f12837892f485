package insitu

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"strings"
)

// Origin says where an output came from: the input it was made of (and
// which version of the input's bytes), the transform that made it and a
// digest of the args it was given. A sink that can record it next to the
// output (an [OriginSink]) keeps it with the bytes, and a run told to
// skip unchanged outputs (pipeline.Options.SkipUnchanged) redoes exactly
// the outputs whose recorded origin differs from the one it would record.
type Origin struct {
	// Input is the name of the object the output was made from.
	Input Name
	// Version is the input's Object.Version when the output was made: an
	// ETag, or size and modification time; "" when the source could not
	// tell.
	Version string
	// Transform identifies the transform and its behaviour (such as
	// pipeline.Options.TransformID).
	Transform string
	// Args is [ArgsDigest] of the args the transform was given.
	Args string
}

// MaxOriginLen is the longest text of an [Origin] that [ParseOrigin]
// accepts, in bytes, so that it fits in an HTTP header, an S3 object's
// user metadata (2 KiB on AWS) and a file's extended attribute. An origin
// whose text is longer (a long input name of non-ASCII characters, say) is
// recorded by no sink of this module: such outputs are always made again
// by a run that skips unchanged outputs.
const MaxOriginLen = 2048

// ArgsDigest returns the digest of args that an [Origin] records: the
// first 16 bytes of their SHA-256, as 32 lowercase hexadecimal digits.
// Args hold whatever a job passes (they may carry secrets); the digest
// tells whether they changed without keeping them.
func ArgsDigest(args string) string {
	sum := sha256.Sum256([]byte(args))
	return hex.EncodeToString(sum[:16])
}

// The keys of an origin's text.
const (
	originArgs      = "args"
	originInput     = "input"
	originTransform = "transform"
	originVersion   = "version"
)

// String returns o's canonical text: its four fields as a URL query with
// the keys in order, "args=…&input=bucket%2Fkey&transform=…&version=…"
// (the input as "bucket/key", the bucket possibly empty). The text is
// printable ASCII without spaces, fit for an HTTP header, S3 user
// metadata and an extended attribute; two origins are equal exactly when
// their texts are. [ParseOrigin] reads it back.
func (o Origin) String() string {
	// What url.Values.Encode writes for the four keys, which sort in this
	// order and need no escaping, without building and sorting a map
	// (a put of every output writes one, a GET of it reads one).
	// TestOriginStringIsEncode holds the two equal.
	args, version := url.QueryEscape(o.Args), url.QueryEscape(o.Version)
	input, transform := url.QueryEscape(o.Input.Bucket+"/"+o.Input.Key), url.QueryEscape(o.Transform)
	var b strings.Builder
	b.Grow(len(originArgs) + len(originInput) + len(originTransform) + len(originVersion) + 7 +
		len(args) + len(input) + len(transform) + len(version))
	for i, kv := range [4][2]string{{originArgs, args}, {originInput, input}, {originTransform, transform}, {originVersion, version}} {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(kv[0])
		b.WriteByte('=')
		b.WriteString(kv[1])
	}
	return b.String()
}

// ParseOrigin reads the text of an [Origin], as [Origin.String] writes
// it. Anything else is an [InvalidArgument] error: a text over
// [MaxOriginLen] bytes, one that is not the canonical text of an origin
// (keys missing, repeated, unknown or out of order, escapes written
// another way), an input that is not a valid [Name], or args that are not
// a digest of [ArgsDigest]'s form.
func ParseOrigin(s string) (Origin, error) {
	bad := func(format string, args ...any) (Origin, error) {
		return Origin{}, &Error{Code: InvalidArgument, Msg: "origin: " + fmt.Sprintf(format, args...)}
	}
	if len(s) > MaxOriginLen {
		return bad("%d bytes, over the limit of %d", len(s), MaxOriginLen)
	}
	if o, ok := parseCanonical(s); ok {
		return o, nil
	}
	// Not an origin's canonical text: find out what is wrong with it.
	v, err := url.ParseQuery(s)
	if err != nil {
		return bad("not a query text: %v", err)
	}
	for k, vals := range v {
		switch k {
		case originArgs, originInput, originTransform, originVersion:
		default:
			return bad("unknown key %q", truncate(k, 64))
		}
		if len(vals) != 1 {
			return bad("key %q appears %d times", k, len(vals))
		}
	}
	for _, k := range []string{originArgs, originInput, originTransform, originVersion} {
		if _, ok := v[k]; !ok {
			return bad("no %q", k)
		}
	}
	bucket, key, ok := strings.Cut(v.Get(originInput), "/")
	if !ok {
		return bad("input %q is not bucket/key", truncate(v.Get(originInput), 64))
	}
	o := Origin{Input: Name{Bucket: bucket, Key: key}, Version: v.Get(originVersion),
		Transform: v.Get(originTransform), Args: v.Get(originArgs)}
	if err := o.Input.Validate(); err != nil {
		return Origin{}, &Error{Code: InvalidArgument, Msg: "origin: bad input", Err: err}
	}
	if !isDigest(o.Args) {
		return bad("args %q is not 32 lowercase hexadecimal digits", truncate(o.Args, 64))
	}
	if o.String() != s {
		return bad("not in canonical form")
	}
	return o, nil
}

// parseCanonical reads s as an origin's canonical text, the four keys in
// their order, without the map of url.ParseQuery; it reports false for
// anything else, which ParseOrigin then reads the slow way to say what is
// wrong.
func parseCanonical(s string) (Origin, bool) {
	var vals [4]string
	rest := s
	for i, k := range [4]string{originArgs, originInput, originTransform, originVersion} {
		if i > 0 {
			if rest == "" || rest[0] != '&' {
				return Origin{}, false
			}
			rest = rest[1:]
		}
		if len(rest) <= len(k) || rest[:len(k)] != k || rest[len(k)] != '=' {
			return Origin{}, false
		}
		rest = rest[len(k)+1:]
		end := strings.IndexByte(rest, '&')
		if end < 0 {
			end = len(rest)
		}
		v, err := url.QueryUnescape(rest[:end])
		if err != nil {
			return Origin{}, false
		}
		vals[i], rest = v, rest[end:]
	}
	bucket, key, ok := strings.Cut(vals[1], "/")
	if rest != "" || !ok {
		return Origin{}, false
	}
	o := Origin{Input: Name{Bucket: bucket, Key: key}, Args: vals[0], Transform: vals[2], Version: vals[3]}
	if o.Input.Validate() != nil || !isDigest(o.Args) || o.String() != s {
		return Origin{}, false
	}
	return o, true
}

// isDigest reports whether s has the form of an [ArgsDigest].
func isDigest(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := range len(s) {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// OriginSink is a [Sink] that can record an output's [Origin] with it.
type OriginSink interface {
	Sink
	// PutOrigin is Put, with origin stored together with the bytes: the
	// object and its origin become visible at once, and an object is never
	// visible with the origin of an older one. Stat then returns the
	// origin's text in Object.Origin. A sink that cannot record an
	// origin for an object (a file system without extended attributes, an
	// origin over MaxOriginLen) stores the bytes alone, with no origin,
	// as Put does.
	PutOrigin(ctx context.Context, name Name, r io.Reader, size int64, origin Origin) (PutResult, error)
}
