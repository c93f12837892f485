package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/pipeline"
	"github.com/insitu-data/insitu/transform/ffmpeg/ffmpegtest"
	"github.com/insitu-data/insitu/transform/wav"
)

// prepareDirs fills in the default directories: without -src, a fresh
// temporary directory with generated samples; without -dst, a fresh
// temporary directory for the output.
func prepareDirs(ctx context.Context, cfg *config, stdout io.Writer) error {
	var tmp string
	if cfg.src == "" || cfg.dst == "" {
		var err error
		if tmp, err = os.MkdirTemp("", "flac2wav-"); err != nil {
			return err
		}
	}
	if cfg.dst == "" {
		cfg.dst = filepath.Join(tmp, "wav")
	}
	if cfg.src != "" {
		return nil
	}
	cfg.src = filepath.Join(tmp, "flac")
	fmt.Fprintf(stdout, "generating %d FLAC samples in %s\n", cfg.samples, cfg.src)
	start := time.Now()
	if _, err := ffmpegtest.GenerateSet(ctx, "", cfg.src, cfg.samples, sampleSpec); err != nil {
		return fmt.Errorf("generating samples: %w", err)
	}
	fmt.Fprintf(stdout, "generated in %v\n", time.Since(start).Round(time.Millisecond))
	return nil
}

// sampleSpec describes generated sample i: 44.1 kHz stereo, 2 to 6 seconds
// long, its sound picked by its seed.
func sampleSpec(i int) ffmpegtest.SampleSpec {
	ms := 2000 + (i*7919)%4001 // spread over 2–6 s, the same on every run
	return ffmpegtest.SampleSpec{Seed: i + 1, Duration: time.Duration(ms) * time.Millisecond, SampleRate: 44100, Channels: 2}
}

// verify checks the output of every listed object that did not fail: it
// must be a valid WAV file with the requested channels and sample rate. It
// returns the number of files checked and the problems found.
func verify(ctx context.Context, src insitu.Source, report pipeline.Report, cfg config) (int, []string) {
	failed := make(map[insitu.Name]bool, len(report.Failures))
	for _, f := range report.Failures {
		failed[f.Name] = true
	}
	rename := pipeline.ReplaceExt(".flac", ".wav")
	checked := 0
	var problems []string
	for obj, err := range src.Objects(ctx) {
		if err != nil {
			if report.Failed == 0 { // else the run met it too and reported it
				problems = append(problems, err.Error())
			}
			continue
		}
		if failed[obj.Name] {
			continue
		}
		out, err := rename(obj.Name)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		path := filepath.Join(cfg.dst, filepath.FromSlash(out.Key))
		if err := checkWAV(path, cfg.channels, cfg.rate); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", path, err))
			continue
		}
		checked++
	}
	return checked, problems
}

func checkWAV(path string, channels, rate int) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	h, err := wav.Parse(f, fi.Size())
	if err != nil {
		return err
	}
	if h.Channels != channels || h.SampleRate != rate {
		return fmt.Errorf("%v, want %d ch, %d Hz", h, channels, rate)
	}
	return nil
}
