package hash_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/transform/hash"
)

// testdata is the project's copy of the ais-etl test files; their md5 and
// XXH64 known answers are in its README, the SHA-256 ones are sha256sum's.
const testdata = "../../internal/testdata"

func run(t *testing.T, tr insitu.Transform, file, args string) (string, error) {
	t.Helper()
	f, err := os.Open(filepath.Join(testdata, file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out bytes.Buffer
	err = tr.Transform(t.Context(), &insitu.Input{Object: insitu.Object{Name: insitu.Name{Bucket: "b", Key: file}, Size: -1}, Args: args, Body: f}, &out)
	return out.String(), err
}

func TestKnownAnswers(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		tr   insitu.Transform
		file string
		args string
		want string
	}{
		{"md5", hash.MD5(), "test-audio-flac.flac", "", "7239b48a91efd4e82d9d371bc71dc61a"},
		{"md5", hash.MD5(), "test-audio-mp3.mp3", "", "34bb2fcd07501c396078d7902f783b56"},
		{"md5", hash.MD5(), "test-audio-wav.wav", "", "4dca39911095aec555e37f5e3ee89f84"},
		{"md5", hash.MD5(), "test-image.jpg", "ignored", "33b8d66b1a703796ea16e370dcbcc68d"},
		{"md5", hash.MD5(), "test-text.txt", "", "7c62ad0eef19d3cc595bd60727555502"},
		{"sha256", hash.SHA256(), "test-image.jpg", "", "a6017e9fb7c8e34b180d951857f26b07351c5c673fbf0d33a052a0d3eabe55ec"},
		{"sha256", hash.SHA256(), "test-text.txt", "", "31220aeda88a8c821275ea3f45024344520ed17f32be0165cf6412517dcf5b71"},
		{"sha256", hash.SHA256(), "test-audio-wav.wav", "", "bd14ce42b0a4ac54898d0d702336fa26f637b6fac59693a32b594bc91ca48a8e"},
		{"xxh64", hash.XXH64(), "test-text.txt", "", "4d274921566a7ab3"},
		{"xxh64", hash.XXH64(), "test-text.txt", "42", "e31ae61f6b8c93a9"},
		{"xxh64", hash.XXH64(), "test-image.jpg", " 0 ", "4747d15e3ea12932"},
		{"xxh64", hash.XXH64(), "test-image.jpg", "42", "822f702067e280e9"},
	}
	for _, tc := range cases {
		t.Run(tc.name+"/"+tc.file+"/"+tc.args, func(t *testing.T) {
			t.Parallel()
			got, err := run(t, tc.tr, tc.file, tc.args)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("output %q, want %q (no newline)", got, tc.want)
			}
		})
	}
}

func TestXXH64BadSeed(t *testing.T) {
	t.Parallel()
	for _, args := range []string{"-1", "abc", "42 --x", "18446744073709551616"} {
		out, err := run(t, hash.XXH64(), "test-text.txt", args)
		if !errors.Is(err, insitu.InvalidArgument) || !strings.Contains(err.Error(), "seed") {
			t.Errorf("args %q: err %v, want InvalidArgument about the seed", args, err)
		}
		if out != "" {
			t.Errorf("args %q: wrote %q", args, out)
		}
	}
}

func TestEmptyInput(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	err := hash.MD5().Transform(t.Context(), &insitu.Input{Body: strings.NewReader("")}, &out)
	if err != nil || out.String() != "d41d8cd98f00b204e9800998ecf8427e" {
		t.Errorf("md5 of nothing: %q, %v", out.String(), err)
	}
}

func TestCanceled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var out bytes.Buffer
	err := hash.SHA256().Transform(ctx, &insitu.Input{Body: strings.NewReader("x")}, &out)
	if !errors.Is(err, context.Canceled) || out.Len() != 0 {
		t.Errorf("canceled: err %v, out %q", err, out.String())
	}
}
