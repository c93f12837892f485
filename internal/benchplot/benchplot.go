// Package benchplot draws the figures of insitu's benchmarks with
// gonum.org/v1/plot: the time of each configuration as a bar with its
// min–max range ([Times]), and a speedup against the number of hosts
// with the ideal linear line ([Speedup]).
//
// The format follows the path's extension: .png or .svg. The same input
// gives the same bytes. A plot is written to a temporary file next to
// path and renamed over it, so path is either the old file or the whole
// new one.
package benchplot

import (
	"bufio"
	"cmp"
	"fmt"
	"image"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/insitu-data/insitu"
)

// A Bar is one configuration's time: the median of its runs and the
// fastest and slowest run. Min ≤ Median ≤ Max, all finite and not
// negative; a single run has Min = Median = Max.
type Bar struct {
	Label            string
	Median, Min, Max float64
}

// An XY is one point of a [Series]: Y (a median) at X, with the range
// of the runs, Min ≤ Y ≤ Max. X is above zero; Y, Min and Max are
// finite and not negative.
type XY struct {
	X, Y, Min, Max float64
}

// A Series is one line of a [Speedup] plot, named in the legend.
type Series struct {
	Name   string
	Points []XY
}

// Options shape a plot. A nil *Options, or a zero field, means the
// default.
type Options struct {
	// Width and Height are the image's size in pixels (an SVG's in CSS
	// pixels, 96 to the inch). Defaults: for [Times] 900 wide, or 600
	// more than the longest label when that is wider, and 100 plus 30
	// per bar plus 20 per line of the title after the first high; for
	// [Speedup] 800 × 560.
	Width, Height int
	// XLabel and YLabel are [Speedup]'s axis labels. Defaults: "hosts"
	// and "speedup". [Times] labels its value axis with its unit.
	XLabel, YLabel string
	// Reference, when above zero, draws a dashed line across [Times]'
	// bars at this value: 1 for ratios, say. Default: none.
	Reference float64
	// Goal, when above zero, draws a dotted line in [Speedup] at this
	// fraction of the linear line, labelled "0.8 × linear" for 0.8: the
	// least speedup a target asks for. It must be below 1. Default:
	// none.
	Goal float64
}

// Times draws one bar per configuration (median) with min–max error
// bars; unit labels the axis. The bars are horizontal, the first at the
// top, each with its median written past its range. The title may hold
// several lines ("\n"). An axis label wider than the plot's area
// narrows the area to its width: keep unit short.
func Times(path, title, unit string, bars []Bar) error {
	return TimesWith(path, title, unit, bars, nil)
}

// Speedup draws each series against X (hosts) with min–max bars, plus
// the ideal linear line through the first series' first point
// (y = x * Y0/X0), labelled "linear".
func Speedup(path, title string, series []Series) error {
	return SpeedupWith(path, title, series, nil)
}

// TimesWith is [Times] with options; o may be nil.
func TimesWith(path, title, unit string, bars []Bar, o *Options) error {
	format, err := formatOf(path)
	if err != nil {
		return err
	}
	if err := checkBars(bars); err != nil {
		return err
	}
	var ref float64
	if o != nil {
		ref = o.Reference
	}
	if math.IsNaN(ref) || math.IsInf(ref, 0) || ref < 0 {
		return invalid("reference %v: must be finite and not negative", ref)
	}
	p, err := timesPlot(title, unit, bars, ref)
	if err != nil {
		return err
	}
	// The default size leaves the bars at least 560 pixels and 30 a bar,
	// whatever the labels' width and the title's lines.
	var labels vg.Length
	for _, b := range bars {
		labels = max(labels, p.Y.Tick.Label.Width(b.Label))
	}
	w := max(900, pixels(labels)+600)
	h := 100 + 30*len(bars) + 20*strings.Count(strings.TrimRight(title, "\n"), "\n")
	if o != nil {
		w, h = cmp.Or(o.Width, w), cmp.Or(o.Height, h)
	}
	if err := checkSize(w, h); err != nil {
		return err
	}
	return save(path, format, p, w, h)
}

