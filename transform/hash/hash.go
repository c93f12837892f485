// Package hash provides transforms whose output is a digest of the input:
// [MD5], [SHA256] and [XXH64], plus [New] for any other [hash.Hash].
//
// The output is the digest as lowercase hexadecimal digits with no
// trailing newline (32 characters for MD5, 64 for SHA-256, 16 for XXH64),
// which is what the md5 and hash-with-args transformers of AIStore's
// ais-etl catalog return (hashlib's hexdigest().encode(), nothing
// appended), so outputs compare equal to theirs byte for byte.
//
// The input is streamed through the hash: no transform here holds more
// than one read buffer of it in memory. Each transform is safe for
// concurrent use; every call makes its own hash state. The transforms of
// MD5, SHA256 and XXH64 have a String method that returns their name
// ("md5", "sha256", "xxh64"), by which a transform.Chain names a failing
// stage.
package hash

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	stdhash "hash"
	"io"
	"strconv"
	"strings"

	"github.com/cespare/xxhash/v2"

	"github.com/insitu-data/insitu"
)

// New returns a transform whose output is the lowercase hex digest of the
// input under the hash newHash returns. newHash gets the job's
// [insitu.Input.Args] and may reject them with an error, which fails the
// object with that error (make it an [insitu.InvalidArgument] error when
// the args are at fault). newHash is called once per object.
func New(newHash func(args string) (stdhash.Hash, error)) insitu.Transform {
	return insitu.TransformFunc(func(ctx context.Context, in *insitu.Input, out io.Writer) error {
		h, err := newHash(in.Args)
		if err != nil {
			return err
		}
		if _, err := io.Copy(h, ctxReader{ctx, in.Body}); err != nil {
			return err
		}
		_, err = io.WriteString(out, hex.EncodeToString(h.Sum(nil)))
		return err
	})
}

// MD5 returns the transform whose output is the MD5 digest of the input
// as 32 lowercase hex digits, no newline. It ignores the job's args.
func MD5() insitu.Transform {
	return named{"md5", New(func(string) (stdhash.Hash, error) { return md5.New(), nil })}
}

// SHA256 returns the transform whose output is the SHA-256 digest of the
// input as 64 lowercase hex digits, no newline. It ignores the job's args.
func SHA256() insitu.Transform {
	return named{"sha256", New(func(string) (stdhash.Hash, error) { return sha256.New(), nil })}
}

// XXH64 returns the transform whose output is the XXH64 digest of the
// input as 16 lowercase hex digits, no newline (the same digest as
// [insitu.PutResult.Checksum] for seed 0). The job's args are the seed:
// empty (or only spaces) for 0, else an unsigned decimal integer below
// 2^64. Any other args fail the object with [insitu.InvalidArgument]
// (AIStore's hash-with-args transformer falls back to its default seed
// instead; here a typo in a job's args is an error, not a silent seed 0).
func XXH64() insitu.Transform {
	return named{"xxh64", New(func(args string) (stdhash.Hash, error) {
		seed, err := ParseSeed(args)
		if err != nil {
			return nil, err
		}
		return xxhash.NewWithSeed(seed), nil
	})}
}

// ParseSeed parses the args of [XXH64]: "" (after trimming spaces) is
// seed 0, else an unsigned decimal integer. Anything else is an
// [insitu.InvalidArgument] error.
func ParseSeed(args string) (uint64, error) {
	s := strings.TrimSpace(args)
	if s == "" {
		return 0, nil
	}
	seed, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, &insitu.Error{Code: insitu.InvalidArgument,
			Msg: fmt.Sprintf("xxh64: args %q: want an unsigned decimal seed, or none for 0", args)}
	}
	return seed, nil
}

// ctxReader is r that fails with the context's error once ctx is done, so
// that hashing a long input stops soon after a cancel.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// named is a transform with a name, which its String method returns, so
// that a chain's errors (transform.Chain) can say which stage failed.
type named struct {
	name string
	t    insitu.Transform
}

func (n named) Transform(ctx context.Context, in *insitu.Input, out io.Writer) error {
	return n.t.Transform(ctx, in, out)
}

func (n named) String() string { return n.name }
