package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/insitu-data/insitu/transform/ffmpeg/ffmpegtest"
)

// Every mode and transport from the command line, on one set of generated
// samples, end to end with ffmpeg: every .wav exactly once, on its owner,
// valid.
func TestModes(t *testing.T) {
	if testing.Short() {
		t.Skip("every mode and transport with ffmpeg: a long test")
	}
	requireFFmpeg(t)
	t.Setenv("TMPDIR", t.TempDir())
	src := filepath.Join(t.TempDir(), "flac")
	if _, err := ffmpegtest.GenerateSet(t.Context(), "", src, 3, sampleSpec); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		says string // part of the line that describes the run
	}{
		{[]string{"-fqn=false"}, "mode embedded: every node runs ffmpeg in-process on its own files (input: its bytes)"},
		{[]string{"-mode", "sidecar"}, "over ws (input: its local path), which puts each .wav straight to its owner"},
		{[]string{"-mode", "sidecar", "-transport", "hpush", "-fqn=false", "-direct-put=false"},
			"over hpush (input: its bytes), which hands each .wav back to the node"},
		{[]string{"-mode", "sidecar", "-transport", "hpull", "-fqn=false"}, "over hpull (input: its bytes), which puts each .wav straight"},
		{[]string{"-mode", "remote", "-fqn=false"}, "mode remote: this process sends, over ws,"},
		{[]string{"-mode", "remote", "-transport", "hpull", "-direct-put=false"}, "hands each .wav back to this process"},
		{[]string{"-mode", "remote", "-transport", "hpush"}, "over hpush, each file's transform server (the one next to its owner) a request (input: its local path)"},
		{[]string{"-mode", "remote", "-transport", "inproc"}, "mode remote, in-process"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			args := append([]string{"-src", src, "-nodes", "3", "-ac", "1", "-ar", "22050"}, tc.args...)
			status, stdout, _ := runMain(t, args...)
			if status != 0 {
				t.Fatalf("status %d, want 0", status)
			}
			for _, want := range []string{
				tc.says,
				"seeded 3 objects",
				"listed 3, transformed 3, skipped 0, failed 0",
				"checked 3 WAV files: each exactly once, on its owner, 1 ch, 22050 Hz, sizes consistent",
			} {
				if !strings.Contains(stdout, want) {
					t.Errorf("output lacks %q", want)
				}
			}
		})
	}
}

func TestModeFlagsRefused(t *testing.T) {
	for _, args := range [][]string{
		{"-mode", "cloud"},
		{"-transport", "grpc"},
		{"-transport", "ws"}, // embedded runs in-process
		{"-mode", "sidecar", "-transport", "inproc"},
		{"-dst", t.TempDir(), "-mode", "remote"},
		{"-dst", t.TempDir(), "-fqn=false"},
	} {
		status, _, stderr := runMain(t, args...)
		if status != 2 || !strings.Contains(stderr, "Usage: flac2wav") {
			t.Errorf("%v: status %d, want 2 with the usage", args, status)
		}
	}
	_, _, stderr := runMain(t, "-mode", "sidecar", "-transport", "inproc")
	if want := "use -transport ws, hpush or hpull"; !strings.Contains(stderr, want) {
		t.Errorf("stderr lacks %q", want)
	}
}