// SpeedupWith is [Speedup] with options; o may be nil.
func SpeedupWith(path, title string, series []Series, o *Options) error {
	format, err := formatOf(path)
	if err != nil {
		return err
	}
	if err := checkSeries(series); err != nil {
		return err
	}
	w, h, xl, yl, goal := 800, 560, "hosts", "speedup", 0.0
	if o != nil {
		w, h = cmp.Or(o.Width, w), cmp.Or(o.Height, h)
		xl, yl, goal = cmp.Or(o.XLabel, xl), cmp.Or(o.YLabel, yl), o.Goal
	}
	if err := checkSize(w, h); err != nil {
		return err
	}
	if math.IsNaN(goal) || goal < 0 || goal >= 1 {
		return invalid("goal %v: must be 0 (none) or a fraction of linear below 1", goal)
	}
	p, err := speedupPlot(title, xl, yl, series, goal)
	if err != nil {
		return err
	}
	return save(path, format, p, w, h)
}

// pixels is l in pixels at 96 to the inch, rounded up.
func pixels(l vg.Length) int { return int(math.Ceil(float64(l / (vg.Inch / 96)))) }

// maxPixels bounds each side of an image: 16384 px.
const maxPixels = 1 << 14

func invalid(format string, args ...any) error {
	return insitu.Errorf(insitu.InvalidArgument, "benchplot: "+format, args...)
}

func formatOf(path string) (string, error) {
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".png", ".svg":
		return ext[1:], nil
	default:
		return "", invalid("%s: the extension must be .png or .svg", path)
	}
}

func checkSize(w, h int) error {
	if w < 1 || h < 1 || w > maxPixels || h > maxPixels {
		return invalid("size %d×%d: each side must be 1 to %d pixels", w, h, maxPixels)
	}
	return nil
}

// checkRange checks that lo ≤ mid ≤ hi, all finite and not negative.
func checkRange(what string, mid, lo, hi float64) error {
	for _, v := range [...]struct {
		name string
		v    float64
	}{{"median", mid}, {"min", lo}, {"max", hi}} {
		if math.IsNaN(v.v) || math.IsInf(v.v, 0) {
			return invalid("%s: %s is %v", what, v.name, v.v)
		}
		if v.v < 0 {
			return invalid("%s: %s %g is negative", what, v.name, v.v)
		}
	}
	if lo > mid {
		return invalid("%s: min %g is above the median %g", what, lo, mid)
	}
	if mid > hi {
		return invalid("%s: median %g is above the max %g", what, mid, hi)
	}
	return nil
}

func checkBars(bars []Bar) error {
	if len(bars) == 0 {
		return invalid("no bars")
	}
	seen := make(map[string]int, len(bars))
	for i, b := range bars {
		what := fmt.Sprintf("bar %d (%q)", i, b.Label)
		if b.Label == "" {
			return invalid("bar %d: empty label", i)
		}
		if j, ok := seen[b.Label]; ok {
			return invalid("%s: the same label as bar %d", what, j)
		}
		seen[b.Label] = i
		if err := checkRange(what, b.Median, b.Min, b.Max); err != nil {
			return err
		}
	}
	return nil
}

func checkSeries(series []Series) error {
	if len(series) == 0 {
		return invalid("no series")
	}
	seen := make(map[string]int, len(series))
	for i, s := range series {
		if s.Name == "" {
			return invalid("series %d: empty name", i)
		}
		if j, ok := seen[s.Name]; ok {
			return invalid("series %d (%q): the same name as series %d", i, s.Name, j)
		}
		seen[s.Name] = i
		if len(s.Points) == 0 {
			return invalid("series %d (%q): no points", i, s.Name)
		}
		xs := make(map[float64]int, len(s.Points))
		for k, pt := range s.Points {
			what := fmt.Sprintf("series %d (%q) point %d", i, s.Name, k)
			if math.IsNaN(pt.X) || math.IsInf(pt.X, 0) || pt.X <= 0 {
				return invalid("%s: x %v must be finite and above zero", what, pt.X)
			}
			if j, ok := xs[pt.X]; ok {
				return invalid("%s: the same x %g as point %d", what, pt.X, j)
			}
			xs[pt.X] = k
			if err := checkRange(what, pt.Y, pt.Min, pt.Max); err != nil {
				return err
			}
		}
	}
	if series[0].Points[0].Y == 0 {
		return invalid("series 0 (%q) point 0: y is 0, so there is no linear line through it", series[0].Name)
	}
	return nil
}

