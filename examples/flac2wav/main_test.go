package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/insitu-data/insitu/internal/testutil"
	"github.com/insitu-data/insitu/transform/wav"
)

func requireFFmpeg(t *testing.T) {
	t.Helper()
	testutil.RequireTool(t, "ffmpeg", "apt-get install -y ffmpeg (Debian/Ubuntu) or brew install ffmpeg (macOS)")
}

// runMain runs the program with args and returns its status and output.
func runMain(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	status := run(t.Context(), args, &stdout, &stderr)
	t.Logf("flac2wav %s → %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), status, &stdout, &stderr)
	return status, stdout.String(), stderr.String()
}

func parseWAV(t *testing.T, path string) wav.Header {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	h, err := wav.Parse(f, fi.Size())
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if h.DataOffset+h.DataSize != fi.Size() {
		t.Fatalf("%s: data ends at %d, file is %d bytes", path, h.DataOffset+h.DataSize, fi.Size())
	}
	return h
}

func TestGeneratedSamples(t *testing.T) {
	requireFFmpeg(t)
	t.Setenv("TMPDIR", t.TempDir()) // the samples' temporary directory goes away with the test
	dst := filepath.Join(t.TempDir(), "out")
	status, stdout, _ := runMain(t, "-n", "3", "-dst", dst)
	if status != 0 {
		t.Fatalf("status %d, want 0", status)
	}
	for _, want := range []string{"listed 3, transformed 3, skipped 0, failed 0", "output: " + dst, "checked 3 WAV files"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q", want)
		}
	}
	ents, err := os.ReadDir(dst)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 3 {
		t.Fatalf("%d entries in %s, want 3", len(ents), dst)
	}
	for i := range 3 {
		h := parseWAV(t, filepath.Join(dst, "sample-000"+string(rune('0'+i))+".wav"))
		want := sampleSpec(i).Duration
		if h.Channels != 2 || h.SampleRate != 44100 {
			t.Errorf("sample %d: %v, want 2 ch, 44100 Hz", i, h)
		}
		if d := h.Duration() - want; d < -50*time.Millisecond || d > 50*time.Millisecond {
			t.Errorf("sample %d: duration %v, want %v", i, h.Duration(), want)
		}
		if want < 2*time.Second || want > 6*time.Second {
			t.Errorf("sample %d: generated %v long, want 2–6 s", i, want)
		}
	}
}

