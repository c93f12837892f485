package benchplot_test

import (
	"fmt"
	"image/png"
	"os"
	"path/filepath"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/benchplot"
)

func Example() {
	dir, err := os.MkdirTemp("", "benchplot")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	// Seconds per configuration: the median of the runs and their range.
	times := filepath.Join(dir, "times.png")
	err = benchplot.Times(times, "flac → wav, 300 clips", "seconds", []benchplot.Bar{
		{Label: "floor", Median: 10.2, Min: 9.8, Max: 10.9},
		{Label: "locality ws", Median: 11.5, Min: 11.0, Max: 13.2},
		{Label: "client-side", Median: 14.5, Min: 13.9, Max: 15.0},
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	// Speedup over the client side against hosts, with the linear line
	// through the first point.
	speedup := filepath.Join(dir, "speedup.svg")
	err = benchplot.Speedup(speedup, "scale-out", []benchplot.Series{{
		Name:   "flac2wav, locality",
		Points: []benchplot.XY{{X: 1, Y: 1.1, Min: 1.0, Max: 1.2}, {X: 3, Y: 3.0, Min: 2.8, Max: 3.3}, {X: 6, Y: 5.5, Min: 5.0, Max: 6.1}},
	}})
	if err != nil {
		fmt.Println(err)
		return
	}

	f, err := os.Open(times)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("times.png: %d×%d\n", cfg.Width, cfg.Height)

	err = benchplot.Times(filepath.Join(dir, "times.jpg"), "", "seconds", []benchplot.Bar{{Label: "x", Median: 1, Min: 1, Max: 1}})
	fmt.Println("a .jpg:", insitu.CodeOf(err))
	// Output:
	// times.png: 900×190
	// a .jpg: invalid_argument
}