// sans is the face of every text: Liberation Sans, which the plot
// package embeds.
func sans() font.Font { return font.Font{Typeface: "Liberation", Variant: "Sans"} }

// newPlot returns a plot whose texts are in sans, 12 points for the
// title and axis labels and 11 for ticks and the legend.
func newPlot(title string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font = font.From(sans(), 14)
	p.Title.Padding = vg.Points(6)
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font = font.From(sans(), 12)
		a.Tick.Label.Font = font.From(sans(), 11)
	}
	p.Legend.TextStyle.Font = font.From(sans(), 11)
	p.Legend.Padding = vg.Points(4)
	p.Legend.ThumbnailWidth = vg.Points(28)
	p.X.Tick.Marker, p.Y.Tick.Marker = niceTicks{}, niceTicks{}
	return p
}

func timesPlot(title, unit string, bars []Bar, ref float64) (*plot.Plot, error) {
	p := newPlot(title)
	p.X.Label.Text = unit
	p.X.Min = 0
	n := len(bars)
	vals := make(plotter.Values, n)
	errs := errXYs{xys: make(plotter.XYs, n), lo: make([]float64, n), hi: make([]float64, n)}
	labels := plotter.XYLabels{XYs: make(plotter.XYs, n), Labels: make([]string, n)}
	names := make([]string, n)
	var top float64
	for i, b := range bars {
		y := float64(n - 1 - i) // the first bar at the top
		vals[n-1-i] = b.Median
		names[n-1-i] = b.Label
		errs.xys[i] = plotter.XY{X: b.Median, Y: y}
		errs.lo[i], errs.hi[i] = b.Median-b.Min, b.Max-b.Median
		labels.XYs[i] = plotter.XY{X: b.Max, Y: y}
		labels.Labels[i] = formatValue(b.Median)
		top = max(top, b.Max)
	}
	bc, err := plotter.NewBarChart(vals, vg.Points(15))
	if err != nil {
		return nil, fmt.Errorf("benchplot: %w", err)
	}
	bc.Horizontal = true
	bc.Color = color.RGBA{R: 0x8d, G: 0xb6, B: 0xe0, A: 0xff} // the error bars and value labels are black
	bc.LineStyle.Width = 0
	eb, err := plotter.NewXErrorBars(&errs)
	if err != nil {
		return nil, fmt.Errorf("benchplot: %w", err)
	}
	eb.LineStyle.Width = vg.Points(1.2)
	eb.CapWidth = vg.Points(8)
	lb, err := plotter.NewLabels(labels)
	if err != nil {
		return nil, fmt.Errorf("benchplot: %w", err)
	}
	for i := range lb.TextStyle {
		lb.TextStyle[i].Font = font.From(sans(), 10)
		lb.TextStyle[i].YAlign = draw.YCenter
	}
	lb.Offset = vg.Point{X: vg.Points(6)}
	grid := plotter.NewGrid()
	grid.Horizontal.Width = 0 // the bars mark the rows
	p.Add(grid, bc, eb, lb)
	if ref > 0 {
		l, err := plotter.NewLine(plotter.XYs{{X: ref, Y: -0.5}, {X: ref, Y: float64(n) - 0.5}})
		if err != nil {
			return nil, fmt.Errorf("benchplot: %w", err)
		}
		l.Color, l.Width = color.Gray{Y: 0x50}, vg.Points(1)
		l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		p.Add(l)
		top = max(top, ref)
	}
	p.NominalY(names...)
	p.Y.Padding = vg.Points(4)
	// Room on the right for the value labels: the labels' glyph boxes
	// keep them inside the canvas, this keeps the axis ending past them.
	if top > 0 {
		p.X.Max = top * 1.12
	} else {
		p.X.Max = 1
	}
	return p, nil
}

