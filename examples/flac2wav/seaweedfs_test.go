package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/insitu-data/insitu/internal/testutil"
	"github.com/insitu-data/insitu/seaweedfs/seaweedfstest"
	"github.com/insitu-data/insitu/transform/ffmpeg/ffmpegtest"
)

// -backend seaweedfs end to end: a SeaweedFS cluster and a transform
// server next to each volume server, the samples seeded over the volume
// servers, the job in remote mode; the program's own check (every .wav
// valid, every chunk on its input's volume server) passes, by direct put
// and with the outputs coming back through the program.
func TestSeaweedFSBackend(t *testing.T) {
	if testing.Short() {
		t.Skip("starts SeaweedFS clusters and runs ffmpeg")
	}
	requireFFmpeg(t)
	testutil.RequireTool(t, "weed", seaweedfstest.InstallHint)
	t.Setenv("TMPDIR", t.TempDir())
	src := filepath.Join(t.TempDir(), "flac")
	if _, err := ffmpegtest.GenerateSet(t.Context(), "", src, 4, sampleSpec); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		says string
	}{
		{nil, "over ws, the transform server next to the volume server that holds each file a request"},
		{[]string{"-transport", "hpull", "-direct-put=false", "-ac", "1", "-ar", "22050"}, "hands each .wav back to this process"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			args := append([]string{"-backend", "seaweedfs", "-src", src}, tc.args...)
			status, stdout, _ := runMain(t, args...)
			if status != 0 {
				t.Fatalf("status %d, want 0", status)
			}
			for _, want := range []string{"started SeaweedFS on 127.0.0.1", "3 volume servers", "started a transform server (ffmpeg) next to each volume server",
				"seeded 4 objects", tc.says, "listed 4, transformed 4, skipped 0, failed 0", "checked 4 WAV files: each on the volume server of its input"} {
				if !strings.Contains(stdout, want) {
					t.Errorf("stdout lacks %q", want)
				}
			}
		})
	}
}

func TestSeaweedFSBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-backend", "nope"},
		{"-backend", "seaweedfs", "-mode", "sidecar"},
		{"-backend", "seaweedfs", "-mode", "embedded"},
		{"-backend", "seaweedfs", "-fqn"},
		{"-backend", "seaweedfs", "-dst", t.TempDir()},
	} {
		status, _, stderr := runMain(t, args...)
		if status != 2 || !strings.Contains(stderr, "Usage: flac2wav") {
			t.Errorf("%v: status %d, want 2 with the usage", args, status)
		}
	}
}

// Without weed, -backend seaweedfs says how to install it and exits 2.
func TestSeaweedFSMissingWeed(t *testing.T) {
	ffmpegPath := testutil.RequireTool(t, "ffmpeg", "apt-get install -y ffmpeg")
	bin := t.TempDir()
	if err := os.Symlink(ffmpegPath, filepath.Join(bin, "ffmpeg")); err != nil {
		t.Fatal(err)
	}
	if p, err := exec.LookPath("ffprobe"); err == nil {
		os.Symlink(p, filepath.Join(bin, "ffprobe"))
	}
	t.Setenv("PATH", bin)
	status, _, stderr := runMain(t, "-backend", "seaweedfs", "-n", "1")
	if status != 2 || !strings.Contains(stderr, seaweedfstest.InstallHint) {
		t.Errorf("status %d, want 2 with the install line", status)
	}
}
