package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/dustin/go-humanize"
	"github.com/insitu-data/insitu/internal/benchplot"
)

// The files -plot writes in its directory.
const (
	timePlot    = "etlbench-time.png"
	speedupPlot = "etlbench-speedup.png"
)

// writePlots draws res's rows in dir, which it creates if missing: the
// seconds of each configuration (timePlot: the median of its runs, with
// the fastest and slowest run) and, when the client-side baseline ran,
// the speedup of each over it (speedupPlot: the baseline's median over
// the row's median, over its slowest and over its fastest run). The
// failed rows are left out. With dir "" it does nothing.
func writePlots(dir string, res *results) error {
	if dir == "" {
		return nil
	}
	var times, speedups []benchplot.Bar
	for _, r := range res.Rows {
		if r.Error != "" || len(r.Runs) == 0 || r.Seconds <= 0 {
			continue
		}
		fastest, slowest := slices.Min(r.Runs), slices.Max(r.Runs)
		times = append(times, benchplot.Bar{Label: r.Config, Median: r.Seconds, Min: fastest, Max: slowest})
		if r.SpeedupOverBaseline > 0 && fastest > 0 {
			base := r.SpeedupOverBaseline * r.Seconds // the baseline's median
			speedups = append(speedups, benchplot.Bar{Label: r.Config, Median: r.SpeedupOverBaseline,
				Min: min(base/slowest, r.SpeedupOverBaseline), Max: max(base/fastest, r.SpeedupOverBaseline)})
		}
	}
	if len(times) == 0 {
		return fmt.Errorf("-plot: no row to plot: every configuration failed")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("-plot: %w", err)
	}
	m := res.Machine
	title := fmt.Sprintf("etlbench: FFmpeg .flac → .wav, %d clips (%s of FLAC), %d nodes, %d CPUs\n", res.Objects,
		humanize.IBytes(uint64(max(res.InputBytes, 0))), res.Settings.Nodes, m.CPUs)
	if err := benchplot.Times(filepath.Join(dir, timePlot),
		title+fmt.Sprintf("bar: the median of %d runs; whiskers: the fastest and the slowest run", res.Repeat),
		"seconds", times); err != nil {
		return fmt.Errorf("-plot: %w", err)
	}
	if len(speedups) == 0 {
		return nil
	}
	err := benchplot.TimesWith(filepath.Join(dir, speedupPlot),
		title+fmt.Sprintf("bar: client-side's median over the row's, of %d runs; whiskers: over the row's slowest and fastest run", res.Repeat),
		"speedup over client-side (×)", speedups, &benchplot.Options{Reference: 1})
	if err != nil {
		return fmt.Errorf("-plot: %w", err)
	}
	return nil
}