// niceTicks marks an axis every 1, 2, 2.5 or 5 times a power of ten,
// the smallest such step that gives at most 8 labelled ticks, with an
// unlabelled tick half way between them.
type niceTicks struct{}

// Ticks returns the ticks between lo and hi.
func (niceTicks) Ticks(lo, hi float64) []plot.Tick {
	if !(hi > lo) || math.IsInf(hi-lo, 0) {
		return nil
	}
	p := math.Pow(10, math.Floor(math.Log10((hi-lo)/8)))
	step := 10 * p
	for _, f := range []float64{1, 2, 2.5, 5} {
		if (hi-lo)/(f*p) <= 8 {
			step = f * p
			break
		}
	}
	decimals := max(0, -int(math.Floor(math.Log10(step)+1e-9)))
	if step/math.Pow(10, math.Floor(math.Log10(step)+1e-9)) == 2.5 {
		decimals++
	}
	var ticks []plot.Tick
	for i := math.Ceil(lo/step - 1e-9); i*step <= hi+step*1e-9; i++ {
		v := i * step
		if v == 0 {
			v = 0 // not -0
		}
		ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', decimals, 64)})
		if mid := v + step/2; mid <= hi {
			ticks = append(ticks, plot.Tick{Value: mid})
		}
	}
	if first := math.Ceil(lo/step-1e-9) * step; first-step/2 >= lo {
		ticks = append(ticks, plot.Tick{Value: first - step/2})
	}
	return ticks
}

// formatValue prints v with three significant digits, without an
// exponent for the values a benchmark shows.
func formatValue(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case v >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}

// errXYs are points with low and high errors, for the error bar
// plotters.
type errXYs struct {
	xys    plotter.XYs
	lo, hi []float64
}

func (e *errXYs) Len() int                        { return len(e.xys) }
func (e *errXYs) XY(i int) (float64, float64)     { return e.xys[i].X, e.xys[i].Y }
func (e *errXYs) XError(i int) (float64, float64) { return e.lo[i], e.hi[i] }
func (e *errXYs) YError(i int) (float64, float64) { return e.lo[i], e.hi[i] }

