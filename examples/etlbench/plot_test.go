package main

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// plotResults are a table as -json writes it: the floor, the baseline,
// one insitu row and a failed one.
func plotResults(baseline bool) *results {
	res := &results{Objects: 6, InputBytes: 6 << 20, Repeat: 3, Settings: settings{Nodes: 3}, Machine: machine{CPUs: 2}}
	res.Rows = []row{
		{Config: "embedded/inproc local-file direct-put", Mode: "embedded", Seconds: 2, Runs: []float64{1.5, 2, 3}},
		{Config: "floor: ffmpeg alone, 2 at once", Mode: "floor", Seconds: 3, Runs: []float64{3, 2.5, 4}},
		{Config: "remote/ws bytes direct-put", Mode: "remote", Error: "deadline_exceeded"},
	}
	if baseline {
		res.Rows = append(res.Rows[:2:2], row{Config: "client-side: S3 GET→ffmpeg→PUT, 24 workers", Mode: "client-side", Seconds: 6, Runs: []float64{6, 5, 8}}, res.Rows[2])
		for i := range res.Rows[:3] {
			res.Rows[i].SpeedupOverBaseline = 6 / res.Rows[i].Seconds
		}
	}
	return res
}

func decodePNG(t *testing.T, path string) (w, h int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return img.Bounds().Dx(), img.Bounds().Dy()
}

func TestWritePlots(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "plots") // created by writePlots
	if err := writePlots(dir, plotResults(true)); err != nil {
		t.Fatal(err)
	}
	// Two title lines and the three rows that did not fail.
	if w, h := decodePNG(t, filepath.Join(dir, timePlot)); w < 900 || h != 100+30*3+20 {
		t.Errorf("%s: %d×%d, want at least 900 wide and %d high", timePlot, w, h, 100+30*3+20)
	}
	if w, h := decodePNG(t, filepath.Join(dir, speedupPlot)); w < 900 || h != 100+30*3+20 {
		t.Errorf("%s: %d×%d, want at least 900 wide and %d high", speedupPlot, w, h, 100+30*3+20)
	}

	// Without the baseline, there is no speedup to draw.
	dir = t.TempDir()
	if err := writePlots(dir, plotResults(false)); err != nil {
		t.Fatal(err)
	}
	decodePNG(t, filepath.Join(dir, timePlot))
	if _, err := os.Stat(filepath.Join(dir, speedupPlot)); !os.IsNotExist(err) {
		t.Errorf("%s without a baseline: %v", speedupPlot, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("files %v, want only %s", ents, timePlot)
	}

	// Every row failed: an error, no file.
	dir = t.TempDir()
	res := plotResults(false)
	res.Rows = res.Rows[2:]
	if err := writePlots(dir, res); err == nil {
		t.Error("every row failed: no error")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("files %v, want none", ents)
	}
	// No directory, no plots.
	if err := writePlots("", plotResults(true)); err != nil {
		t.Error(err)
	}
}

// TestTablePlot: -table with -plot draws a file written with -json, and
// prints the same table as without -plot.
func TestTablePlot(t *testing.T) {
	jsonFile := filepath.Join(t.TempDir(), "out.json")
	if err := writeJSON(jsonFile, plotResults(true)); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	status, withPlot, _ := runMain(t, "-table", jsonFile, "-plot", dir)
	if status != 0 {
		t.Fatalf("status %d", status)
	}
	_, without, _ := runMain(t, "-table", jsonFile)
	if withPlot != without {
		t.Errorf("-plot changed the table:\n%s\nwant\n%s", withPlot, without)
	}
	for _, f := range []string{timePlot, speedupPlot} {
		decodePNG(t, filepath.Join(dir, f))
	}

	// A directory that cannot be made: status 1.
	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if status, _, stderr := runMain(t, "-table", jsonFile, "-plot", filepath.Join(blocker, "sub")); status != 1 || !bytes.Contains([]byte(stderr), []byte("-plot")) {
		t.Errorf("-plot under a file: status %d, stderr %q; want 1 and the error", status, stderr)
	}
}
