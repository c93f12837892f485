package insitu_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/insitu-data/insitu"
)

func TestArgsDigest(t *testing.T) {
	t.Parallel()
	// The first 16 bytes of SHA-256("") and SHA-256("-ar 44100").
	for args, want := range map[string]string{
		"":          "e3b0c44298fc1c149afbf4c8996fb924",
		"-ar 44100": "9aa7dbfbc189908e7661be1dd28ec59b",
	} {
		if got := insitu.ArgsDigest(args); got != want || len(got) != 32 {
			t.Errorf("ArgsDigest(%q) = %q, want %q", args, got, want)
		}
	}
	if insitu.ArgsDigest("a") == insitu.ArgsDigest("b") {
		t.Error("two args have one digest")
	}
}

func TestOriginRoundTrip(t *testing.T) {
	t.Parallel()
	for _, o := range []insitu.Origin{
		{Input: insitu.Name{Bucket: "flac", Key: "a/b.flac"}, Version: "123-1700000000000000000", Transform: "ffmpeg-wav", Args: insitu.ArgsDigest("")},
		{Input: insitu.Name{Key: "no-bucket.txt"}, Args: insitu.ArgsDigest("x")},
		{Input: insitu.Name{Bucket: "b", Key: "ünïcode/ key with spaces&=%+?#.txt"}, Version: `"etag-3"`, Transform: "T/2 \x01\n", Args: insitu.ArgsDigest("y")},
		{Input: insitu.Name{Bucket: "b", Key: strings.Repeat("k", insitu.MaxKeyLen)}, Version: "v", Transform: "t", Args: insitu.ArgsDigest("")},
	} {
		s := o.String()
		for i := range len(s) {
			if c := s[i]; c <= ' ' || c >= 0x7f {
				t.Fatalf("String() = %q: byte %#x at %d is not printable ASCII", s, c, i)
			}
		}
		got, err := insitu.ParseOrigin(s)
		if err != nil {
			t.Fatalf("ParseOrigin(%q): %v", s, err)
		}
		if got != o {
			t.Errorf("ParseOrigin(String()) = %+v, want %+v", got, o)
		}
	}
	o := insitu.Origin{Input: insitu.Name{Bucket: "b", Key: "k"}, Version: "v1", Transform: "t", Args: insitu.ArgsDigest("")}
	if want := "args=e3b0c44298fc1c149afbf4c8996fb924&input=b%2Fk&transform=t&version=v1"; o.String() != want {
		t.Errorf("String() = %q, want %q", o.String(), want)
	}
	// Each field changes the text.
	for _, other := range []insitu.Origin{
		{Input: insitu.Name{Bucket: "b", Key: "k2"}, Version: "v1", Transform: "t", Args: o.Args},
		{Input: insitu.Name{Bucket: "b2", Key: "k"}, Version: "v1", Transform: "t", Args: o.Args},
		{Input: o.Input, Version: "v2", Transform: "t", Args: o.Args},
		{Input: o.Input, Version: "v1", Transform: "t2", Args: o.Args},
		{Input: o.Input, Version: "v1", Transform: "t", Args: insitu.ArgsDigest("x")},
	} {
		if other.String() == o.String() {
			t.Errorf("%+v and %+v have one text", other, o)
		}
	}
}

func TestParseOriginRefuses(t *testing.T) {
	t.Parallel()
	good := insitu.Origin{Input: insitu.Name{Bucket: "b", Key: "k"}, Version: "v", Transform: "t", Args: insitu.ArgsDigest("")}.String()
	d := insitu.ArgsDigest("")
	for _, s := range []string{
		"",
		"garbage",
		"%zz",
		"args=" + d,
		"args=" + d + "&input=b%2Fk&transform=t", // no version
		"args=" + d + "&input=b%2Fk&transform=t&version=v&extra=1",                // unknown key
		"args=" + d + "&input=b%2Fk&transform=t&version=v&version=w",              // repeated
		"input=b%2Fk&args=" + d + "&transform=t&version=v",                        // out of order
		"args=" + d + "&input=b/k&transform=t&version=v",                          // not escaped as String does
		"args=" + d + "&input=b%2fk&transform=t&version=v",                        // lower-case escape
		"args=" + d + "&input=b%2Fk&transform=t&version=v&",                       // trailing &
		"args=" + d + "&input=bk&transform=t&version=v",                           // no "/"
		"args=" + d + "&input=b%2F&transform=t&version=v",                         // empty key
		"args=" + d + "&input=b%2F..%2Fx&transform=t&version=v",                   // ".." segment
		"args=" + d + "&input=b%21%2Fk&transform=t&version=v",                     // bad bucket
		"args=" + d + "&input=b%2F%FF&transform=t&version=v",                      // not UTF-8
		"args=" + d + "&input=b%2Fk%00&transform=t&version=v",                     // NUL
		"args=E3B0C44298FC1C149AFBF4C8996FB924&input=b%2Fk&transform=t&version=v", // upper-case digest
		"args=e3b0&input=b%2Fk&transform=t&version=v",                             // short digest
		"args=&input=b%2Fk&transform=t&version=v",                                 // no digest
		good + strings.Repeat("x", insitu.MaxOriginLen),                           // too long
		" " + good,
		good + "\n",
	} {
		_, err := insitu.ParseOrigin(s)
		if !errors.Is(err, insitu.InvalidArgument) {
			t.Errorf("ParseOrigin(%.80q) = %v, want InvalidArgument", s, err)
		}
	}
	if _, err := insitu.ParseOrigin(good); err != nil {
		t.Errorf("ParseOrigin(%q): %v", good, err)
	}
}

// FuzzParseOrigin: ParseOrigin, which reads the Insitu-Origin and
// Insitu-Put-Origin headers and the put_origin of an OPEN, never panics,
// refuses with InvalidArgument, and accepts only canonical, header-safe
// text. Seeds: testdata/fuzz/FuzzParseOrigin.
func FuzzParseOrigin(f *testing.F) {
	f.Add(insitu.Origin{Input: insitu.Name{Bucket: "b", Key: "k"}, Version: "v", Transform: "t", Args: insitu.ArgsDigest("")}.String())
	f.Add(insitu.Origin{Input: insitu.Name{Key: "ü/ x"}, Args: insitu.ArgsDigest("a")}.String())
	f.Add("args=e3b0c44298fc1c149afbf4c8996fb924&input=b%2Fk&transform=t&version=v&version=w")
	f.Add("%")
	f.Fuzz(func(t *testing.T, s string) {
		o, err := insitu.ParseOrigin(s)
		if err != nil {
			if !errors.Is(err, insitu.InvalidArgument) {
				t.Fatalf("ParseOrigin(%q) = %v, want InvalidArgument", s, err)
			}
			return
		}
		// Only the canonical text parses, and it is header-safe.
		if o.String() != s {
			t.Fatalf("ParseOrigin(%q) = %+v, whose text is %q", s, o, o.String())
		}
		if len(s) > insitu.MaxOriginLen {
			t.Fatalf("ParseOrigin accepted %d bytes", len(s))
		}
		for i := range len(s) {
			if c := s[i]; c <= ' ' || c >= 0x7f {
				t.Fatalf("ParseOrigin accepted %q, with byte %#x", s, c)
			}
		}
		if err := o.Input.Validate(); err != nil {
			t.Fatalf("ParseOrigin accepted the input %q: %v", o.Input, err)
		}
	})
}
