package source_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/source"
)

func expand(t *testing.T, tmpl string) []string {
	t.Helper()
	seq, err := source.ExpandTemplate(tmpl)
	if err != nil {
		t.Fatalf("ExpandTemplate(%q): %v", tmpl, err)
	}
	return slices.Collect(seq)
}

func TestExpandTemplate(t *testing.T) {
	tests := []struct {
		tmpl string
		want []string
	}{
		{"plain/key.txt", []string{"plain/key.txt"}},
		{"shard-{0000..0003}.tar", []string{"shard-0000.tar", "shard-0001.tar", "shard-0002.tar", "shard-0003.tar"}},
		{"{0..10..5}", []string{"0", "5", "10"}},
		{"{0..9..4}", []string{"0", "4", "8"}},
		{"{8..11}", []string{"8", "9", "10", "11"}},
		{"{08..11}", []string{"08", "09", "10", "11"}},
		{"{00..3}", []string{"00", "01", "02", "03"}},
		{"{9..0010}", []string{"0009", "0010"}},
		{"{5..5}", []string{"5"}},
		{"{a,b,c}.flac", []string{"a.flac", "b.flac", "c.flac"}},
		{"x{a,}", []string{"xa", "x"}},
		{"{a,b}-{1..2}", []string{"a-1", "a-2", "b-1", "b-2"}},
		{"{a,b}{c,d}/{1..2}", []string{"ac/1", "ac/2", "ad/1", "ad/2", "bc/1", "bc/2", "bd/1", "bd/2"}},
		{"d/{.,..}{1..2}/f", []string{"d/.1/f", "d/.2/f", "d/..1/f", "d/..2/f"}},
		{"a..b/{x,y}", []string{"a..b/x", "a..b/y"}},
		{"{a/b,c}/d", []string{"a/b/d", "c/d"}},
		{"é/{ü,ß}", []string{"é/ü", "é/ß"}},
	}
	for _, tc := range tests {
		if got := expand(t, tc.tmpl); !slices.Equal(got, tc.want) {
			t.Errorf("ExpandTemplate(%q) = %q, want %q", tc.tmpl, got, tc.want)
		}
	}
}

func TestExpandTemplateCounts(t *testing.T) {
	got := expand(t, "{0..999}-{a,b}")
	if len(got) != 2000 || got[0] != "0-a" || got[1999] != "999-b" {
		t.Errorf("%d keys, first %q, last %q", len(got), got[0], got[len(got)-1])
	}
	seen := map[string]bool{}
	for _, k := range got {
		if seen[k] {
			t.Fatalf("duplicate key %q", k)
		}
		seen[k] = true
	}
}

func TestExpandTemplateErrors(t *testing.T) {
	tests := []struct{ tmpl, frag string }{
		{"a{b", "unmatched '{'"},
		{"{", "unmatched '{'"},
		{"a}b", "unmatched '}'"},
		{"{a,b}}", "unmatched '}'"},
		{"{a,{b,c}}", "do not nest"},
		{"x{}", "empty group"},
		{"{a}", "neither a range"},
		{"{a..z}", `start "a"`},
		{"{1..}", `end ""`},
		{"{..1}", `start ""`},
		{"{-1..1}", `start "-1"`},
		{"{1..2..3..4}", "more than start..end..step"},
		{"{5..1}", "start 5 is after end 1"},
		{"{0..10..0}", "step must be at least 1"},
		{"{0..10..-2}", `step "-2"`},
		{"{0..1234567890123456789}", "1 to 18 digits"},
		{"{0..99999}{0..10000}", "over 1000000000 names"},
		{"{0..999999999999999999}", "over 1000000000 names"},
		{"", "empty key"},
		{"/abs{1..2}", `starts with "/"`},
		{"a/{x,}/b", `"a//b"`},
		{"{.,a}/b", `"./b"`},
		{"a/{b,..}", `"a/.."`},
		{"a/{.,x}{.,y}/c", `"a/../c"`},
		{"{a,b}/", "trailing"},
		{"x\x00", "NUL"},
		{"\xff{1..2}", "UTF-8"},
		{strings.Repeat("k", 1020) + "{0..99999}", "1025 bytes"},
		{strings.Repeat("k", 1020) + "{a,bbbbb}", "1025 bytes"},
	}
	for _, tc := range tests {
		seq, err := source.ExpandTemplate(tc.tmpl)
		if seq != nil || !errors.Is(err, insitu.InvalidArgument) || !strings.Contains(err.Error(), tc.frag) {
			t.Errorf("ExpandTemplate(%.40q): %v, want InvalidArgument containing %q", tc.tmpl, err, tc.frag)
		}
	}
}

