// Package transform composes transforms: [Chain] runs several
// [insitu.Transform]s as one, streaming each stage's output into the next.
//
// The catalog of ready transforms lives in the packages below this one:
// transform/hash (MD5, SHA-256 and XXH64 digests), transform/compress
// (gzip and Zstandard, both ways), transform/ffmpeg (audio transcoding)
// and transform/wav (a WAV header parser). Each is a plain
// [insitu.Transform], so a chain of them is one too, usable in-process,
// served by a transform server or registered on a node.
package transform
