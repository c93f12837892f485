package benchplot_test

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/png"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/benchplot"
)

var bars = []benchplot.Bar{
	{Label: "floor", Median: 10.2, Min: 9.8, Max: 10.9},
	{Label: "locality ws local-file direct-put", Median: 11.5, Min: 11.0, Max: 13.2},
	{Label: "client-side", Median: 14.5, Min: 14.5, Max: 14.5},
}

var series = []benchplot.Series{
	{Name: "flac2wav", Points: []benchplot.XY{{X: 1, Y: 1.1, Min: 1, Max: 1.2}, {X: 6, Y: 5.5, Min: 5, Max: 6.1}, {X: 3, Y: 3, Min: 2.8, Max: 3.3}}},
	{Name: "identity 1 MiB", Points: []benchplot.XY{{X: 1, Y: 1.5, Min: 1.4, Max: 1.6}, {X: 3, Y: 4, Min: 3.6, Max: 4.1}}},
}

func readPNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return img
}

// countColor counts the pixels of img that are c.
func countColor(img image.Image, c color.Color) int {
	r0, g0, b0, _ := c.RGBA()
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			if r == r0 && g == g0 && b == b0 {
				n++
			}
		}
	}
	return n
}

func TestPNGSize(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		draw func(path string) error
		w, h int
	}{
		{"times default", func(p string) error { return benchplot.Times(p, "t", "seconds", bars) }, 900, 100 + 30*len(bars)},
		{"times 640x300", func(p string) error {
			return benchplot.TimesWith(p, "t", "seconds", bars, &benchplot.Options{Width: 640, Height: 300})
		}, 640, 300},
		{"times width only", func(p string) error {
			return benchplot.TimesWith(p, "t", "seconds", bars, &benchplot.Options{Width: 500})
		}, 500, 100 + 30*len(bars)},
		{"times long labels, two title lines", func(p string) error {
			long := []benchplot.Bar{{Label: strings.Repeat("a long configuration name ", 6), Median: 1, Min: 1, Max: 1}}
			return benchplot.TimesWith(p, "one\ntwo", "s", long, &benchplot.Options{Reference: 1})
		}, -1, 100 + 30 + 20},
		{"speedup default", func(p string) error { return benchplot.Speedup(p, "s", series) }, 800, 560},
		{"speedup 1001x777", func(p string) error {
			return benchplot.SpeedupWith(p, "s", series, &benchplot.Options{Width: 1001, Height: 777, XLabel: "nodes"})
		}, 1001, 777},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".png")
			if err := tc.draw(path); err != nil {
				t.Fatal(err)
			}
			img := readPNG(t, path)
			if tc.w < 0 { // wider than the default for the labels
				tc.w = max(img.Bounds().Dx(), 901)
			}
			if got := img.Bounds().Size(); got != image.Pt(tc.w, tc.h) {
				t.Errorf("size %v, want %dx%d", got, tc.w, tc.h)
			}
		})
	}
}

// TestPNGContent checks that the bars, the series and the linear line
// are drawn, in their colours.
func TestPNGContent(t *testing.T) {
	dir := t.TempDir()
	tp := filepath.Join(dir, "times.png")
	if err := benchplot.Times(tp, "t", "seconds", bars); err != nil {
		t.Fatal(err)
	}
	img := readPNG(t, tp)
	bar := color.RGBA{R: 0x8d, G: 0xb6, B: 0xe0, A: 0xff}
	// Three bars 15 points (20 px) high, the longest over half of
	// the 900 px width: thousands of pixels, the shortest alone 10.2/14.5
	// of the longest.
	if n := countColor(img, bar); n < 3*20*300 {
		t.Errorf("%d pixels of the bar colour, want at least %d", n, 3*20*300)
	}
	if n := countColor(img, color.Black); n < 100 {
		t.Errorf("%d black pixels (error bars, text), want at least 100", n)
	}

	sp := filepath.Join(dir, "speedup.png")
	if err := benchplot.Speedup(sp, "s", series); err != nil {
		t.Fatal(err)
	}
	img = readPNG(t, sp)
	for i, c := range []color.Color{
		color.RGBA{R: 0x00, G: 0x72, B: 0xb2, A: 0xff}, // the first series
		color.RGBA{R: 0xd5, G: 0x5e, B: 0x00, A: 0xff}, // the second
		color.Gray{Y: 0x70},                            // linear
	} {
		if n := countColor(img, c); n < 100 {
			t.Errorf("line %d: %d pixels of its colour, want at least 100", i, n)
		}
	}
}

