package atomicfile_test

import (
	"strings"
	"testing"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/atomicfile"
)

func originText(input insitu.Name, version, transform, args string) string {
	return insitu.Origin{Input: input, Version: version, Transform: transform, Args: insitu.ArgsDigest(args)}.String()
}

func TestOriginRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		text, key string
		max       int // the longest the compact form may be; 0: no bound
	}{
		// A bucket-to-bucket job: the key is the input's (smallfiles).
		{originText(insitu.Name{Bucket: "in", Key: "d0009/f0009261"}, "4096-1796356836434057721", "identity", ""), "d0009/f0009261", 56},
		{originText(insitu.Name{Bucket: "in", Key: "d0009/f0009261"}, "4096-1796356836434057721", "identity", ""), "d0009/f0009262", 56},
		// The flagship: another extension (a job's transform is named
		// by the job, "wav" here).
		{originText(insitu.Name{Bucket: "flac", Key: "speech/clip-0001.flac"}, "1048576-1796356836434057721", "wav", "-ac 1 -ar 16000"), "speech/clip-0001.wav", 56},
		// A long transform ID: over ext4's inline room, still exact.
		{originText(insitu.Name{Bucket: "flac", Key: "speech/clip-0001.flac"}, "1048576-1796356836434057721", "ffmpeg-wav-v1", "-ac 1 -ar 16000"), "speech/clip-0001.wav", 0},
		// Unrelated keys, an ETag, no version, an empty bucket.
		{originText(insitu.Name{Bucket: "b", Key: "x/y/z"}, `"9b2cf535f27731c974343645a3985328"`, "t", "a"), "other", 0},
		{originText(insitu.Name{Bucket: "b", Key: "k"}, "", "t", ""), "k", 0},
		{originText(insitu.Name{Bucket: "", Key: "k"}, "0-0", "", ""), "kk", 0},
		// Versions that look numeric but are not as FormatUint writes them.
		{originText(insitu.Name{Bucket: "b", Key: "k"}, "01-2", "t", ""), "k", 0},
		{originText(insitu.Name{Bucket: "b", Key: "k"}, "1-2-3", "t", ""), "k", 0},
		{originText(insitu.Name{Bucket: "b", Key: "k"}, "18446744073709551616-1", "t", ""), "k", 0},
		// A key shorter than the output's, and a longer one.
		{originText(insitu.Name{Bucket: "b", Key: "a/b"}, "1-1", "t", ""), "a/bc", 0},
		{originText(insitu.Name{Bucket: "b", Key: "a/bcd/é"}, "1-1", "t", ""), "a/b", 0},
	} {
		v := atomicfile.EncodeOrigin(tc.text, tc.key)
		if strings.HasPrefix(v, "args=") {
			t.Errorf("EncodeOrigin(%q) kept the text", tc.text)
		}
		if tc.max > 0 && len(v) > tc.max {
			t.Errorf("EncodeOrigin(%q, %q) is %d bytes, over %d", tc.text, tc.key, len(v), tc.max)
		}
		if got := atomicfile.DecodeOrigin(v, tc.key); got != tc.text {
			t.Errorf("DecodeOrigin(EncodeOrigin(%q, %q)) = %q", tc.text, tc.key, got)
		}
		// The text as stores wrote it before, read as it is.
		if got := atomicfile.DecodeOrigin(tc.text, "any"); got != tc.text {
			t.Errorf("DecodeOrigin of the text %q = %q", tc.text, got)
		}
	}
}

func TestDecodeOriginBad(t *testing.T) {
	good := atomicfile.EncodeOrigin(originText(insitu.Name{Bucket: "in", Key: "k"}, "1-2", "t", ""), "k")
	for _, v := range []string{
		"", "x", "args=", "args=zz&input=b%2Fk&transform=t&version=", "\x01",
		good[:len(good)-1], good + "x", // short, long
		"\x02" + good[1:], // an unknown form
	} {
		if got := atomicfile.DecodeOrigin(v, "k"); got != "" {
			t.Errorf("DecodeOrigin(%q) = %q, want none", v, got)
		}
	}
	// Read with another key (a file renamed or copied): none, not an
	// origin of another input.
	for _, key := range []string{"", "kk", "j"} {
		if got := atomicfile.DecodeOrigin(good, key); got != "" {
			t.Errorf("DecodeOrigin with the key %q = %q, want none", key, got)
		}
	}
	// Not an origin: kept as the text, which reads as none.
	if v := atomicfile.EncodeOrigin("origin", "k"); v != "origin" || atomicfile.DecodeOrigin(v, "k") != "" {
		t.Errorf("EncodeOrigin of a non-origin = %q", v)
	}
}

func FuzzDecodeOrigin(f *testing.F) {
	f.Add(atomicfile.EncodeOrigin(originText(insitu.Name{Bucket: "in", Key: "d/f"}, "4096-17", "identity", ""), "d/f"), "d/f")
	f.Add(atomicfile.EncodeOrigin(originText(insitu.Name{Bucket: "b", Key: "x"}, `"etag"`, "t", "a"), "y"), "y")
	f.Add(originText(insitu.Name{Bucket: "b", Key: "x"}, "", "t", ""), "x")
	f.Fuzz(func(t *testing.T, value, key string) {
		text := atomicfile.DecodeOrigin(value, key)
		if text == "" {
			return
		}
		if _, err := insitu.ParseOrigin(text); err != nil {
			t.Fatalf("DecodeOrigin(%q, %q) = %q, not an origin: %v", value, key, text, err)
		}
		if got := atomicfile.DecodeOrigin(atomicfile.EncodeOrigin(text, key), key); got != text {
			t.Fatalf("round trip of %q with key %q: %q", text, key, got)
		}
	})
}
