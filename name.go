package insitu

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxKeyLen is the longest key, in bytes, that [Name.Validate] accepts.
const MaxKeyLen = 1024

// MaxBucketLen is the longest bucket name, in bytes, that [ValidateBucket] accepts.
const MaxBucketLen = 255

// Name identifies an object: a key within a bucket. Keys use "/" as the
// separator whatever the operating system.
type Name struct {
	Bucket string `json:"bucket"`
	Key    string `json:"key"`
}

// String returns "bucket/key", or just the key when the bucket is empty,
// or just the bucket when the key is.
func (n Name) String() string {
	if n.Bucket == "" || n.Key == "" {
		return n.Bucket + n.Key
	}
	return n.Bucket + "/" + n.Key
}

// Validate reports whether n is a name every part of insitu can store. It
// refuses, with an [InvalidArgument] error that names the problem: an empty
// key, a key over [MaxKeyLen] bytes, invalid UTF-8, a NUL byte, a leading
// "/", an empty, "." or ".." path segment, and an invalid bucket (see
// [ValidateBucket]; an empty bucket is allowed).
func (n Name) Validate() error {
	if n.Bucket != "" {
		if err := ValidateBucket(n.Bucket); err != nil {
			return err
		}
	}
	if msg := keyProblem(n.Key); msg != "" {
		return &Error{Code: InvalidArgument, Name: n, Msg: msg}
	}
	return nil
}

func keyProblem(key string) string {
	switch {
	case key == "":
		return "empty key"
	case len(key) > MaxKeyLen:
		return fmt.Sprintf("key is %d bytes, over the limit of %d", len(key), MaxKeyLen)
	case !utf8.ValidString(key):
		return "key is not valid UTF-8"
	case strings.IndexByte(key, 0) >= 0:
		return "key contains a NUL byte"
	case key[0] == '/':
		return `key starts with "/"`
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch seg {
		case "":
			return `key has an empty path segment ("//" or a trailing "/")`
		case ".", "..":
			return fmt.Sprintf("key has a %q path segment", seg)
		}
	}
	return ""
}

// ValidateBucket reports whether b is a usable bucket name: 1 to
// [MaxBucketLen] bytes of ASCII letters, digits, '.', '-' and '_', not "."
// or "..". A bad bucket is an [InvalidArgument] error.
func ValidateBucket(b string) error {
	bad := func(msg string) error {
		return &Error{Code: InvalidArgument, Name: Name{Bucket: b}, Msg: msg}
	}
	switch {
	case b == "":
		return bad("empty bucket name")
	case len(b) > MaxBucketLen:
		return bad(fmt.Sprintf("bucket name is %d bytes, over the limit of %d", len(b), MaxBucketLen))
	case b == "." || b == "..":
		return bad(fmt.Sprintf("bucket name %q is not allowed", b))
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_') {
			return bad(fmt.Sprintf("bucket name has the character %q; use letters, digits, '.', '-' and '_'", rune(c)))
		}
	}
	return nil
}
