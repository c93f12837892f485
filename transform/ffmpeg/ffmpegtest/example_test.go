package ffmpegtest_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/insitu-data/insitu/transform/ffmpeg/ffmpegtest"
)

// Generate three reproducible FLAC clips of two seconds each. (This
// example needs ffmpeg, so it is compiled but not run by go test.)
func ExampleGenerateSet() {
	dir, _ := os.MkdirTemp("", "clips")
	defer os.RemoveAll(dir)
	paths, err := ffmpegtest.GenerateSet(context.Background(), "", dir, 3, func(i int) ffmpegtest.SampleSpec {
		return ffmpegtest.SampleSpec{Seed: i, Duration: 2 * time.Second}
	})
	if err != nil {
		fmt.Println(err) // says how to install ffmpeg when it is missing
		return
	}
	fmt.Println(len(paths), "clips")
}
