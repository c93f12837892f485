package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var epochLine = regexp.MustCompile(`(?m)^epoch (\d+) digest ([0-9a-f]{16}) samples (\d+)$`)

// digests runs the program with args and returns its epoch lines' digests,
// checking that every epoch has samples samples.
func digests(t *testing.T, samples string, args ...string) []string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	args = append([]string{"-samples", samples, "-size", "512", "-batch", "7"}, args...)
	if status := run(t.Context(), args, &stdout, &stderr); status != 0 {
		t.Fatalf("loader %v: status %d\n%s%s", args, status, &stdout, &stderr)
	}
	t.Logf("loader %v:\n%s", args, &stdout)
	var ds []string
	for i, m := range epochLine.FindAllStringSubmatch(stdout.String(), -1) {
		if m[1] != string(rune('0'+i)) || m[3] != samples {
			t.Errorf("line %q; want epoch %d with %s samples", m[0], i, samples)
		}
		ds = append(ds, m[2])
	}
	if len(ds) != 3 {
		t.Fatalf("%d epoch lines; want 3", len(ds))
	}
	if !bytes.Contains(stdout.Bytes(), []byte("time to first batch: ")) || !bytes.Contains(stdout.Bytes(), []byte("samples/s: ")) {
		t.Error("no time to first batch or samples/s")
	}
	return ds
}

// TestSeed: the same seed prints the same digests, another seed other
// ones, and the epochs of a run differ from each other.
func TestSeed(t *testing.T) {
	a := digests(t, "300", "-seed", "5")
	b := digests(t, "300", "-seed", "5", "-prefetch", "32", "-read-batch", "1")
	c := digests(t, "300", "-seed", "6")
	if !slices.Equal(a, b) {
		t.Errorf("seed 5 twice: %v and %v", a, b)
	}
	for i := range a {
		if a[i] == c[i] {
			t.Errorf("epoch %d: seeds 5 and 6 give digest %s", i, a[i])
		}
	}
	if a[0] == a[1] || a[1] == a[2] {
		t.Errorf("epochs with the same order: %v", a)
	}
}

// TestListing: a run with -listing writes the listing, a second one
// reads it and prints the same digests.
func TestListing(t *testing.T) {
	file := filepath.Join(t.TempDir(), "listing")
	a := digests(t, "200", "-seed", "3", "-listing", file)
	if _, err := os.Stat(file); err != nil {
		t.Fatal(err)
	}
	b := digests(t, "200", "-seed", "3", "-listing", file)
	if !slices.Equal(a, b) {
		t.Errorf("with the listing written and read: %v and %v", a, b)
	}
	var out bytes.Buffer
	if status := run(t.Context(), []string{"-samples", "100", "-listing", file}, &out, &out); status != 1 {
		t.Errorf("a listing of another dataset: status %d; want 1\n%s", status, &out)
	}
}

// TestUsage: bad flags are status 2.
func TestUsage(t *testing.T) {
	var out bytes.Buffer
	for _, args := range [][]string{{"-samples", "0"}, {"-nope"}, {"extra"}} {
		if status := run(t.Context(), args, &out, &out); status != 2 {
			t.Errorf("%v: status %d; want 2", args, status)
		}
	}
}