func TestSVGDeterministic(t *testing.T) {
	dir := t.TempDir()
	draw := func(name string) []byte {
		path := filepath.Join(dir, name)
		if err := benchplot.Times(path, "etlbench", "seconds", bars); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a, b := draw("a.svg"), draw("b.svg")
	if !bytes.Equal(a, b) {
		t.Fatalf("two drawings of the same input differ: %d and %d bytes", len(a), len(b))
	}
	if !bytes.HasPrefix(a, []byte("<?xml")) || !bytes.Contains(a, []byte("<svg")) {
		t.Fatalf("not an SVG: %.40q", a)
	}
	for _, want := range []string{"floor", "client-side", "etlbench", "seconds", "10.2", "14.5"} {
		if !bytes.Contains(a, []byte(">"+want+"<")) {
			t.Errorf("the SVG has no text %q", want)
		}
	}

	s1, s2 := filepath.Join(dir, "s1.svg"), filepath.Join(dir, "s2.svg")
	for _, p := range []string{s1, s2} {
		if err := benchplot.Speedup(p, "scale-out", series); err != nil {
			t.Fatal(err)
		}
	}
	x, _ := os.ReadFile(s1)
	y, _ := os.ReadFile(s2)
	if len(x) == 0 || !bytes.Equal(x, y) {
		t.Fatalf("two speedup drawings differ or are empty: %d and %d bytes", len(x), len(y))
	}
	if err := benchplot.SpeedupWith(s2, "scale-out", series, &benchplot.Options{Goal: 0.8}); err != nil {
		t.Fatal(err)
	}
	if g, _ := os.ReadFile(s2); !bytes.Contains(g, []byte(">0.8 × linear<")) {
		t.Error("Goal 0.8: no line labelled 0.8 × linear")
	}
	for _, want := range []string{"flac2wav", "identity 1 MiB", "linear", "hosts", "speedup", ">6<"} {
		if !bytes.Contains(x, []byte(strings.Trim(want, "<>"))) {
			t.Errorf("the SVG has no text %q", want)
		}
	}
}

func TestPNGDeterministic(t *testing.T) {
	dir := t.TempDir()
	var got [2][]byte
	for i := range got {
		path := filepath.Join(dir, "p.png")
		if err := benchplot.Speedup(path, "s", series); err != nil {
			t.Fatal(err)
		}
		var err error
		if got[i], err = os.ReadFile(path); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got[0], got[1]) {
		t.Fatal("two drawings of the same input differ")
	}
}

func TestInvalid(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	one := func(b benchplot.Bar) []benchplot.Bar { return []benchplot.Bar{b} }
	s := func(pts ...benchplot.XY) []benchplot.Series {
		return []benchplot.Series{{Name: "a", Points: pts}}
	}
	for _, tc := range []struct {
		name string
		draw func(path string) error
		ext  string
		want string
	}{
		{"no bars", func(p string) error { return benchplot.Times(p, "", "s", nil) }, ".png", "no bars"},
		{"empty label", func(p string) error {
			return benchplot.Times(p, "", "s", one(benchplot.Bar{Median: 1, Min: 1, Max: 1}))
		}, ".png", "empty label"},
		{"same label", func(p string) error {
			return benchplot.Times(p, "", "s", []benchplot.Bar{{Label: "a", Median: 1, Min: 1, Max: 1}, {Label: "a", Median: 2, Min: 2, Max: 2}})
		}, ".png", "the same label as bar 0"},
		{"NaN median", func(p string) error {
			return benchplot.Times(p, "", "s", one(benchplot.Bar{Label: "a", Median: nan, Min: 1, Max: 1}))
		}, ".png", "median is NaN"},
		{"Inf max", func(p string) error {
			return benchplot.Times(p, "", "s", one(benchplot.Bar{Label: "a", Median: 1, Min: 1, Max: inf}))
		}, ".svg", "max is +Inf"},
		{"min above median", func(p string) error {
			return benchplot.Times(p, "", "s", one(benchplot.Bar{Label: "a", Median: 1, Min: 2, Max: 3}))
		}, ".png", "min 2 is above the median 1"},
		{"median above max", func(p string) error {
			return benchplot.Times(p, "", "s", one(benchplot.Bar{Label: "a", Median: 4, Min: 2, Max: 3}))
		}, ".png", "median 4 is above the max 3"},
		{"negative", func(p string) error {
			return benchplot.Times(p, "", "s", one(benchplot.Bar{Label: "a", Median: 1, Min: -1, Max: 3}))
		}, ".png", "min -1 is negative"},
		{"jpg", func(p string) error { return benchplot.Times(p, "", "s", bars) }, ".jpg", "must be .png or .svg"},
		{"no extension", func(p string) error { return benchplot.Speedup(p, "", series) }, "", "must be .png or .svg"},
		{"too wide", func(p string) error {
			return benchplot.TimesWith(p, "", "s", bars, &benchplot.Options{Width: 20000})
		}, ".png", "each side must be 1 to 16384 pixels"},
		{"negative height", func(p string) error {
			return benchplot.SpeedupWith(p, "", series, &benchplot.Options{Height: -1})
		}, ".png", "each side must be 1 to 16384 pixels"},
		{"NaN reference", func(p string) error {
			return benchplot.TimesWith(p, "", "s", bars, &benchplot.Options{Reference: nan})
		}, ".png", "reference NaN"},
		{"goal 1", func(p string) error {
			return benchplot.SpeedupWith(p, "", series, &benchplot.Options{Goal: 1})
		}, ".png", "goal 1: must be 0"},
		{"no series", func(p string) error { return benchplot.Speedup(p, "", nil) }, ".png", "no series"},
		{"empty name", func(p string) error {
			return benchplot.Speedup(p, "", []benchplot.Series{{Points: []benchplot.XY{{X: 1, Y: 1, Min: 1, Max: 1}}}})
		}, ".png", "series 0: empty name"},
		{"same name", func(p string) error {
			return benchplot.Speedup(p, "", []benchplot.Series{series[0], {Name: "flac2wav", Points: series[1].Points}})
		}, ".png", `series 1 ("flac2wav"): the same name as series 0`},
		{"no points", func(p string) error { return benchplot.Speedup(p, "", s()) }, ".png", "no points"},
		{"x zero", func(p string) error { return benchplot.Speedup(p, "", s(benchplot.XY{X: 0, Y: 1, Min: 1, Max: 1})) }, ".png", "x 0 must be finite and above zero"},
		{"x NaN", func(p string) error { return benchplot.Speedup(p, "", s(benchplot.XY{X: nan, Y: 1, Min: 1, Max: 1})) }, ".png", "x NaN must be"},
		{"same x", func(p string) error {
			return benchplot.Speedup(p, "", s(benchplot.XY{X: 1, Y: 1, Min: 1, Max: 1}, benchplot.XY{X: 1, Y: 2, Min: 2, Max: 2}))
		}, ".png", "point 1: the same x 1 as point 0"},
		{"y above max", func(p string) error { return benchplot.Speedup(p, "", s(benchplot.XY{X: 1, Y: 3, Min: 1, Max: 2})) }, ".png", "median 3 is above the max 2"},
		{"first y zero", func(p string) error { return benchplot.Speedup(p, "", s(benchplot.XY{X: 1})) }, ".png", "no linear line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			err := tc.draw(filepath.Join(dir, "out"+tc.ext))
			if !errors.Is(err, insitu.InvalidArgument) {
				t.Fatalf("err = %v, want invalid_argument", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %q, want it to say %q", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "benchplot: ") {
				t.Errorf("err = %q, want the prefix benchplot: ", err)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Errorf("files left: %v", ents)
			}
		})
	}
}

func TestWriteReplacesAndCleansUp(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "times.svg")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := benchplot.Times(path, "t", "seconds", bars); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("<svg")) {
		t.Fatalf("the old file was not replaced: %.40q", b)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 {
		t.Errorf("files in the directory: %v, want only times.svg", ents)
	}

	err = benchplot.Times(filepath.Join(dir, "missing", "t.png"), "t", "seconds", bars)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("into a missing directory: err = %v, want fs.ErrNotExist", err)
	}
}