func speedupPlot(title, xLabel, yLabel string, series []Series, goal float64) (*plot.Plot, error) {
	p := newPlot(title)
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.XOffs, p.Legend.YOffs = vg.Points(8), -vg.Points(4)
	p.Add(plotter.NewGrid())

	var xs []float64
	top := 0.0
	for i, s := range series {
		pts := slices.Clone(s.Points)
		slices.SortFunc(pts, func(a, b XY) int { return cmp.Compare(a.X, b.X) })
		n := len(pts)
		errs := errXYs{xys: make(plotter.XYs, n), lo: make([]float64, n), hi: make([]float64, n)}
		for k, pt := range pts {
			errs.xys[k] = plotter.XY{X: pt.X, Y: pt.Y}
			errs.lo[k], errs.hi[k] = pt.Y-pt.Min, pt.Max-pt.Y
			xs = append(xs, pt.X)
			top = max(top, pt.Max)
		}
		line, points, err := plotter.NewLinePoints(errs.xys)
		if err != nil {
			return nil, fmt.Errorf("benchplot: %w", err)
		}
		c := lineColor(i)
		line.Color, line.Width = c, vg.Points(1.5)
		points.Color, points.Shape, points.Radius = c, glyph(i), vg.Points(4)
		eb, err := plotter.NewYErrorBars(&errs)
		if err != nil {
			return nil, fmt.Errorf("benchplot: %w", err)
		}
		eb.Color, eb.Width, eb.CapWidth = c, vg.Points(1.2), vg.Points(8)
		p.Add(line, points, eb)
		p.Legend.Add(s.Name, line, points)
	}

	slices.Sort(xs)
	xs = slices.Compact(xs)
	first := series[0].Points[0]
	k := first.Y / first.X
	xmax := xs[len(xs)-1]
	linear, err := plotter.NewLine(plotter.XYs{{X: 0, Y: 0}, {X: xmax, Y: xmax * k}})
	if err != nil {
		return nil, fmt.Errorf("benchplot: %w", err)
	}
	linear.Color = color.Gray{Y: 0x70}
	linear.Width = vg.Points(1.2)
	linear.Dashes = []vg.Length{vg.Points(6), vg.Points(4)}
	p.Add(linear)
	p.Legend.Add("linear", linear)
	if goal > 0 {
		g, err := plotter.NewLine(plotter.XYs{{X: 0, Y: 0}, {X: xmax, Y: xmax * k * goal}})
		if err != nil {
			return nil, fmt.Errorf("benchplot: %w", err)
		}
		g.Color = color.Gray{Y: 0x70}
		g.Width = vg.Points(1.2)
		g.Dashes = []vg.Length{vg.Points(1.5), vg.Points(3)}
		p.Add(g)
		p.Legend.Add(strconv.FormatFloat(goal, 'g', -1, 64)+" × linear", g)
	}

	p.X.Min, p.Y.Min = 0, 0
	p.X.Max = xmax * 1.05
	p.Y.Max = max(top, xmax*k) * 1.08
	ticks := []plot.Tick{{Value: 0, Label: "0"}}
	for _, x := range xs {
		ticks = append(ticks, plot.Tick{Value: x, Label: strconv.FormatFloat(x, 'g', -1, 64)})
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	return p, nil
}

// lineColor is the colour of series i: the Okabe–Ito palette, which
// colour-blind readers can tell apart, blue first.
func lineColor(i int) color.Color {
	p := [...]color.RGBA{
		{R: 0x00, G: 0x72, B: 0xb2, A: 0xff},
		{R: 0xd5, G: 0x5e, B: 0x00, A: 0xff},
		{R: 0x00, G: 0x9e, B: 0x73, A: 0xff},
		{R: 0xcc, G: 0x79, B: 0xa7, A: 0xff},
		{R: 0xe6, G: 0x9f, B: 0x00, A: 0xff},
		{R: 0x56, G: 0xb4, B: 0xe9, A: 0xff},
	}
	return p[i%len(p)]
}

// glyph is the point shape of series i.
func glyph(i int) draw.GlyphDrawer {
	g := [...]draw.GlyphDrawer{draw.CircleGlyph{}, draw.BoxGlyph{}, draw.PyramidGlyph{}, draw.RingGlyph{}, draw.SquareGlyph{}, draw.TriangleGlyph{}}
	return g[i%len(g)]
}

// save draws p at w×h pixels and writes it to path in format.
func save(path, format string, p *plot.Plot, w, h int) error {
	var c interface {
		vg.CanvasSizer
		io.WriterTo
	}
	switch format {
	case "png":
		img := vgimg.NewWith(vgimg.UseImage(image.NewRGBA(image.Rect(0, 0, w, h))))
		c = vgimg.PngCanvas{Canvas: img}
	default: // svg
		px := vg.Inch / 96
		c = vgsvg.NewWith(vgsvg.UseWH(vg.Length(w)*px, vg.Length(h)*px))
	}
	dc := draw.New(c)
	dc.SetColor(color.White) // the margin too, not transparent in an SVG
	dc.Fill(dc.Rectangle.Path())
	m := vg.Points(8) // a margin, so that no text touches the edge
	p.Draw(draw.Crop(dc, m, -m, m/2, -m/2))
	return writeFile(path, c)
}

// writeFile writes src to a temporary file in path's directory and
// renames it to path.
func writeFile(path string, src io.WriterTo) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	bw := bufio.NewWriter(f)
	if _, err := src.WriteTo(bw); err != nil {
		return fmt.Errorf("benchplot: %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