// TestExpandTemplateIsLazy takes a few keys of a billion: the expansion
// allocates per key taken, never for the whole set.
func TestExpandTemplateIsLazy(t *testing.T) {
	for _, tmpl := range []string{"obj-{000000000..999999999}", "{0..99999}/{0..9999}"} {
		seq, err := source.ExpandTemplate(tmpl)
		if err != nil {
			t.Fatal(err)
		}
		var first []string
		allocs := testing.AllocsPerRun(10, func() {
			first = first[:0]
			for k := range seq {
				first = append(first, k)
				if len(first) == 3 {
					break
				}
			}
		})
		if allocs > 10 {
			t.Errorf("%s: %v allocations to take 3 keys", tmpl, allocs)
		}
		want := map[string][]string{
			"obj-{000000000..999999999}": {"obj-000000000", "obj-000000001", "obj-000000002"},
			"{0..99999}/{0..9999}":       {"0/0", "0/1", "0/2"},
		}[tmpl]
		if !slices.Equal(first, want) {
			t.Errorf("%s: first keys %q, want %q", tmpl, first, want)
		}
	}
}

func TestTemplateSource(t *testing.T) {
	root := t.TempDir()
	files(t, root, "shard-1.tar", "shard-3.tar", "other")
	src, err := source.Template(newDir(t, root, nil), "bk", "shard-{1..3}.tar")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for obj, err := range src.Objects(context.Background()) {
		if err != nil {
			if !errors.Is(err, insitu.NotFound) || !strings.Contains(err.Error(), "bk/shard-2.tar") {
				t.Errorf("unexpected error %v", err)
			}
			got = append(got, "NotFound")
			continue
		}
		got = append(got, fmt.Sprintf("%s %d", obj.Name, obj.Size))
		rc, err := src.Open(context.Background(), obj)
		if err != nil {
			t.Fatal(err)
		}
		rc.Close()
	}
	if want := []string{"bk/shard-1.tar 11", "NotFound", "bk/shard-3.tar 11"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if _, err := source.Template(newDir(t, root, nil), "bad/bucket", "x"); !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("bad bucket: %v, want InvalidArgument", err)
	}
	if _, err := source.Template(newDir(t, root, nil), "", "a/{x,}/b"); !errors.Is(err, insitu.InvalidArgument) {
		t.Errorf("bad template: %v, want InvalidArgument", err)
	}
}

// refExpand is a plain reference expander for list-only templates: nil
// when the template is malformed.
func refExpand(tmpl string) []string {
	keys := []string{""}
	product := func(alts []string) {
		var next []string
		for _, k := range keys {
			for _, a := range alts {
				next = append(next, k+a)
			}
		}
		keys = next
	}
	for tmpl != "" {
		i := strings.IndexAny(tmpl, "{}")
		if i < 0 {
			i = len(tmpl)
		}
		if i < len(tmpl) && tmpl[i] == '}' {
			return nil
		}
		product([]string{tmpl[:i]})
		tmpl = tmpl[i:]
		if tmpl != "" { // a group
			j := strings.IndexAny(tmpl[1:], "{}")
			if j < 0 || tmpl[1+j] == '{' || !strings.Contains(tmpl[1:1+j], ",") {
				return nil
			}
			product(strings.Split(tmpl[1:1+j], ","))
			tmpl = tmpl[2+j:]
		}
	}
	return keys
}

// TestExpandTemplateChecksKeysExactly compares, for every template of up
// to 7 characters over a small alphabet, ExpandTemplate's static key check
// with validating each expanded key.
func TestExpandTemplateChecksKeysExactly(t *testing.T) {
	alphabet := []string{".", "/", "a", "{", "}", ","}
	var tmpls []string
	var gen func(s string)
	gen = func(s string) {
		tmpls = append(tmpls, s)
		if len(s) == 7 {
			return
		}
		for _, c := range alphabet {
			gen(s + c)
		}
	}
	gen("")
	for _, tmpl := range tmpls {
		ref := refExpand(tmpl)
		seq, err := source.ExpandTemplate(tmpl)
		if ref == nil {
			if err == nil {
				t.Errorf("%q: accepted a malformed template", tmpl)
			}
			continue
		}
		var bad error
		for _, k := range ref {
			if bad = (insitu.Name{Key: k}).Validate(); bad != nil {
				break
			}
		}
		switch {
		case bad == nil && err != nil:
			t.Errorf("%q: refused (%v), but every key is valid: %q", tmpl, err, ref)
		case bad != nil && err == nil:
			t.Errorf("%q: accepted, but %v", tmpl, bad)
		case err == nil:
			if got := slices.Collect(seq); !slices.Equal(got, ref) {
				t.Errorf("%q: keys %q, want %q", tmpl, got, ref)
			}
		}
	}
	t.Logf("checked %d templates", len(tmpls))
}
