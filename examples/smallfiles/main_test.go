package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestMain lets the test binary be the child processes that run measures
// (it re-executes itself with -child).
func TestMain(m *testing.M) {
	if slices.Contains(os.Args[1:], "-child") {
		os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// A small run of every mode: each configuration does all its objects, the
// outputs check out, and the table and JSON have every row.
func TestSmallRun(t *testing.T) {
	data := t.TempDir()
	js := filepath.Join(t.TempDir(), "rows.json")
	var out, errOut bytes.Buffer
	code := run(t.Context(), []string{"-n", "300", "-dir-n", "40", "-cluster-n", "60", "-rounds", "2",
		"-data", data, "-json", js}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	b, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	var rows []row
	if err := json.Unmarshal(b, &rows); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range rows {
		names = append(names, r.Config)
		if len(r.Seconds) != 2 || r.Median <= 0 || r.PeakRSS <= 0 {
			t.Errorf("%s: %+v", r.Config, r)
		}
		if !strings.HasSuffix(r.Config, "/floor") && r.RatioMedians <= 0 {
			t.Errorf("%s has no ratio to its floor", r.Config)
		}
	}
	want := []string{"discard/floor", "discard/insitu", "dir/floor", "dir/grouped", "dir/insitu", "cluster/floor", "cluster/insitu"}
	if !slices.Equal(names, want) {
		t.Errorf("rows %q, want %q", names, want)
	}
	if !strings.Contains(out.String(), "| discard/insitu | 300 |") {
		t.Errorf("the table lacks the discard/insitu row:\n%s", out.String())
	}
	// The cluster mode with placement by key: its inputs are a dataset
	// of their own, and its job's outputs are checked as the others'.
	out.Reset()
	errOut.Reset()
	if code := run(t.Context(), []string{"-modes", "cluster", "-cluster-n", "60", "-rounds", "1", "-placement", "key", "-data", data}, &out, &errOut); code != 0 {
		t.Fatalf("-placement key: exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "placement by key") || !strings.Contains(out.String(), "| cluster/insitu | 60 |") {
		t.Errorf("-placement key: the table lacks the placement or the cluster/insitu row:\n%s", out.String())
	}
	if _, err := os.Stat(filepath.Join(data, "cluster-3-60-4096-bykey.done")); err != nil {
		t.Errorf("-placement key: no dataset of its own: %v", err)
	}
	// The outputs of every run were removed; the inputs are kept for a
	// later run.
	ents, _ := os.ReadDir(data)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "out-") {
			t.Errorf("%s left behind", e.Name())
		}
	}
}

// Bad flags are exit status 2.
func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-modes", "nope"}, {"-n", "0"}, {"-rounds", "0"}, {"-placement", "bucket"}} {
		var out, errOut bytes.Buffer
		if code := run(t.Context(), args, &out, &errOut); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
}