// copyFile copies the test input name to path, creating directories.
func copyFile(t *testing.T, name, path string) {
	t.Helper()
	b, err := os.ReadFile(testutil.Testdata(t, name))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestOwnFolder(t *testing.T) {
	requireFFmpeg(t)
	src, dst := t.TempDir(), t.TempDir()
	copyFile(t, "test-audio-flac.flac", filepath.Join(src, "a", "b", "one.flac"))
	copyFile(t, "test-audio-flac.flac", filepath.Join(src, "two.FLAC.flac"))
	copyFile(t, "test-audio-mp3.mp3", filepath.Join(src, "not-flac.mp3")) // not listed
	copyFile(t, "test-text.txt", filepath.Join(src, "broken.flac"))
	failures := filepath.Join(t.TempDir(), "failures.jsonl")

	status, stdout, _ := runMain(t, "-src", src, "-dst", dst, "-ac", "1", "-ar", "16000", "-workers", "2",
		"-timeout", "1m", "-continue-on-error", "-failures", failures)
	if status != 1 {
		t.Fatalf("status %d, want 1 (one file is broken)", status)
	}
	if !strings.Contains(stdout, "listed 3, transformed 2, skipped 0, failed 1") {
		t.Errorf("stdout lacks the counts")
	}
	for _, p := range []string{"a/b/one.wav", "two.FLAC.wav"} {
		h := parseWAV(t, filepath.Join(dst, p))
		if h.Channels != 1 || h.SampleRate != 16000 {
			t.Errorf("%s: %v, want 1 ch, 16000 Hz", p, h)
		}
		if d := h.Duration() - time.Second; d < -50*time.Millisecond || d > 50*time.Millisecond {
			t.Errorf("%s: duration %v, want 1.00 s", p, h.Duration())
		}
	}
	for _, p := range []string{"broken.wav", "not-flac.wav", "not-flac.mp3"} {
		if _, err := os.Stat(filepath.Join(dst, p)); !os.IsNotExist(err) {
			t.Errorf("%s exists in the output (err %v)", p, err)
		}
	}

	f, err := os.Open(failures)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("failures file line %q: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 1 {
		t.Fatalf("%d failures recorded, want 1", len(lines))
	}
	if name, _ := lines[0]["name"].(map[string]any); name["key"] != "broken.flac" || lines[0]["code"] != "invalid_argument" {
		t.Errorf("failure recorded as %v, want broken.flac with invalid_argument", lines[0])
	}

	// Again with -skip-existing: the two outputs are kept, the broken file
	// fails again, and without -continue-on-error the status is still 1.
	status, stdout, _ = runMain(t, "-src", src, "-dst", dst, "-ac", "1", "-ar", "16000", "-skip-existing", "-continue-on-error")
	if status != 1 || !strings.Contains(stdout, "listed 3, transformed 0, skipped 2, failed 1") {
		t.Errorf("second run: status %d, want 1 with 2 skipped", status)
	}
	if err := os.Remove(filepath.Join(src, "broken.flac")); err != nil {
		t.Fatal(err)
	}
	status, stdout, _ = runMain(t, "-src", src, "-dst", dst, "-ac", "1", "-ar", "16000", "-skip-existing")
	if status != 0 || !strings.Contains(stdout, "listed 2, transformed 0, skipped 2, failed 0") || !strings.Contains(stdout, "checked 2 WAV files") {
		t.Errorf("third run: status %d, want 0 with 2 skipped and checked", status)
	}
}

func TestMissingFFmpeg(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	status, _, stderr := runMain(t, "-n", "1")
	if status != 2 {
		t.Fatalf("status %d, want 2", status)
	}
	for _, want := range []string{"ffmpeg", "apt-get install -y ffmpeg", "brew install ffmpeg"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-n", "0"}, {"-ac", "0"}, {"-ar", "-1"}, {"-workers", "-2"}, {"-timeout", "-1s"}, {"-bogus"}, {"extra"}} {
		status, _, stderr := runMain(t, args...)
		if status != 2 || !strings.Contains(stderr, "Usage: flac2wav") {
			t.Errorf("%v: status %d, want 2 with the usage", args, status)
		}
	}
	if status, _, _ := runMain(t, "-h"); status != 0 {
		t.Errorf("-h: status %d, want 0", status)
	}
}

func TestMissingSource(t *testing.T) {
	requireFFmpeg(t)
	status, _, stderr := runMain(t, "-src", filepath.Join(t.TempDir(), "nope"), "-dst", t.TempDir())
	if status != 1 || !strings.Contains(stderr, "not_found") {
		t.Errorf("status %d, want 1 with a not_found error", status)
	}
}

// The default mode: an embedded cluster, every .wav on its owner.
func TestClusterMode(t *testing.T) {
	requireFFmpeg(t)
	t.Setenv("TMPDIR", t.TempDir())
	status, stdout, stderr := runMain(t, "-n", "4", "-nodes", "2", "-ac", "1", "-ar", "16000")
	if status != 0 {
		t.Fatalf("status %d, want 0", status)
	}
	// stderr is not a terminal: the progress is plain lines, the last one
	// marked.
	if !strings.Contains(stderr, " (final): 4/4 objects") || strings.Contains(stderr, "\r") {
		t.Errorf("stderr lacks the final progress line, or has a terminal's")
	}
	for _, want := range []string{
		"started 2 storage nodes",
		"seeded 4 objects",
		"listed 4, transformed 4, skipped 0, failed 0",
		"node n1: listed ", "node n2: listed ",
		"checked 4 WAV files: each exactly once, on its owner, 1 ch, 16000 Hz",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// The outputs are where the report says, and valid.
	outs, _ := filepath.Glob(filepath.Join(os.Getenv("TMPDIR"), "flac2wav-*", "cluster", "n*", "wav", "*.wav"))
	if len(outs) != 4 {
		t.Fatalf("found %d .wav files in the node stores, want 4: %v", len(outs), outs)
	}
	for _, p := range outs {
		if h := parseWAV(t, p); h.Channels != 1 || h.SampleRate != 16000 {
			t.Errorf("%s: %v", p, h)
		}
	}
}

// A user's folder seeded into the cluster: a broken file fails by name,
// the rest converts, and the failures file says which.
func TestClusterOwnFolderWithABrokenFile(t *testing.T) {
	requireFFmpeg(t)
	t.Setenv("TMPDIR", t.TempDir())
	src := t.TempDir()
	copyFile(t, "test-audio-flac.flac", filepath.Join(src, "a", "good.flac"))
	copyFile(t, "test-text.txt", filepath.Join(src, "b", "broken.flac"))
	failures := filepath.Join(t.TempDir(), "failures.jsonl")
	status, stdout, _ := runMain(t, "-src", src, "-continue-on-error", "-failures", failures)
	if status != 1 {
		t.Fatalf("status %d, want 1", status)
	}
	if !strings.Contains(stdout, "listed 2, transformed 1, skipped 0, failed 1") || !strings.Contains(stdout, "checked 1 WAV files") {
		t.Fatalf("unexpected report:\n%s", stdout)
	}
	b, err := os.ReadFile(failures)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Name struct{ Bucket, Key string } `json:"name"`
		Code string                       `json:"code"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(b), &f); err != nil || f.Name.Key != "b/broken.flac" || f.Code != "invalid_argument" {
		t.Fatalf("failures file %q: %+v, %v", b, f, err)
	}
}
