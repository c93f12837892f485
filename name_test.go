package insitu_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/insitu-data/insitu"
)

func TestNameValidate(t *testing.T) {
	valid := []insitu.Name{
		{Key: "a"},
		{Bucket: "audio", Key: "speaker-1/clip 0001.flac"},
		{Bucket: "b", Key: "ünïcödé/ключ/日本.txt"},
		{Bucket: "b", Key: "..a/.b/c.."},
		{Bucket: "B_1.x-y", Key: strings.Repeat("k", insitu.MaxKeyLen)},
	}
	for _, n := range valid {
		if err := n.Validate(); err != nil {
			t.Errorf("Validate(%q) = %v, want nil", n, err)
		}
	}
	invalid := []struct {
		name insitu.Name
		want string // a word the message must contain
	}{
		{insitu.Name{Bucket: "b"}, "empty key"},
		{insitu.Name{Key: strings.Repeat("k", insitu.MaxKeyLen+1)}, "over the limit"},
		{insitu.Name{Key: "bad\xffutf8"}, "UTF-8"},
		{insitu.Name{Key: "nul\x00byte"}, "NUL"},
		{insitu.Name{Key: "/abs/path"}, `starts with "/"`},
		{insitu.Name{Key: "a/../b"}, `".."`},
		{insitu.Name{Key: ".."}, `".."`},
		{insitu.Name{Key: "./a"}, `"."`},
		{insitu.Name{Key: "a//b"}, "empty path segment"},
		{insitu.Name{Key: "dir/"}, "empty path segment"},
		{insitu.Name{Bucket: "has/slash", Key: "k"}, "character"},
		{insitu.Name{Bucket: "..", Key: "k"}, "not allowed"},
		{insitu.Name{Bucket: strings.Repeat("b", insitu.MaxBucketLen+1), Key: "k"}, "over the limit"},
	}
	for _, tc := range invalid {
		err := tc.name.Validate()
		if !errors.Is(err, insitu.InvalidArgument) {
			t.Errorf("Validate(%q) = %v, want an InvalidArgument error", tc.name, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%q) = %q, want it to mention %q", tc.name, err, tc.want)
		}
	}
}

func TestNameString(t *testing.T) {
	if got := (insitu.Name{Bucket: "b", Key: "k/x"}).String(); got != "b/k/x" {
		t.Errorf("String = %q", got)
	}
	if got := (insitu.Name{Key: "k"}).String(); got != "k" {
		t.Errorf("String without bucket = %q", got)
	}
	if got := (insitu.Name{Bucket: "b"}).String(); got != "b" {
		t.Errorf("String without key = %q", got)
	}
}

func FuzzNameValidate(f *testing.F) {
	for _, s := range []string{"a", "a/b", "../x", "/x", "a\x00", "a//b", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		err := insitu.Name{Key: key}.Validate()
		if err != nil {
			if !errors.Is(err, insitu.InvalidArgument) {
				t.Fatalf("error %v is not InvalidArgument", err)
			}
			return
		}
		// A valid key is safe to join under a root directory.
		for seg := range strings.SplitSeq(key, "/") {
			if seg == "" || seg == "." || seg == ".." || strings.ContainsRune(seg, 0) {
				t.Fatalf("accepted unsafe key %q", key)
			}
		}
	})
}
